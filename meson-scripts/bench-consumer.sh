#!/usr/bin/env bash
# What `rampart events` itself receives and writes in a deny storm, per
# output format: the dataplane replays the harness's deny-storm capture on
# one worker (CPU 1) for SECONDS, with `rampart events --format FORMAT >
# /dev/null` (CPU 0) as its only consumer; the rates come from the
# dataplane's own final counters (generated, and this consumer's delivered
# and dropped), so the books balance whatever the consumer manages.
#
#   meson-scripts/bench-consumer.sh [SECONDS] [FORMAT...]   (default 8; json junos junos-sd)
#
# Needs what meson-scripts/setup.sh installs; builds release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
shift || true
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(json junos junos-sd)
cargo build --release --locked -q --bin rampart --bin rampart-bench
bin=$PWD/target/release
work=$(mktemp -d /tmp/rampart-bench-consumer-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$bin/rampart-bench" --export "$work/prof" --profiles deny-storm >/dev/null
for fmt in "${formats[@]}"; do
    d=$work/$fmt
    mkdir -p "$d"
    cat > "$d/rampart.toml" <<EOC
[dataplane]
workers = 1
eal = ["--no-huge", "-m", "1024", "--no-shconf", "--file-prefix=rampart-bench-consumer-$fmt", "--lcores", "0@0,1@1", "--log-level", "lib.eal:error"]
[events]
socket = "$d/events.sock"
control_socket = "$d/control.sock"
[[interface]]
name = "ge-0/0/0"
device = "net_pcap0,rx_pcap=$work/prof/deny-storm.pcap,infinite_rx=1"
zone = "untrust"
peer = "ge-0/0/1"
[[interface]]
name = "ge-0/0/1"
device = "net_null0,no-rx=1"
zone = "trust"
peer = "ge-0/0/0"
[flow]
tcp-syn-check = false
EOC
    sed -n '/^\[/,$p' "$work/prof/deny-storm.policy.toml" >> "$d/rampart.toml"
    (sleep 0.5; exec taskset -c 0 "$bin/rampart" events --socket "$d/events.sock" --format "$fmt" --once > /dev/null) &
    consumer=$!
    "$bin/rampart" run --config "$d/rampart.toml" --duration "$secs" --wait-consumer 10 \
        --stats-out "$d/stats.json" > "$d/run.log" 2>&1
    wait "$consumer"
    python3 - "$d/stats.json" "$secs" "$fmt" <<'EOP'
import json, sys
s = json.load(open(sys.argv[1]))
secs, fmt = float(sys.argv[2]), sys.argv[3]
gen = sum(v["generated"] for v in s["events"].values())
c = s["consumers"][0]
def total(v):
    return sum(v.values()) if isinstance(v, dict) else v
delivered, dropped = total(c["delivered"]), total(c["dropped"])
print(f"{fmt:9} generated {gen/secs/1e6:5.2f} M events/s; rampart events received {delivered/secs/1e6:5.2f} M/s "
      f"({100*delivered/max(gen,1):5.1f}%), dropped for it {dropped/secs/1e6:5.2f} M/s")
EOP
done
