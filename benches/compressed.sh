#!/usr/bin/env bash
# What reading a compressed capture costs: mailtap replay of the same corpus plain, gzip'd
# and zstd'd, with one worker and with all cores, as ratios to the plain file.
#
#   benches/compressed.sh CORPUS.pcap    # measure (release build; best of RUNS=3 runs)
#   benches/compressed.sh --smoke        # tiny generated corpus, every row once (CI)
#
# Rows, for W in 1 and $(nproc) workers:
#   plain-W           mailtap replay --workers W CORPUS.pcap
#   gzip-W            mailtap replay --workers W CORPUS.pcap.gz   (gzip -6, gzip's default)
#   zstd-W            mailtap replay --workers W CORPUS.pcap.zst  (zstd -3, zstd's default)
# and, for reference, what decompressing alone costs: gzip -dc and zstd -dc to /dev/null.
# Columns: wall seconds, peak RSS (from /usr/bin/time -v), CPU seconds (user + sys), and the
# wall time relative to plain-W (the decompression rows: to plain-1).
# Every file is read once before measuring, so every row reads it from the page cache.
#
# Environment: RUNS (default 3; 1 with --smoke), PROFILE (release; debug with --smoke, which
# reuses what `cargo test --all-targets` built), CARGO_TARGET_DIR, KEEP=1 keeps scratch files.
# Missing tools are installed with apt-get (gzip, zstd, time).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

smoke=0
corpus=""
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "compressed.sh: unknown option $arg" >&2; exit 2 ;;
        *) corpus="$arg" ;;
    esac
done
if [[ $smoke == 0 && -z $corpus ]]; then
    echo "usage: benches/compressed.sh CORPUS | --smoke" >&2
    exit 2
fi

if [[ $smoke == 1 ]]; then
    RUNS=${RUNS:-1}
    PROFILE=${PROFILE:-debug}
else
    RUNS=${RUNS:-3}
    PROFILE=${PROFILE:-release}
fi

# --- tools -----------------------------------------------------------------------------------
need=()
command -v gzip >/dev/null || need+=(gzip)
command -v zstd >/dev/null || need+=(zstd)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
    echo "== apt-get install ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo_profile=()
[[ $PROFILE == release ]] && cargo_profile=(--release)
echo "== cargo build ($PROFILE): mailtap, make-corpus" >&2
cargo build -q "${cargo_profile[@]}" --bin mailtap --example make-corpus >&2
bin="$target/$PROFILE"
mailtap="$bin/mailtap"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/mailtap-compressed.XXXXXX")"
if [[ ${KEEP:-0} != 1 ]]; then
    trap 'rm -rf "$scratch"' EXIT
fi

if [[ $smoke == 1 ]]; then
    corpus="$scratch/smoke.pcap"
    "$bin/examples/make-corpus" --size 2M --mail-share 0.3 --concurrent 200 --seed 1 \
        -o "$corpus" 2>"$scratch/make-corpus.log"
fi
[[ -r $corpus ]] || { echo "compressed.sh: cannot read $corpus" >&2; exit 1; }

echo "== gzip -6, zstd -3" >&2
gz="$scratch/$(basename "$corpus").gz"
zst="$scratch/$(basename "$corpus").zst"
gzip -6 -c "$corpus" >"$gz"
zstd -q -3 -c "$corpus" >"$zst"
cat "$corpus" "$gz" "$zst" >/dev/null  # into the page cache
workers=$(nproc)

# --- measuring -------------------------------------------------------------------------------
# run NAME CMD...: best wall time of RUNS runs, with that run's peak RSS and CPU time; the
# command's stdout goes to $scratch/NAME.out.
declare -a rows=()
declare -A secs=()
run() {
    local name=$1
    shift
    local best="" rss="" cpu="" i
    for ((i = 0; i < RUNS; i++)); do
        local tv="$scratch/$name.time" out="$scratch/$name.out" err="$scratch/$name.err"
        local t0 t1
        t0=$(date +%s%N)
        if ! /usr/bin/time -v -o "$tv" "$@" >"$out" 2>"$err"; then
            echo "compressed.sh: $name failed:" >&2
            tail -5 "$err" >&2
            exit 1
        fi
        t1=$(date +%s%N)
        local s r c
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
        r=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")
        c=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$tv")
        if [[ -z $best ]] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$s rss=$r cpu=$c
        fi
    done
    secs[$name]=$best
    rows+=("$name $best $rss $cpu")
}

# Interleaved by worker count, so that a slow spell of the machine hits one group, not one row.
for w in 1 "$workers"; do
    run "plain-$w" "$mailtap" replay --quiet --format json --workers "$w" "$corpus"
    run "gzip-$w" "$mailtap" replay --quiet --format json --workers "$w" "$gz"
    run "zstd-$w" "$mailtap" replay --quiet --format json --workers "$w" "$zst"
done
run gzip-dc gzip -dc "$gz"
run zstd-dc zstd -dc "$zst"
rm -f "$scratch/gzip-dc.out" "$scratch/zstd-dc.out"

# Every compressed replay must have counted what the plain one did.
strip() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["files"]=[{k: v for k, v in f.items() if k not in ("name", "compression")} for f in r["files"]]; r["health"].pop("peak_rss_bytes", None); print(json.dumps(r, sort_keys=True))' "$1"; }
for w in 1 "$workers"; do
    want=$(strip "$scratch/plain-$w.out")
    for kind in gzip zstd; do
        if [[ $(strip "$scratch/$kind-$w.out") != "$want" ]]; then
            echo "compressed.sh: $kind-$w counted differently from plain-$w" >&2
            exit 1
        fi
    done
done

# --- table -----------------------------------------------------------------------------------
size=$(stat -c %s "$corpus")
echo
echo "corpus: $corpus ($size bytes; gzip -6: $(stat -c %s "$gz"), zstd -3: $(stat -c %s "$zst"))"
echo "machine: $(nproc) cores, $(uname -m); profile $PROFILE; best of $RUNS run(s); files in page cache"
[[ $smoke == 1 ]] && echo "SMOKE RUN: a tiny corpus; the numbers say nothing about the cost"
printf '\n| %-10s | %9s | %12s | %8s | %8s |\n' row seconds "peak RSS MiB" "CPU s" "× plain"
printf '|%s|%s|%s|%s|%s|\n' ------------ ----------- -------------- ---------- ----------
for row in "${rows[@]}"; do
    read -r name s rss cpu <<<"$row"
    base=${name##*-}
    [[ $base == dc ]] && base=1
    awk -v n="$name" -v s="$s" -v rss="$rss" -v cpu="$cpu" -v plain="${secs[plain-$base]}" 'BEGIN {
            if (plain <= 0) plain = 1e-6
            printf "| %-10s | %9.3f | %12.1f | %8s | %8.2f |\n", n, s, rss / 1024, cpu, s / plain
        }'
done
echo
echo "× plain: wall time divided by that of the plain file with as many workers (gzip-dc and"
echo "zstd-dc: by plain-1). Same counts: every compressed replay's report matched the plain one's."
