#!/usr/bin/env bash
# Plants each safety bug of tests/planted/*.patch in turn, runs the tests,
# and says which ones caught it (docs/testing.md, "Planted safety bugs").
# Not part of `cargo test`; run from anywhere in the checkout:
#
#   tests/planted.sh                 # every patch: unit tests, then the
#                                    # integration selection below
#   tests/planted.sh --lib           # unit tests only (fast; CI runs this):
#                                    # each plant but those marked
#                                    # "In-process: no" caught by one at least
#   tests/planted.sh 03 07           # only the patches whose name has 03 or 07
#
# Each patch changes one line (or adds one) of the safety path. A plant is
# "caught" by every test that fails with it applied. The script fails when
# a plant is caught by fewer than MIN_CAUGHT tests (default 2; 1 with
# --lib), when a plant does not build or apply, or when the tree is not
# clean where a patch applies. The tree is restored after each plant, on
# failure and on Ctrl-C too. Run it on a tree whose tests pass: a
# timing-sensitive test that fails by chance during a plant's run is
# listed as catching it (rerun that plant alone). Needs what the
# integration tests need: root and /dev/fuse for the power cuts
# (RLEWATCH_REQUIRE_ROOT=1 is set, so a skip fails).
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
NICE=${NICE:-nice -n 5}
LIB_ONLY=0
PATTERNS=()
for arg in "$@"; do
    case $arg in
        --lib) LIB_ONLY=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
        *) PATTERNS+=("$arg") ;;
    esac
done
if [ $LIB_ONLY = 1 ]; then MIN_CAUGHT=${MIN_CAUGHT:-1}; else MIN_CAUGHT=${MIN_CAUGHT:-2}; fi

# The unit tests of the safety path's modules (the codec's are not
# affected by any plant and take minutes in the dev profile).
LIB_FILTER=(archive:: durable:: ledger:: claim:: daemon::)
# The integration tests that hold the safety path (release, test hooks).
INTEGRATION_FILTER=(
    claims:: powerloss:: crash:: originals::
    arrival::a_different_image arrival::an_existing
    faults::a_full_archive faults::originals_are_copied
)
export RLEWATCH_REQUIRE_ROOT=1

log_dir=$(mktemp -d /tmp/planted.XXXXXX)
applied=""
restore() {
    if [ -n "$applied" ]; then
        git apply -R "$applied" || {
            echo "planted.sh: could not take $applied back out: restore by hand" >&2
            exit 3
        }
        applied=""
    fi
}
trap 'restore' EXIT
trap 'restore; exit 130' INT TERM

# Prints the names of the tests that failed in cargo's output file $1.
failed_tests() {
    sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$1" | sort -u
}

run_tests() { # $1: log file; the rest: cargo arguments
    local out=$1
    shift
    # A failing test makes cargo exit non-zero: expected here.
    $NICE cargo test "$@" >"$out" 2>&1 || true
    if grep -q '^error\(\[E[0-9]*\]\)\?:' "$out" && ! grep -q '^test result' "$out"; then
        echo "planted.sh: the build failed, see $out" >&2
        return 1
    fi
}

status=0
summary=()
for patch in tests/planted/*.patch; do
    name=$(basename "$patch" .patch)
    if [ ${#PATTERNS[@]} -gt 0 ]; then
        keep=0
        for p in "${PATTERNS[@]}"; do [[ $name == *"$p"* ]] && keep=1; done
        [ $keep = 1 ] || continue
    fi
    if [ $LIB_ONLY = 1 ] && grep -q '^In-process: no' "$patch"; then
        echo "== $name: skipped with --lib: $(grep -m1 '^In-process: no' "$patch" | sed 's/^In-process: //')"
        continue
    fi
    files=$(sed -n 's|^+++ b/||p' "$patch")
    # shellcheck disable=SC2086
    if ! git diff --quiet HEAD -- $files; then
        echo "planted.sh: $files has uncommitted changes; commit or stash them first" >&2
        exit 2
    fi
    git apply --check "$patch" || {
        echo "planted.sh: $patch does not apply (rebase it on the function it names)" >&2
        status=1
        continue
    }
    git apply "$patch"
    applied=$patch
    started=$(date +%s)
    echo "== $name: $(grep -m1 '^Rule:' "$patch" | cut -c7-)"
    run_tests "$log_dir/$name.lib.log" --lib -- "${LIB_FILTER[@]}" || { status=1; restore; continue; }
    caught=$(failed_tests "$log_dir/$name.lib.log" | sed 's/^/lib /')
    if [ $LIB_ONLY = 0 ]; then
        run_tests "$log_dir/$name.all.log" --release --features test-hooks --test all -- \
            "${INTEGRATION_FILTER[@]}" || { status=1; restore; continue; }
        caught+=$'\n'$(failed_tests "$log_dir/$name.all.log" | sed 's/^/all /')
    fi
    restore
    caught=$(echo "$caught" | sed '/^$/d')
    n=$(echo "$caught" | sed '/^$/d' | wc -l)
    if [ "$n" = 0 ]; then echo "   caught by nothing"; else echo "$caught" | sed "s/^/   caught by /"; fi
    echo "   $n test(s), $(( $(date +%s) - started )) s; logs in $log_dir/$name.*.log"
    summary+=("$name: $n")
    if [ "$n" -lt "$MIN_CAUGHT" ]; then
        echo "   FEWER THAN $MIN_CAUGHT TESTS CATCH $name" >&2
        status=1
    fi
done
echo "== caught by (number of failing tests): ${summary[*]}"
exit $status
