#!/usr/bin/env bash
# The benchmark harness (issue #5): set up the machine, build release, run
# every scenario several times on both topologies (pcap-replay: Rampart and
# dpdk-testpmd io each reading the capture; vhost: a testpmd generator
# through virtio_user <-> vhost-user into Rampart, testpmd io or Open
# vSwitch-DPDK and back), write bench-results/results.json, the tables in
# BENCHMARKS.md and the PNG plots.
#
#   meson-scripts/bench.sh [--quick] [--runs N] [other rampart-bench flags]
#
# --quick: 1 run, ~1 s measurements, 4 profiles on pcap-replay (est-64,
# deny-storm, deny-storm-agg, rules-100) and est-64 on vhost (all three systems), results in
# $TMPDIR/rampart-bench-quick, BENCHMARKS.md and the plots untouched; exits
# non-zero if any run fails or the accounting of any run does not
# reconcile (for CI).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for a in "$@"; do
    [ "$a" = "--quick" ] && quick=1
done

log() { printf 'bench: %s\n' "$*" >&2; }

meson-scripts/setup.sh

# Open vSwitch-DPDK, the baseline a user might pick instead.
# The harness runs a private instance per run; the package's own services,
# if its install started them, are stopped (they would hold CPU and memory).
if [ ! -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "not root: cannot install openvswitch-switch-dpdk; no Open vSwitch baseline"
    else
        log "installing openvswitch-switch-dpdk"
        install_ovs() {
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                openvswitch-switch-dpdk >/dev/null
        }
        if install_ovs || { apt-get update -q >/dev/null && install_ovs; }; then
            /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
        else
            log "could not install openvswitch-switch-dpdk: no Open vSwitch baseline"
        fi
    fi
fi

log "building release (rampart, rampart-bench)"
cargo build --release --locked -p rampart -p rampart-bench
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null ||
    echo target)

if [ "$quick" = 0 ] && ! python3 -c 'import matplotlib' 2>/dev/null; then
    log "installing matplotlib"
    python3 -m pip install -q matplotlib 2>/dev/null ||
        python3 -m pip install -q --break-system-packages matplotlib ||
        log "could not install matplotlib; plots will be skipped"
fi

# The command recorded in BENCHMARKS.md is this script's.
cmd="meson-scripts/bench.sh${*:+ $*}"
"$target_dir/release/rampart-bench" --command "$cmd" "$@"

if [ "$quick" = 0 ]; then
    if python3 -c 'import matplotlib' 2>/dev/null; then
        log "plotting"
        python3 meson-scripts/plot.py bench-results/results.json bench-results/
    else
        log "matplotlib missing: no plots"
    fi
fi
