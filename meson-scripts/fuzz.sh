#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ (cargo-fuzz, libFuzzer; RUSTC_BOOTSTRAP=1
# lets stable Rust build it) and runs each for a while, one at a time.
# Reports executions per target; exits non-zero on any crash, hang or OOM
# (the input that did it is in fuzz/artifacts/<target>/).
#
#   meson-scripts/fuzz.sh                 every target, 60 s each
#   meson-scripts/fuzz.sh --seconds 300   every target, 5 minutes each
#   meson-scripts/fuzz.sh --smoke         every target, 15 s each (CI)
#   meson-scripts/fuzz.sh pipeline        one target (names: --list)
#
# Corpora live in fuzz/corpus/<target> (not committed) and grow from run to
# run; each run first writes the generated seeds into them (fuzz/src/seeds.rs).
# Reproduce a crash: fuzz/target/<host>/release/<target> <artifact file>.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'fuzz: %s\n' "$*" >&2; }

TARGETS_ALL=(wire_parse pipeline pcap_trace config_load event_decode control_request sync_message)
seconds=60
sanitizer=address
targets=()
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
        --seconds=*) seconds="${1#*=}"; shift ;;
        --smoke) seconds=15; shift ;;
        --sanitizer) sanitizer="${2:?--sanitizer needs address or none}"; shift 2 ;;
        --list) printf '%s\n' "${TARGETS_ALL[@]}"; exit 0 ;;
        -h|--help) usage; exit 0 ;;
        -*) log "unknown option $1"; usage >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { log "--seconds wants a positive number"; exit 2; }
[ ${#targets[@]} -gt 0 ] || targets=("${TARGETS_ALL[@]}")
for t in "${targets[@]}"; do
    [[ " ${TARGETS_ALL[*]} " == *" $t "* ]] || { log "no fuzz target named $t (have: ${TARGETS_ALL[*]})"; exit 2; }
done

# Tools: cargo (rustup's stable toolchain ships the sanitizer runtimes), a
# C++ compiler for libFuzzer, cmake and make for flatc (meson-scripts/setup.sh
# installs them too).
command -v cargo >/dev/null 2>&1 || { log "cargo not found: install Rust (rustup) first"; exit 1; }
missing=()
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        { log "could not install ${missing[*]}; install them by hand"; exit 1; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz >/dev/null
fi
export RUSTC_BOOTSTRAP=1
host=$(rustc -vV | sed -n 's/^host: //p')

# flatc for the event schema comes from the main workspace's build (see
# fuzz/flatc-prebuilt); a no-op when the workspace is already built.
log "building rampart-schema (flatc) in the main workspace"
cargo build --locked -q -p rampart-schema
log "building fuzz targets: ${targets[*]} (sanitizer: $sanitizer)"
build_args=(--debug-assertions --sanitizer "$sanitizer")
for t in "${targets[@]}"; do
    cargo fuzz build "${build_args[@]}" "$t"
done

max_len() {
    case "$1" in
        wire_parse) echo 4096 ;;
        control_request) echo 1024 ;;
        sync_message) echo 1500 ;;
        *) echo 16384 ;;
    esac
}

results=()
failed=()
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
    out="fuzz/artifacts/$t.log"
    log "running $t for ${seconds}s (corpus $corpus)"
    status=0
    started=$(date +%s)
    RAMPART_FUZZ_SEED_DIR="$corpus" "fuzz/target/$host/release/$t" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -artifact_prefix="$artifacts/" "${dict[@]}" \
        "$corpus" >"$out" 2>&1 || status=$?
    took=$(( $(date +%s) - started ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    verdict=ok
    if [ "$status" -ne 0 ]; then
        verdict="FAILED (exit $status)"
        failed+=("$t")
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$out" | head -8 >&2 || true
        log "full output: $out"
    fi
    results+=("$(printf '%-16s %6ss %12s %10s %8s %7s  %s' "$t" "$took" "${execs:-?}" "${rate:-?}" "${files}" "${rss:-?}MB" "$verdict")")
done

printf '\n%-16s %7s %12s %10s %8s %7s  %s\n' target time execs execs/s corpus rss result
printf '%s\n' "${results[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    log "crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)"
    exit 1
fi
