#!/usr/bin/env bash
# What `rampart events` itself receives and writes in a deny storm, per
# output format: the dataplane replays the harness's deny-storm capture on
# one worker (CPU 1) for SECONDS, with `rampart events --format FORMAT >
# /dev/null` (CPU 0, beside the control lcore) as its only consumer; the
# rates come from the dataplane's own final counters (generated, and this
# consumer's delivered and dropped), so the books balance whatever the
# consumer manages. The consumer's own CPU time (user + system) gives its
# rate per CPU-second: what one core of its own would take.
#
# FORMAT `syslog` forwards instead: `rampart events --format junos --syslog
# tcp://127.0.0.1:PORT` (RFC 5424 framing) into an rsyslogd this script
# starts (CPU 0 too) that writes every message to a file; the lines it
# wrote are counted.
#
#   meson-scripts/bench-consumer.sh [SECONDS] [FORMAT...]   (default 8; json junos junos-sd syslog)
#
# RAMPART_BIN=DIR uses the rampart and rampart-bench binaries in DIR
# (another build, for a before/after comparison) instead of building.
# Needs what meson-scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
shift || true
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(json junos junos-sd syslog)
if [ -n "${RAMPART_BIN:-}" ]; then
    bin=$RAMPART_BIN
else
    cargo build --release --locked -q -p rampart -p rampart-bench
    bin=$PWD/target/release
fi
work=$(mktemp -d /tmp/rampart-bench-consumer-XXXXXX)
rsyslog_pid=
cleanup() {
    [ -n "$rsyslog_pid" ] && kill "$rsyslog_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin/rampart-bench" --export "$work/prof" --profiles deny-storm >/dev/null

# A TCP port nobody listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_rsyslog() { # DIR PORT
    local d=$1 port=$2
    mkdir -p "$d/rsyslog-work"
    cat > "$d/rsyslog.conf" <<EOC
global(workDirectory="$d/rsyslog-work")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$port" ruleset="rampart")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="rampart") {
  action(type="omfile" file="$d/syslog.out" template="raw" asyncWriting="on" ioBufferSize="256k")
}
EOC
    local rsyslogd
    rsyslogd=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
    taskset -c 0 "$rsyslogd" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" >/dev/null 2>&1 &
    rsyslog_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "rsyslogd did not start listening on $port" >&2
    exit 1
}

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
    consumer=(--format "$fmt")
    if [ "$fmt" = syslog ]; then
        port=$(free_port)
        start_rsyslog "$d" "$port"
        consumer=(--format junos --syslog "tcp://127.0.0.1:$port")
    fi
    # The consumer's CPU time, from the kernel's accounting of the child.
    (sleep 0.5; exec taskset -c 0 python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(r.ru_utime + r.ru_stime))
' "$d/consumer.cpu" "$bin/rampart" events --socket "$d/events.sock" "${consumer[@]}" --once) &
    consumer_pid=$!
    "$bin/rampart" run --config "$d/rampart.toml" --duration "$secs" --wait-consumer 10 \
        --stats-out "$d/stats.json" > "$d/run.log" 2>&1
    wait "$consumer_pid"
    written=-1
    if [ "$fmt" = syslog ]; then
        # rsyslogd writes asynchronously: wait until the file stops growing.
        prev=-1
        for _ in $(seq 100); do
            n=$(wc -l < "$d/syslog.out" 2>/dev/null || echo 0)
            [ "$n" = "$prev" ] && break
            prev=$n
            sleep 0.3
        done
        written=$prev
        kill "$rsyslog_pid" 2>/dev/null || true
        wait "$rsyslog_pid" 2>/dev/null || true
        rsyslog_pid=
    fi
    python3 - "$d/stats.json" "$secs" "$fmt" "$(cat "$d/consumer.cpu")" "$written" <<'EOP'
import json, sys
s = json.load(open(sys.argv[1]))
secs, fmt, cpu, written = float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
gen = sum(v["generated"] for v in s["events"].values())
c = s["consumers"][0]
def total(v):
    return sum(v.values()) if isinstance(v, dict) else v
delivered, dropped = total(c["delivered"]), total(c["dropped"])
line = (f"{fmt:9} generated {gen/secs/1e6:5.2f} M events/s; rampart events received {delivered/secs/1e6:5.2f} M/s "
        f"({100*delivered/max(gen,1):5.1f}%), dropped for it {dropped/secs/1e6:5.2f} M/s; "
        f"consumer CPU {cpu:5.2f} s = {delivered/max(cpu,1e-9)/1e6:5.2f} M records per CPU-second")
if written >= 0:
    line += f"; rsyslogd wrote {written} lines ({written/secs/1e6:5.2f} M/s)"
print(line)
EOP
done
