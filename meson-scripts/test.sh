#!/usr/bin/env bash
# The whole test suite: set up the machine, build, run every test. DPDK
# end-to-end tests run one at a time (nextest test group, .config/nextest.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
meson-scripts/setup.sh
cargo build --locked --workspace --all-targets
cargo nextest run --locked --workspace --no-fail-fast "$@"
