#!/usr/bin/env bash
# Prepares a Debian 12 machine for Rampart: installs what is missing (DPDK
# 22.11 from Debian, the tools to build and test against it), then sets up
# hugepages when it can. Safe to run again; says clearly what it could not do.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
fi
as_root() {
    if [ "$SUDO" = none ]; then return 1; fi
    $SUDO "$@"
}

# Debian packages: DPDK runtime, headers and tools (dpdk-testpmd and
# dpdk-telemetry.py are in dpdk-dev), libclang for bindgen, libpcap for
# net_pcap, cmake/g++ to build flatc, rsyslog as a real syslog peer,
# iproute2, ping, ethtool, curl and hping3 for the tests with real hosts in network
# namespaces, tmux for the test that reads `rampart top` off a real terminal.
PACKAGES=(dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev cmake g++ make
          python3 python3-pip python3-venv rsyslog iproute2 procps iputils-ping ethtool curl coreutils hping3 tmux)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
       ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
        log "could not install ${missing[*]} (need root or sudo and Debian's archive); install them by hand"
        exit 1
    fi
fi
pkg-config --atleast-version=22.11 libdpdk || { log "libdpdk >= 22.11 not found through pkg-config"; exit 1; }

if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install Rust (rustup) first"
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest >/dev/null
fi

# The Python reader of the event stream (tools/python) uses the official
# flatbuffers package, the same version as the Rust crate.
if ! python3 -c 'import flatbuffers' 2>/dev/null; then
    log "installing the flatbuffers Python package"
    python3 -m pip install -q flatbuffers==25.12.19 2>/dev/null ||
        python3 -m pip install -q --break-system-packages flatbuffers==25.12.19 ||
        log "could not install the flatbuffers Python package; the Python reader test will say so"
fi

# The Prometheus endpoint test parses with the reference Python parser.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    log "installing the prometheus_client Python package"
    python3 -m pip install -q prometheus_client 2>/dev/null ||
        python3 -m pip install -q --break-system-packages prometheus_client ||
        log "could not install prometheus_client; the metrics test will say so"
fi

# Hugepages: 1024 x 2 MiB, mounted at /dev/hugepages. Most tests run with
# --no-huge; vhost-user and the benchmarks need real hugepages.
want=${RAMPART_HUGEPAGES:-1024}
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
    if echo "$want" | as_root tee /proc/sys/vm/nr_hugepages >/dev/null 2>&1; then
        have=$(cat /proc/sys/vm/nr_hugepages)
        log "hugepages: $have x 2 MiB reserved"
    else
        log "hugepages: could not reserve $want (need root); tests that need them will say so"
    fi
fi
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    as_root mkdir -p /dev/hugepages 2>/dev/null || true
    if as_root mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null; then
        log "hugepages: mounted hugetlbfs at /dev/hugepages"
    else
        log "hugepages: could not mount hugetlbfs at /dev/hugepages (need root)"
    fi
fi
log "ready: DPDK $(pkg-config --modversion libdpdk), $(cat /proc/sys/vm/nr_hugepages) hugepages"
