#!/usr/bin/env bash
# Builds hvseed and its static first-boot agent (adding the musl target if needed),
# then runs hvseed with the given arguments, e.g.:
#   ./hvseed.sh render profiles/examples/lab-centos6.yaml --out out/
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/setup.sh" build
cargo build --quiet --release --manifest-path "$here/Cargo.toml" -p hvseed-firstboot --target x86_64-unknown-linux-musl
cargo build --quiet --release --manifest-path "$here/Cargo.toml" -p hvseed
export HVSEED_FIRSTBOOT="${HVSEED_FIRSTBOOT:-$here/target/x86_64-unknown-linux-musl/release/hvseed-firstboot}"
exec "$here/target/release/hvseed" "$@"
