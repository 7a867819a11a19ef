#!/usr/bin/env bash
# Builds the Debian package: target/debian/rlewatch_VERSION-1_ARCH.deb.
#   debian/build-deb.sh [extra cargo-deb arguments]
# cargo-deb packages files that must exist first: the man pages and shell
# completions, which the built binary writes from its own clap definitions
# (the hidden `generate-assets` subcommand). So: build, generate, package.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

cargo build --release --locked
# cargo-deb rewrites asset paths that start with target/release/ to the real
# target folder (CARGO_TARGET_DIR and the like); generate into that folder.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
assets="$target_dir/release/assets"
rm -rf "$assets"
"$target_dir/release/rlewatch" generate-assets "$assets"
# The configuration file's page, rlewatch.toml(5), is written by hand.
install -m 0644 docs/rlewatch.toml.5 "$assets/"
# Debian policy: man pages gzipped at maximum compression, with no name or
# timestamp in the header (-n) so that the package is reproducible.
gzip -9n "$assets"/*.1 "$assets"/*.5

# --dbgsym: the binary in the package is stripped (36 MB -> a few MB); its
# debug info ([profile.release] debug = 1, for stack traces) goes into a
# separate rlewatch-dbgsym .ddeb beside it, as Debian does.
cargo deb --no-build --locked --dbgsym "$@"
