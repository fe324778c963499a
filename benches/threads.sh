#!/usr/bin/env bash
# Where replay's CPU goes, thread by thread, as workers are added: the evidence for scaling.
#
#   benches/threads.sh CORPUS.pcap [WORKERS...]     # default: 1 2 4
#
# For each worker count, `perf record` samples the CPU clock (a software event: it works in
# virtual machines without hardware counters) over one `mailtap replay`, and `perf report
# --sort comm` splits the samples by thread name: the main thread, `worker-N` and `sink`.
# With 2 workers or more, the workers take turns reading the file and decode and analyse it
# (the main thread only waits); with 1, the main thread does everything. Printed per run: CPU
# seconds by thread kind, and the rate the workers would sustain one per core (packets /
# their CPU seconds in sum, i.e. one worker's rate on a core of its own). Work split across
# workers without overhead shows as worker CPU that stays the same in sum as workers are
# added: throughput then grows with the workers until the cores run out.
#
# Wall times are not shown: perf's own work distorts them (compare.sh measures those).
#
# Environment: MAILTAP (default ${CARGO_TARGET_DIR:-target}/release/mailtap, built if missing),
# FREQ (samples per second, default 4999). Installs perf (linux-perf) with apt-get if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

corpus=${1:?usage: benches/threads.sh CORPUS.pcap [WORKERS...]}
shift
counts=("$@")
((${#counts[@]})) || counts=(1 2 4)

if ! command -v perf >/dev/null; then
    echo "== apt-get install linux-perf" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends linux-perf >&2
fi
mailtap=${MAILTAP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/mailtap}
if [[ -z ${MAILTAP:-} ]]; then
    cargo build -q --release --bin mailtap >&2
fi
freq=${FREQ:-4999}
scratch="$(mktemp -d "${TMPDIR:-/tmp}/mailtap-threads.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

cat "$corpus" >/dev/null # into the page cache
packets=$("$mailtap" replay --quiet --workers 0 --format json "$corpus" |
    python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["health"]["packets"].values()))')

echo "corpus: $corpus ($packets packets); $(nproc) cores; perf -F $freq (cpu-clock)"
printf '\n| %7s | %8s | %9s | %7s | %17s |\n' workers "main s" "workers s" "sink s" \
    "per worker Mpkt/s"
printf '|%s|%s|%s|%s|%s|\n' --------- ---------- ----------- --------- -------------------
for w in "${counts[@]}"; do
    data="$scratch/perf-$w.data"
    perf record -q -F "$freq" -e cpu-clock -o "$data" -- \
        "$mailtap" replay --quiet --workers "$w" "$corpus" >/dev/null 2>"$scratch/err"
    # Samples by thread name; each sample is 1/freq seconds of CPU.
    perf report -i "$data" --stdio --sort comm -F comm,sample 2>/dev/null |
        awk -v f="$freq" -v w="$w" -v p="$packets" '
            /^#/ || NF < 2 { next }
            { n = $NF; name = $1
              if (name ~ /^worker-/) work += n / f
              else if (name == "sink") sink += n / f
              else main += n / f }
            END {
              # One thread: the main thread is the one worker.
              if (work == 0) work = main
              printf "| %7d | %8.3f | %9.3f | %7.3f | %17.2f |\n",
                  w, main, work, sink, (work > 0 ? p / work / 1e6 : 0)
            }'
done
echo
echo "per worker Mpkt/s: packets / worker CPU seconds in sum, i.e. one worker's rate on a core"
echo "of its own; N workers on N free cores sustain about N times that."
