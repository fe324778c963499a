#!/usr/bin/env bash
# Fuzz each target (all by default) for SECONDS, one at a time, and print per target the
# executions, exec/s, coverage (cov, ft), corpus size and whether it crashed. Exits non-zero
# if any target crashed (the input is in fuzz/artifacts/<target>/).
# Usage: bash fuzz/run.sh SECONDS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
# cargo fuzz passes nightly-only compiler flags; this lets the stable toolchain take them.
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
[ -d fuzz/corpus ] || bash fuzz/seed.sh

# No sanitizer: the crate forbids unsafe code, so the bugs to find are panics, and overflow
# and debug assertions (on in cargo fuzz builds) catch those at full speed.
nice -n 10 cargo fuzz build --sanitizer none
bin=${CARGO_TARGET_DIR:-fuzz/target}/$(rustc -vV | sed -n 's/^host: //p')/release
logs=fuzz/target/logs
mkdir -p "$logs" fuzz/target/dict
cat fuzz/dict/*.dict >fuzz/target/dict/session.dict

dict_of() {
    case $1 in
        smtp | imap | pop3 | tls | content) echo "fuzz/dict/$1.dict" ;;
        session | pipeline) echo fuzz/target/dict/session.dict ;;
    esac
}

failed=0
printf '%-12s %12s %8s %7s %8s %7s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    args=(-max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1
        -artifact_prefix="fuzz/artifacts/$t/")
    dict=$(dict_of "$t")
    [ -n "$dict" ] && args+=(-dict="$dict")
    status=ok
    rc=0
    nice -n 10 "$bin/$t" "${args[@]}" "fuzz/corpus/$t" >"$logs/$t.log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        failed=1
        # libFuzzer names what it saved: crash-, timeout-, oom- or leak-<sha1>.
        artifact=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$logs/$t.log" | tail -n 1)
        status="CRASHED ${artifact:-(exit $rc, no input saved)}"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log")
    last=$(grep -E '^#[0-9]+.*cov: ' "$logs/$t.log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    files=$(find "fuzz/corpus/$t" -type f | wc -l)
    printf '%-12s %12s %8s %7s %8s %7s  %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" \
        "${ft:--}" "$files" "$status"
    if [ $rc -ne 0 ]; then
        echo "--- $t: what went wrong (all of it in $logs/$t.log)"
        grep -m 1 -A 4 -E 'panicked at|ERROR: libFuzzer' "$logs/$t.log" || tail -n 20 "$logs/$t.log"
    fi
done
exit $failed
