#!/usr/bin/env bash
# End-to-end test of the Debian package under a real systemd (design §5,
# issue 7): boots Debian bookworm (systemd 252) with systemd-nspawn, installs
# the .deb, and checks what an operator and a writer see.
#
#   sudo tests/systemd-e2e.sh [path/to/rlewatch_VERSION-1_amd64.deb]
#
# Without an argument the package is built with debian/build-deb.sh. Needs
# root, systemd-nspawn (systemd-container), debootstrap and, the first time,
# network access to deb.debian.org. The bookworm tree is built once and kept
# in $RLEWATCH_E2E_CACHE (default /var/cache/rlewatch-e2e), keyed by what
# goes into it; the container boots it with --volatile=overlay, so the cached
# tree is never modified. Outside CI a missing prerequisite is a visible
# SKIP (exit 77); with CI=true it is a failure.
#
# Prints "ok   CHECK" per passing check, "FAIL CHECK" per failing one, and
# exits non-zero if any failed. Everything it starts (container, overlay,
# temporary folder) is removed on exit, failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

suite=bookworm
mirror=${RLEWATCH_E2E_MIRROR:-http://deb.debian.org/debian}
# adduser: the package's postinst; acl: docs/service.md's default-ACL recipe for
# writers. systemd-sysv makes systemd /sbin/init, dbus lets systemctl work.
include=systemd,systemd-sysv,dbus,adduser,acl
cache=${RLEWATCH_E2E_CACHE:-/var/cache/rlewatch-e2e}
key=$(printf '%s\n' "$suite" minbase "$include" "$mirror" | sha256sum | cut -c1-12)
tree=$cache/$suite-$key
spool=/var/spool/rlewatch

skip() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL prerequisites: $* (CI=true: the end-to-end test must run)" >&2
    exit 1
  fi
  echo "SKIPPED systemd end-to-end test: $*" >&2
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn, debootstrap)"
for tool in systemd-nspawn debootstrap nsenter; do
  command -v "$tool" >/dev/null || skip "$tool is missing (apt-get install systemd-container debootstrap)"
done

work=$(mktemp -d /tmp/rlewatch-e2e.XXXXXX)
nspawn_pid=
ct_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # An orderly poweroff first (the journal and units stop cleanly), then
    # force: killing the container's PID 1 ends its whole PID namespace.
    [ -n "$ct_pid" ] && timeout 10 nsenter -t "$ct_pid" -a systemctl poweroff --no-block >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      [ -n "$ct_pid" ] && kill -KILL "$ct_pid" 2>/dev/null
      kill -KILL "$nspawn_pid" 2>/dev/null
    fi
    wait "$nspawn_pid" 2>/dev/null
  fi
  # The overlay's upper layer is a tmpfs in nspawn's own mount namespace:
  # it is gone with nspawn. What is left is our temporary folder.
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
# A setup step (not a check) that fails ends the run: say which.
trap 'echo "FAIL setup step at line $LINENO: $BASH_COMMAND" >&2' ERR

# --- the package -----------------------------------------------------------
deb=${1:-}
if [ -z "$deb" ]; then
  echo "== building the package (debian/build-deb.sh)"
  bash debian/build-deb.sh >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
  deb=$(ls -t target/debian/rlewatch_*.deb | head -n 1)
fi
[ -f "$deb" ] || { echo "no such package: $deb" >&2; exit 1; }
mkdir -p "$work/share/data"
cp "$deb" "$work/share/rlewatch.deb"
cp tests/data/*.bmp tests/data/*.rle tests/data/formats/scan* "$work/share/data/"
# A 2400x2400 24-bit page of noise (5.76 M pixels, each row busy for the
# dither): alone in the daemon, it is dithered on two threads (design §3,
# "The dither wavefront"). Its expected archive is the packaged binary's
# own output on one CPU (taskset: the one-thread loop, which the corpus
# and the differential checks hold to Pillow).
python3 - "$work/share/data/photo.bmp" <<'PY'
import os, struct, sys
w = h = 2400
stride = w * 3
with open(sys.argv[1], "wb") as f:
    f.write(b"BM" + struct.pack("<IHHI", 54 + stride * h, 0, 0, 54))
    f.write(struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, stride * h, 2835, 2835, 0, 0))
    f.write(os.urandom(stride * h))
PY
mkdir -p "$work/debx"
dpkg-deb -x "$deb" "$work/debx"
taskset -c 0 "$work/debx/usr/bin/rlewatch" compress -o "$work/share/data/photo.onethread.rle" \
  "$work/share/data/photo.bmp" >/dev/null

# --- the cached bookworm tree ----------------------------------------------
mkdir -p "$cache"
(
  # One builder at a time; a build that was interrupted left only a .tmp.
  flock 9
  if [ ! -d "$tree" ]; then
    echo "== debootstrap $suite (minbase + $include) into $tree (once; cached)"
    t0=$SECONDS
    rm -rf "$tree.tmp"
    debootstrap --variant=minbase --include="$include" "$suite" "$tree.tmp" "$mirror" \
      >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log"; exit 1; }
    mv "$tree.tmp" "$tree"
    echo "   built in $((SECONDS - t0)) s"
  fi
) 9>"$cache/.lock"

# --- boot ------------------------------------------------------------------
machine=rlewatch-e2e-$$
echo "== booting $suite with systemd-nspawn"
# --register=no and --keep-unit: this host has no systemd as PID 1 (no
# machined, no scope to create). --volatile=overlay: writes go to a tmpfs
# over the cached tree. --private-network: no network inside, so the install
# must work offline from the local file.
# setsid: its own session, so a Ctrl-C meant for this script does not reach
# nspawn directly; the EXIT trap shuts the container down in order.
setsid systemd-nspawn --quiet -D "$tree" --machine="$machine" --volatile=overlay \
  --register=no --keep-unit --private-network \
  --bind-ro="$work/share:/e2e" -b </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!

boot_deadline=$((SECONDS + 60))
until [ -n "$ct_pid" ]; do
  for child in $(pgrep -P "$nspawn_pid" || true); do
    [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] && ct_pid=$child
  done
  if [ -z "$ct_pid" ]; then
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log"; echo "systemd-nspawn exited" >&2; exit 1; }
    [ $SECONDS -lt $boot_deadline ] || { cat "$work/console.log"; echo "no container init after 60 s" >&2; exit 1; }
    sleep 0.1
  fi
done
# systemctl talks to PID 1 over /run/systemd/private: wait for it.
until [ -S "/proc/$ct_pid/root/run/systemd/private" ]; do
  [ $SECONDS -lt $boot_deadline ] || { cat "$work/console.log"; echo "systemd did not come up" >&2; exit 1; }
  sleep 0.1
done

# Runs a command inside the container, with a clean environment.
in_ct() {
  timeout "${limit:-60}" nsenter -t "$ct_pid" -a -- /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive "$@"
}
# The same, for apt-get (slower).
in_ct_slow() { limit=180 in_ct "$@"; }
# Runs a shell snippet as the writer (a non-root member of group rlewatch).
as_writer() { in_ct runuser -u writer -- sh -ec "$1"; }

state=$(limit=90 in_ct systemctl is-system-running --wait 2>&1 || true)
echo "   container up in $((SECONDS - started)) s (system state: $state)"
if [ "$state" != running ]; then in_ct systemctl --failed --no-pager || true; fi

# --- checks ----------------------------------------------------------------
passed=0
failures=()
pass() { printf 'ok   %s\n' "$1"; passed=$((passed + 1)); }
fail() {
  printf 'FAIL %s\n' "$1"
  [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     | /'
  failures+=("$1")
}
# check NAME COMMAND...: passes when the command succeeds.
check() {
  local name=$1
  shift
  local out
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
# wait_for SECONDS COMMAND...: polls the command until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
prop() { in_ct systemctl show -p "$1" --value rlewatch; }
journal() { in_ct journalctl -u rlewatch -o cat --no-pager "$@"; }
# Output is captured before grep -q looks at it: with pipefail, grep -q
# quitting at the first match would fail the pipeline with SIGPIPE.
journal_has() {
  local j
  j=$(journal) || return 1
  grep -qF -- "$1" <<<"$j"
}
# Negative checks fail, rather than pass, when the container cannot be asked.
journal_lacks() {
  local j
  j=$(journal) || return 1
  ! grep -qE -- "$1" <<<"$j"
}
same() { in_ct cmp "$1" "$2"; }
exists() { in_ct test -e "$1"; }
absent() { in_ct sh -c '! test -e "$1"' sh "$1"; }
count_below() {
  local out
  out=$(in_ct find "$1" -type f -name "$2") || { echo "find failed"; return; }
  grep -c . <<<"$out" || true
}
active_running() { [ "$(prop ActiveState) $(prop SubState)" = "active running" ]; }
status_text_matches() {
  local t
  t=$(prop StatusText) || return 1
  grep -qE -- "$1" <<<"$t"
}

echo "== install: apt-get install ./rlewatch.deb (offline, local file)"
in_ct cp /e2e/rlewatch.deb /tmp/rlewatch.deb
check "apt-get install /tmp/rlewatch.deb" in_ct_slow apt-get install -y /tmp/rlewatch.deb
check "package files: /usr/bin/rlewatch, unit, conffile, man page, completions" in_ct sh -ec '
  test -x /usr/bin/rlewatch
  test -f /usr/lib/systemd/system/rlewatch.service
  grep -qx /etc/rlewatch/rlewatch.toml /var/lib/dpkg/info/rlewatch.conffiles
  zcat /usr/share/man/man1/rlewatch.1.gz | grep -q "^.TH rlewatch 1"
  test -f /usr/share/bash-completion/completions/rlewatch
  test -f /usr/share/zsh/vendor-completions/_rlewatch
  test -f /usr/share/fish/vendor_completions.d/rlewatch.fish'
check "user rlewatch is a system user with no login shell" in_ct sh -ec '
  uid=$(id -u rlewatch); [ "$uid" -lt 1000 ]
  getent passwd rlewatch | grep -q ":/usr/sbin/nologin$"'
check "spool tree: inbox 3770, archive/done/failed 0750, all rlewatch:rlewatch" in_ct sh -ec "
  [ \"\$(stat -c '%a %U:%G' $spool/inbox)\" = '3770 rlewatch:rlewatch' ]
  for d in archive done failed; do
    [ \"\$(stat -c '%a %U:%G' $spool/\$d)\" = '750 rlewatch:rlewatch' ]
  done"
check "unit enabled by the package" in_ct systemctl is-enabled rlewatch
check "unit started by the package: active (running), READY reached" wait_for 20 active_running

# A short watchdog for the rest of the run (the shipped 60 s would never
# fire within it): if the daemon stopped pinging, systemd would kill it and
# the MainPID/NRestarts checks at the end would fail.
in_ct mkdir -p /etc/systemd/system/rlewatch.service.d
in_ct sh -c 'printf "[Service]\nWatchdogSec=2s\n" >/etc/systemd/system/rlewatch.service.d/e2e-watchdog.conf'
# The metrics recipe of docs/operations.md ("Metrics: the unit drop-in"):
# node_exporter's textfile folder, writable by rlewatch through an ACL, made
# writable in the unit's sandbox by a drop-in, and the setting in the
# config (the shipped one has the [metrics] keys, off). Interval 1 s so
# the checks below need not wait 15 s.
conf=/etc/rlewatch/rlewatch.toml
prom_dir=/var/lib/prometheus/node-exporter
prom=$prom_dir/rlewatch.prom
in_ct install -d -m 0755 "$prom_dir"
in_ct setfacl -m u:rlewatch:rwx "$prom_dir"
in_ct sh -c "printf '[Service]\nReadWritePaths=$prom_dir\n' >/etc/systemd/system/rlewatch.service.d/metrics.conf"
in_ct cp "$conf" /root/rlewatch.toml.premetrics
in_ct sed -i -e "s|^textfile = \"\"|textfile = \"$prom\"|" -e 's/^interval_secs = 15/interval_secs = 1/' "$conf"
if out=$(in_ct rlewatch check-config "$conf" 2>&1); then
  metrics=on
  pass "metrics: [metrics] textfile = \"$prom\" accepted by check-config"
else
  metrics=off
  fail "metrics: [metrics] textfile = \"$prom\" accepted by check-config" "$out"
  in_ct cp /root/rlewatch.toml.premetrics "$conf"
fi
in_ct systemctl daemon-reload
check "restart with WatchdogSec=2s" in_ct systemctl restart rlewatch
check "WatchdogUSec is 2s" test "$(prop WatchdogUSec)" = 2s
main_pid=$(prop MainPID)
check "STATUS= shows counts" wait_for 10 status_text_matches '^archived 0, failed 0, '
check "after the restart: active (running)" active_running

# An operator's check on an idle daemon (docs/operations.md): OK, exit 0.
# status_check RC REGEX: polls `rlewatch status --check` (as root, as an
# operator runs it) for 10 s until it exits RC with a line starting REGEX.
status_check() {
  local want_rc=$1 want=$2 out rc deadline=$((SECONDS + 10))
  while :; do
    out=$(in_ct rlewatch status --check -c "$conf" 2>&1) && rc=0 || rc=$?
    if [ "$rc" = "$want_rc" ] && grep -qE -- "^$want" <<<"$out"; then return 0; fi
    [ $SECONDS -lt $deadline ] || break
    sleep 0.5
  done
  echo "exit $rc (want $want_rc): $out"
  return 1
}
check "rlewatch status --check: RLEWATCH OK, exit 0" status_check 0 'RLEWATCH OK'
if [ "$metrics" = on ]; then
  check "metrics: $prom written under the shipped unit with the drop-in" wait_for 10 exists "$prom"
  check "metrics: $prom is rlewatch's and readable by node_exporter (0644)" \
    test "$(in_ct stat -c '%U %a' "$prom")" = "rlewatch 644"
fi

echo "== writers"
in_ct useradd --create-home --groups rlewatch writer
in_ct cp -r /e2e/data /home/writer/data
in_ct chown -R writer: /home/writer/data
w=/home/writer
# cp into the inbox (a writer's usual umask, 022: files in the inbox itself
# are fine, the daemon owns that folder).
as_writer "umask 022; cp $w/data/pal1.bmp $spool/inbox/pal1.bmp"
# mv: a rename into the inbox from the same filesystem.
# Its inode number, taken before the mv, must be the one in done/: inbox to
# done/ was a rename, not a copy (one filesystem, one mount in the unit).
as_writer "umask 022; cp $w/data/rgb24.bmp $w/rgb24.bmp; stat -c %i $w/rgb24.bmp >$w/rgb24.inode; mv $w/rgb24.bmp $spool/inbox/rgb24.bmp"
# A subfolder made with umask 002: group-writable, so the daemon may file
# the original away.
as_writer "umask 002; mkdir $spool/inbox/u002; cp $w/data/pal8.bmp $spool/inbox/u002/pal8.bmp"
# A subfolder made with umask 022: the daemon can read but not remove the
# original. Expected: archived once, the original stays, no copies in done/,
# and the log names the fix.
as_writer "umask 022; mkdir $spool/inbox/u022; cp $w/data/pal4rle.bmp $spool/inbox/u022/pal4rle.bmp"
u022_at=$SECONDS
# docs/service.md's other recipe: a default ACL on the inbox keeps subfolders
# group-writable whatever the writer's umask.
acl=ok
if in_ct setfacl -d -m g:rlewatch:rwX "$spool/inbox" 2>"$work/acl.err"; then
  as_writer "umask 022; mkdir $spool/inbox/acl022; cp $w/data/pal1wb.bmp $spool/inbox/acl022/pal1wb.bmp"
else
  acl="setfacl failed: $(cat "$work/acl.err")"
fi
# A writer that pauses with the file still open, longer than settle_ms
# (250 ms): the daemon sees it through the lease probe (CAP_LEASE in the
# unit) and must not take it until it is closed. The writer itself looks
# at the archive just before closing.
as_writer "umask 022; exec 3>$spool/inbox/held.bmp; cat $w/data/rgb16.bmp >&3; sleep 2;
  if test -e $spool/archive/held.rle; then echo taken >$w/held.verdict; else echo waited >$w/held.verdict; fi
  exec 3>&-"
# What scanners write: a TIFF G4 page and a grey PNG, written in place.
as_writer "umask 022; cp $w/data/scan-g4.tif $spool/inbox/scan-g4.tif; cp $w/data/scan.png $spool/inbox/scan.png"
# Bad input: a .bmp that is not a BMP.
as_writer "printf 'this is a text file, not a bitmap; it must be quarantined with its reason\n' >$spool/inbox/bad.bmp"

check "cp: archive/pal1.rle == pal1.dither.rle" wait_for 20 same $spool/archive/pal1.rle /e2e/data/pal1.dither.rle
check "cp: original in done/ unchanged" wait_for 20 same $spool/done/pal1.bmp /e2e/data/pal1.bmp
check "mv: archive/rgb24.rle == rgb24.dither.rle" wait_for 20 same $spool/archive/rgb24.rle /e2e/data/rgb24.dither.rle
check "mv: original in done/" wait_for 20 same $spool/done/rgb24.bmp /e2e/data/rgb24.bmp
check "mv: done/rgb24.bmp is the very file dropped (same inode: renamed, not copied)" \
  test "$(in_ct stat -c %i $spool/done/rgb24.bmp)" = "$(in_ct cat $w/rgb24.inode)"
check "umask 002 subfolder: archive/u002/pal8.rle == pal8.dither.rle" wait_for 20 same $spool/archive/u002/pal8.rle /e2e/data/pal8.dither.rle
check "umask 002 subfolder: original in done/u002" wait_for 20 same $spool/done/u002/pal8.bmp /e2e/data/pal8.bmp
check "umask 002 subfolder: nothing left in the inbox" wait_for 20 absent $spool/inbox/u002/pal8.bmp
if [ "$acl" = ok ]; then
  check "default ACL, umask 022 subfolder: archived" wait_for 20 same $spool/archive/acl022/pal1wb.rle /e2e/data/pal1wb.dither.rle
  check "default ACL, umask 022 subfolder: original in done/acl022" wait_for 20 same $spool/done/acl022/pal1wb.bmp /e2e/data/pal1wb.bmp
else
  fail "default ACL recipe (setfacl -d -m g:rlewatch:rwX inbox)" "$acl"
fi
check "a writer pausing 2 s with the file open: not taken while open" test "$(in_ct cat $w/held.verdict)" = waited
check "... and archived once closed: archive/held.rle == rgb16.dither.rle" wait_for 20 same $spool/archive/held.rle /e2e/data/rgb16.dither.rle
check "TIFF G4: archive/scan-g4.rle == scan-g4.dither.rle (made by Pillow)" wait_for 20 same $spool/archive/scan-g4.rle /e2e/data/scan-g4.dither.rle
check "TIFF G4: original in done/" wait_for 20 same $spool/done/scan-g4.tif /e2e/data/scan-g4.tif
check "PNG: archive/scan.rle == scan.dither.rle (made by Pillow)" wait_for 20 same $spool/archive/scan.rle /e2e/data/scan.dither.rle
check "bad input quarantined: failed/bad.bmp" wait_for 20 exists $spool/failed/bad.bmp
check "bad input: failed/bad.bmp.error.txt gives the reason" wait_for 5 in_ct grep -qi 'not an image file' $spool/failed/bad.bmp.error.txt
check "bad input: nothing archived for it" absent $spool/archive/bad.rle
# A large noisy page dropped alone: dithered on two threads under the unit.
as_writer "umask 022; cp $w/data/photo.bmp $spool/inbox/photo.bmp"
check "a large noisy page: archive/photo.rle == the one-thread loop's" wait_for 60 same $spool/archive/photo.rle /e2e/data/photo.onethread.rle
check "a large noisy page: original in done/" wait_for 20 same $spool/done/photo.bmp /e2e/data/photo.bmp

# Let the backoff run through several retries (1 s, 2 s, 4 s ...).
while [ $((SECONDS - u022_at)) -lt 10 ]; do sleep 0.5; done
check "umask 022 subfolder: the fix is named in the journal" journal_has "writers need umask 002 or a default ACL"
echo "     | $(in_ct find $spool/archive $spool/done $spool/inbox -name 'pal4rle*' -printf '%p %s bytes, ')"
# It cannot be taken out of its folder, so it cannot be claimed: it waits,
# unarchived, until the folder is fixed (nothing to duplicate meanwhile).
check "umask 022 subfolder: not archived while it cannot be claimed (no pal4rle*.rle)" test "$(count_below $spool/archive 'pal4rle*')" = 0
check "umask 022 subfolder: no copy of the original in done/" test "$(count_below $spool/done 'pal4rle*')" = 0
check "umask 022 subfolder: the original stays in the inbox, intact" same $spool/inbox/u022/pal4rle.bmp /e2e/data/pal4rle.bmp

# Archived and filed: pal1, rgb24, held, u002/pal8, acl022/pal1wb, scan-g4.tif,
# scan.png, photo (u022's original is not filed yet, so it is not counted);
# quarantined: bad.bmp. The daemon
# refreshes STATUS= every 5 s: poll for it.
check "STATUS= shows the counts (archived 8, failed 1)" wait_for 12 status_text_matches '^archived 8, failed 1, '
status=$(in_ct systemctl status rlewatch --no-pager -n 0 2>&1 || true)
status_shows() {
  grep -qF -- "$1" <<<"$status" || { grep -F 'Status:' <<<"$status" || echo "(no Status: line)"; return 1; }
}
check "systemctl status shows them" status_shows 'Status: "archived 8, failed 1, '
prom_has() {
  local p
  p=$(in_ct cat "$prom") || return 1
  grep -qxF -- "$1" <<<"$p"
}
if [ "$metrics" = on ]; then
  check "metrics: rlewatch_files_archived_total 8" wait_for 10 prom_has 'rlewatch_files_archived_total 8'
  check "metrics: rlewatch_files_failed_total{reason=\"not_an_image\"} 1" \
    wait_for 10 prom_has 'rlewatch_files_failed_total{reason="not_an_image"} 1'
fi
check "metrics textfile: no temporary file left beside it" test "$(count_below $prom_dir '*')" = 1
# bad.bmp in failed/ is new until acknowledged: WARNING, then OK after --ack.
status_exit() {
  local want=$1 out rc=0
  shift
  out=$(in_ct rlewatch status -c "$conf" --check "$@" 2>&1) || rc=$?
  [ "$rc" = "$want" ] && grep -q "^RLEWATCH " <<<"$out" || { echo "exit $rc: $out"; return 1; }
}
check "rlewatch status --check: WARNING (1) for bad.bmp new in failed/" status_exit 1
check "rlewatch status --check --ack: OK (0)" status_exit 0 --ack

# Nothing in the journal that says the sandbox is in the way (the umask-022
# subfolder's own lines are expected and checked above). One line is
# expected: the unit's RestrictSUIDSGID= seccomp filter answers openat2 with
# ENOSYS, and the daemon says once that it falls back to opening sources
# component by component (issue 7).
# (A journal that cannot be read fails these checks, never passes them.)
log=$(journal) || log=
check "journal: readable and shows the daemon started" grep -q 'rlewatch [0-9.]* started: ' <<<"$log"
check "journal: the openat2 fallback is announced at most once" \
  test "$(grep -c 'openat2 is not available' <<<"$log")" -le 1
# (The shutdown line counts "N retrying file(s)", whatever N: not a retry.)
bad=$(grep -v "u022" <<<"$log" | grep -v 'openat2 is not available.*opening sources component by component' |
  grep -v 'shutting down: finishing .* retrying file(s) stay in the inbox' |
  grep -E 'EPERM|EACCES|ENOSYS|EROFS|Operation not permitted|Permission denied|Function not implemented|Read-only file system|[Rr]etry|another filesystem' || true)
check "journal: no EPERM/EACCES/ENOSYS/EROFS, retry or other-filesystem lines (outside u022)" test -n "$log" -a -z "$bad"
check "journal: writers are observed (no 'cannot observe writers' line)" test -n "$log" -a -z "$(grep 'cannot observe writers' <<<"$log" || true)"
[ -z "$bad" ] || printf '%s\n' "$bad" | head -n 20 | sed 's/^/     | /'

echo "== the daemon's own folders, the ledger, the audit"
# (setgid is inherited from the inbox: harmless with no group access.)
check "inbox/.rlewatch and its claim folders: rlewatch's, no access for group or others" in_ct sh -ec "
  for d in $spool/inbox/.rlewatch $spool/inbox/.rlewatch/claims $spool/inbox/.rlewatch/claims/*; do
    m=\$(stat -c '%a' \$d); u=\$(stat -c '%U' \$d)
    [ \"\$u\" = rlewatch ] && [ \$(( 0\$m & 077 )) -eq 0 ] || { echo \"\$d: \$m \$u\"; exit 1; }
  done"
# The sticky inbox (3770): a writer can neither empty nor move away the
# daemon's folder, nor take another's file. The writer's attempts must fail
# *with a permission error* (an error of another kind fails the check).
writer_denied() {
  local out
  out=$(as_writer "$1" 2>&1) && return 1
  grep -qE 'Permission denied|Operation not permitted' <<<"$out" || { echo "     | $out"; return 1; }
}
check "a writer cannot delete the daemon's lock" writer_denied "rm -f $spool/inbox/.rlewatch/*.lock"
check "a writer cannot move the daemon's folder away (sticky inbox)" writer_denied "mv $spool/inbox/.rlewatch $spool/inbox/moved"
in_ct sh -c "install -o root -g rlewatch -m 0664 /e2e/data/pal1.bmp $spool/inbox/other.bmp.part"
check "a writer cannot delete another user's file in the inbox (sticky)" writer_denied "rm -f $spool/inbox/other.bmp.part"
in_ct rm -f $spool/inbox/other.bmp.part
check "no claim left behind (all claims finished)" test "$(count_below $spool/inbox/.rlewatch/claims '*')" = 0
# Version-3 ledgers hold, besides one archived entry per file (no "kind"),
# a line saying where each original went ("kind":"filed") and one per
# quarantine.
check "ledger: one entry per archived file (8)" test "$(in_ct sh -c "cat $spool/archive/.rlewatch/ledger/*/*.jsonl | grep -vc '\"kind\"'")" = 8
# (written right after the original is filed: waited for)
eight_filed() { test "$(in_ct sh -c "cat $spool/archive/.rlewatch/ledger/*/*.jsonl | grep -c '\"kind\":\"filed\"'")" = 8; }
check "ledger: where each of the 8 originals went" wait_for 10 eight_filed
# (--no-index: writes no index tables into the archive as root)
# (the whole output first: grep -q would close the pipe early)
where_finds_done() {
  local out
  out=$(in_ct rlewatch where -c /etc/rlewatch/rlewatch.toml --no-index --json '*') &&
    grep -q '"state": "done"' <<<"$out"
}
check "rlewatch where finds the archived files' originals in done/" where_finds_done
check "rlewatch audit: clean" in_ct rlewatch audit -c /etc/rlewatch/rlewatch.toml

echo "== reload"
in_ct cp "$conf" /root/rlewatch.toml.orig
in_ct sed -i 's/^conversion = "dither"/conversion = "threshold"/' "$conf"
check "valid change: systemctl reload exits 0" in_ct systemctl reload rlewatch
check "valid change: journal says 'configuration reloaded: conversion threshold'" \
  wait_for 10 journal_has "configuration reloaded: conversion threshold"
# rgb16 and rgb24: vectors whose dither and threshold archives differ (the
# palette ones are pure black and white, where both modes agree).
check "test vectors: rgb16/rgb24 dither and threshold archives differ" \
  sh -c '! cmp -s tests/data/rgb16.dither.rle tests/data/rgb16.threshold.rle && ! cmp -s tests/data/rgb24.dither.rle tests/data/rgb24.threshold.rle'
as_writer "cp $w/data/rgb16.bmp $spool/inbox/rgb16-t.bmp"
check "valid change applied: rgb16-t.rle == rgb16.threshold.rle" wait_for 20 same $spool/archive/rgb16-t.rle /e2e/data/rgb16.threshold.rle

in_ct sh -c "printf '[compress]\nconversion = \"sharpen\"\n' >$conf"
out=$(in_ct systemctl reload rlewatch 2>&1) && rc=0 || rc=$?
check "broken file: systemctl reload fails (exit $rc)" test "$rc" -ne 0
[ "$rc" -ne 0 ] || printf '%s\n' "$out" | sed 's/^/     | /'
status=$(in_ct systemctl status rlewatch --no-pager -n 20 2>&1 || true)
check "broken file: systemctl status shows why" grep -q "not reloaded, the daemon keeps its running configuration: .*sharpen" <<<"$status"
check "broken file: still active (running), same process" \
  test "$(prop ActiveState) $(prop SubState) $(prop MainPID)" = "active running $main_pid"
check "broken file: no SIGHUP sent (the daemon logged no 'reload failed')" journal_lacks 'reload failed, keeping the running configuration'
as_writer "cp $w/data/rgb24.bmp $spool/inbox/rgb24-t.bmp"
check "broken file: the running config (threshold) keeps working" wait_for 20 same $spool/archive/rgb24-t.rle /e2e/data/rgb24.threshold.rle
in_ct cp /root/rlewatch.toml.orig "$conf"
check "restored file: systemctl reload exits 0" in_ct systemctl reload rlewatch

echo "== watchdog"
wd1=$(prop WatchdogTimestampMonotonic)
sleep 2.5
wd2=$(prop WatchdogTimestampMonotonic)
check "watchdog pings (WatchdogTimestamp advanced: $wd1 -> $wd2)" test "$wd2" -gt "$wd1"
check "not killed by the watchdog: same MainPID, NRestarts=0" \
  test "$(prop MainPID) $(prop NRestarts)" = "$main_pid 0"
check "journal: no watchdog timeout" journal_lacks '[Ww]atchdog timeout'

echo "== stop"
check "systemctl stop exits 0" in_ct systemctl stop rlewatch
check "stopped cleanly (Result=success, exit status 0)" test "$(prop Result) $(prop ExecMainStatus)" = "success 0"
# The last summary line: ten archived and filed (the eight above, rgb16-t,
# rgb24-t), bad.bmp failed, u022's original still waiting in the inbox.
summary=$(journal | grep 'stopped: archived' | tail -n 1)
check "journal: the daemon's summary line (archived 10, 1 failed)" \
  grep -qE 'stopped: archived 10 file\(s\), [0-9]+ -> [0-9]+ bytes, 1 failed, ' <<<"$summary"
[ -n "$summary" ] && echo "     | $summary"
if [ "$metrics" = on ]; then
  check "metrics: rewritten at the stop (rlewatch_files_archived_total 10)" prom_has 'rlewatch_files_archived_total 10'
fi
check "rlewatch status --check with no daemon running: RLEWATCH CRITICAL, exit 2" status_check 2 'RLEWATCH CRITICAL'

echo "== journal fields (docs/operations.md: journalctl -u rlewatch MESSAGE_ID=...)"
# The ids are the published ones, written out here as the docs give them.
id_archived=f31fd86b424d4093947edea39e34f61e
id_quarantined=35c6e31167db49dbbc2bfd2dcd53146c
id_retrying=bcaf54f1eddb48b39a808229f4637964
id_reloaded=de8e60addef9429989e2bd8b5c18df40
id_reload_refused=0d830c9b3c124c86a16e04e3067b92a6
# FIELD's values in the entries matching the filters, one per line, sorted.
journal_field() {
  local name=$1 out
  shift
  out=$(in_ct journalctl -u rlewatch --no-pager -o export "$@") || return 1
  sed -n "s/^$name=//p" <<<"$out" | sort
}
# Every file archived, each once: the ten of the STATUS=/summary counts.
want=$(printf '%s\n' pal1.bmp rgb24.bmp u002/pal8.bmp held.bmp scan-g4.tif scan.png photo.bmp rgb16-t.bmp rgb24-t.bmp \
  $([ "$acl" = ok ] && echo acl022/pal1wb.bmp) | sort)
got=$(journal_field RLEWATCH_SOURCE MESSAGE_ID=$id_archived || echo "(journalctl failed)")
check "journalctl -u rlewatch MESSAGE_ID=$id_archived: exactly the archived files (RLEWATCH_SOURCE)" \
  test "$got" = "$want"
[ "$got" = "$want" ] || { echo "     | want: $(tr '\n' ' ' <<<"$want")"; echo "     | got:  $(tr '\n' ' ' <<<"$got")"; }
check "... with RLEWATCH_ARCHIVE = the archive beside each (pal1.bmp -> pal1.rle)" \
  grep -qx 'pal1.rle' <<<"$(journal_field RLEWATCH_ARCHIVE MESSAGE_ID=$id_archived RLEWATCH_SOURCE=pal1.bmp)"
check "... one entry per archived file (no duplicate from stderr): $(wc -l <<<"$want") archived lines in all" \
  test "$(journal | grep -c '^archived ')" = "$(wc -l <<<"$want")"
check "journalctl MESSAGE_ID=$id_quarantined: bad.bmp, at priority warning" \
  test "$(journal_field RLEWATCH_SOURCE MESSAGE_ID=$id_quarantined -p warning)" = bad.bmp
check "journalctl MESSAGE_ID=$id_retrying: only u022/pal4rle.bmp, which cannot be claimed, is retried" \
  test "$(journal_field RLEWATCH_SOURCE MESSAGE_ID=$id_retrying | sort -u)" = u022/pal4rle.bmp
check "journalctl MESSAGE_ID=$id_reloaded: the two reloads applied" \
  test "$(journal_field MESSAGE_ID MESSAGE_ID=$id_reloaded | wc -l)" = 2
check "journalctl MESSAGE_ID=$id_reload_refused: the broken file refused by systemctl reload" \
  grep -q 'sharpen' <<<"$(journal_field MESSAGE MESSAGE_ID=$id_reload_refused)"
check "journal entries name the host and the program (RLEWATCH_HOST, SYSLOG_IDENTIFIER=rlewatch)" \
  test "$(journal_field SYSLOG_IDENTIFIER MESSAGE_ID=$id_archived RLEWATCH_SOURCE=pal1.bmp)" = rlewatch -a \
  -n "$(journal_field RLEWATCH_HOST MESSAGE_ID=$id_archived RLEWATCH_SOURCE=pal1.bmp)"
check "journal: the native journal socket was reachable in the sandbox (no fallback line)" \
  journal_lacks 'journal/socket cannot be reached'

echo "== reinstall (as an upgrade does)"
# A local edit to the conffile survives; postinst restarts the service.
in_ct sh -c "printf '# edited by the operator\n' >>$conf"
check "apt-get install --reinstall" in_ct_slow apt-get install -y --reinstall /tmp/rlewatch.deb
check "reinstalled: the operator's edit to the conffile is kept" in_ct grep -qx '# edited by the operator' "$conf"
check "reinstalled: active (running) again" wait_for 20 active_running

echo "== remove and purge"
check "apt-get remove rlewatch" in_ct_slow apt-get remove -y rlewatch
check "removed: the service was stopped" test "$(prop ActiveState)" = inactive
check "removed: binary and unit gone, conffile kept" in_ct sh -ec '
  ! test -e /usr/bin/rlewatch; ! test -e /usr/lib/systemd/system/rlewatch.service
  test -f /etc/rlewatch/rlewatch.toml'
check "apt-get purge rlewatch" in_ct_slow apt-get purge -y rlewatch
check "purged: config and user rlewatch gone" in_ct sh -ec '
  ! test -e /etc/rlewatch/rlewatch.toml; ! getent passwd rlewatch'
check "purged: archives, done/ and failed/ left in place" in_ct sh -ec "
  cmp $spool/archive/pal1.rle /e2e/data/pal1.dither.rle
  cmp $spool/archive/u002/pal8.rle /e2e/data/pal8.dither.rle
  cmp $spool/done/pal1.bmp /e2e/data/pal1.bmp
  test -f $spool/failed/bad.bmp.error.txt"

echo
echo "$passed passed, ${#failures[@]} failed, in $((SECONDS - started)) s"
if [ ${#failures[@]} -gt 0 ]; then
  echo "--- journal of rlewatch.service (last 60 lines)"
  journal -n 60 || true
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
