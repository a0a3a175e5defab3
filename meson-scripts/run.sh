#!/usr/bin/env bash
# The main job: set up the machine, build release, run Rampart. With no
# arguments it runs the embedded demo; any arguments go to `rampart run`.
set -euo pipefail
cd "$(dirname "$0")/.."
meson-scripts/setup.sh
cargo build --release --locked --bin rampart
exec target/release/rampart run "$@"
