#!/usr/bin/env bash
# The daemon bench (benches/daemon.rs) with its folders on each filesystem
# of the test matrix (tests/all/support/loopfs.rs): ext4, ext4
# data=journal, XFS, btrfs, btrfs compress=zstd, each made in a sparse
# file on a loop device, and tmpfs. Root only. Sizes as the bench's own
# variables (defaults here: 300 files, a backlog of 300).
#   sudo bash benches/fsmatrix.sh            # all
#   sudo bash benches/fsmatrix.sh xfs btrfs  # some (names as below)
set -euo pipefail
cd "$(dirname "$0")/.."
export RLEWATCH_BENCH_FILES=${RLEWATCH_BENCH_FILES:-300}
export RLEWATCH_BENCH_BACKLOG=${RLEWATCH_BENCH_BACKLOG:-300}
cargo bench --bench daemon --no-run 2>/dev/null
work=$(mktemp -d /tmp/rlewatch-fsbench-XXXXXX)
mnt="$work/mnt"
mkdir "$mnt"
dev=
cleanup() {
  umount "$mnt" 2>/dev/null || true
  [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(ext4 ext4-journal xfs btrfs btrfs-zstd tmpfs)
for kind in "${kinds[@]}"; do
  opts=
  case "$kind" in
    ext4) mkfs=(mkfs.ext4 -q -F) ;;
    ext4-journal) mkfs=(mkfs.ext4 -q -F); opts=data=journal ;;
    xfs) mkfs=(mkfs.xfs -q -f) ;;
    btrfs) mkfs=(mkfs.btrfs -q -f) ;;
    btrfs-zstd) mkfs=(mkfs.btrfs -q -f); opts=compress=zstd ;;
    tmpfs) mkfs=() ;;
    *) echo "unknown filesystem $kind" >&2; exit 2 ;;
  esac
  if [ ${#mkfs[@]} -eq 0 ]; then
    mount -t tmpfs -o size=4g tmpfs "$mnt"
  else
    truncate -s 4G "$work/image"
    "${mkfs[@]}" "$work/image" >/dev/null
    dev=$(losetup --find --show "$work/image")
    mount ${opts:+-o "$opts"} "$dev" "$mnt"
  fi
  echo "== $kind${opts:+ ($opts)}"
  RLEWATCH_BENCH_ROOT="$mnt" cargo bench --bench daemon 2>/dev/null |
    grep -E '^(throughput|latency|backlog|durable)'
  umount "$mnt"
  if [ -n "$dev" ]; then losetup -d "$dev"; dev=; fi
  rm -f "$work/image"
done
