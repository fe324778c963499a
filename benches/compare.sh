#!/usr/bin/env bash
# Throughput and peak memory of mailtap against the bare cost of reading the capture and
# against other tools that extract similar facts, all on the same corpus in one run.
#
#   benches/compare.sh CORPUS.pcap     # measure (release build; best of RUNS=3 runs)
#   benches/compare.sh --smoke         # tiny generated corpus, every tool once (CI)
#
# Rows:
#   bare-read         examples/bare-read.rs: pcap-parser touching every packet byte
#   tcpdump           tcpdump -r F -w /dev/null
#   mailtap-1         mailtap replay --workers 1: everything on one thread (one core)
#   mailtap-N         mailtap replay --workers $(nproc): N workers taking turns reading, N cores
#   tshark            the same facts with tshark: mail ports, SMTP commands, TLS version/suites
#   ndpiReader        nDPI's reader (protocol detection, flow and risk analysis)
#   *-vxlan           bare-read and mailtap on the same corpus with every frame wrapped in
#                     VXLAN (examples/vxlan-wrap.rs), as cloud traffic mirroring delivers it
# Columns: wall seconds, packets/s, Gbit/s (captured frame bytes), peak RSS (from
# /usr/bin/time -v), CPU seconds (user + sys), and time relative to bare-read.
# The file is read once before measuring, so every row reads it from the page cache.
#
# A change on the packet path states its effect on the mailtap rows of a plain corpus (run
# before and after the change, side by side).
# Environment: RUNS (default 3; 1 with --smoke), PROFILE (release; debug with --smoke, which
# reuses what `cargo test --all-targets` built), CARGO_TARGET_DIR, KEEP=1 keeps scratch files.
# Missing tools are installed with apt-get (tcpdump, tshark, libndpi-bin, time).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

smoke=0
corpus=""
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        -*) echo "compare.sh: unknown option $arg" >&2; exit 2 ;;
        *) corpus="$arg" ;;
    esac
done
if [[ $smoke == 0 && -z $corpus ]]; then
    echo "usage: benches/compare.sh CORPUS | --smoke" >&2
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
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tshark >/dev/null || need+=(tshark)
command -v ndpiReader >/dev/null || need+=(libndpi-bin)
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
echo "== cargo build ($PROFILE): mailtap, bare-read, make-corpus, vxlan-wrap" >&2
cargo build -q "${cargo_profile[@]}" --bin mailtap --example bare-read --example make-corpus \
    --example vxlan-wrap >&2
bin="$target/$PROFILE"
mailtap="$bin/mailtap"
bare="$bin/examples/bare-read"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/mailtap-compare.XXXXXX")"
if [[ ${KEEP:-0} != 1 ]]; then
    trap 'rm -rf "$scratch"' EXIT
fi

if [[ $smoke == 1 ]]; then
    corpus="$scratch/smoke.pcap"
    "$bin/examples/make-corpus" --size 2M --mail-share 0.3 --concurrent 200 --seed 1 \
        -o "$corpus" 2>"$scratch/make-corpus.log"
    cat "$scratch/make-corpus.log" >&2
fi
[[ -r $corpus ]] || { echo "compare.sh: cannot read $corpus" >&2; exit 1; }

vxlan="$scratch/corpus-vxlan.pcap"
"$bin/examples/vxlan-wrap" "$corpus" "$vxlan" 2>"$scratch/vxlan-wrap.log" || {
    cat "$scratch/vxlan-wrap.log" >&2
    exit 1
}
cat "$corpus" "$vxlan" >/dev/null  # into the page cache
read -r packets bytes _ _ < <("$bare" "$corpus")
workers=$(nproc)

# --- measuring -------------------------------------------------------------------------------
# run NAME CMD...: best wall time of RUNS runs, with that run's peak RSS and CPU time.
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
            echo "compare.sh: $name failed:" >&2
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

mail_filter='tcp.port in {25,587,465,143,993,110,995}'
run bare-read "$bare" "$corpus"
run tcpdump tcpdump -r "$corpus" -w /dev/null
run mailtap-1 "$mailtap" replay --quiet --workers 1 "$corpus"
run "mailtap-$workers" "$mailtap" replay --quiet --workers "$workers" "$corpus"
run tshark tshark -r "$corpus" -Y "$mail_filter" -T fields -e tcp.stream -e smtp.req.command \
    -e tls.handshake.version -e tls.handshake.ciphersuite
run ndpiReader ndpiReader -i "$corpus" -q
run bare-read-vxlan "$bare" "$vxlan"
run mailtap-1-vxlan "$mailtap" replay --quiet --workers 1 "$vxlan"
run "mailtap-$workers-vxlan" "$mailtap" replay --quiet --workers "$workers" "$vxlan"

# mailtap must have found the sessions the corpus holds.
# The report's first table: protocol, sessions, ...; it ends at the first blank line.
sessions=$(awk '/^protocol/ { t = 1; next } t && NF == 0 { exit } t { n += $2 } END { print n + 0 }' \
    "$scratch/mailtap-1.out")
if [[ $sessions -eq 0 ]]; then
    echo "compare.sh: mailtap reported no session" >&2
    cat "$scratch/mailtap-1.out" >&2
    exit 1
fi
# ... and the same sessions through the tunnel.
sessions_vxlan=$(awk '/^protocol/ { t = 1; next } t && NF == 0 { exit } t { n += $2 } END { print n + 0 }' \
    "$scratch/mailtap-1-vxlan.out")
if [[ $sessions_vxlan -ne $sessions ]]; then
    echo "compare.sh: $sessions sessions plain, $sessions_vxlan in VXLAN" >&2
    exit 1
fi

# --- table -----------------------------------------------------------------------------------
size=$(stat -c %s "$corpus")
echo
echo "corpus: $corpus ($size bytes, $packets packets, $bytes frame bytes; mailtap: $sessions sessions)"
echo "machine: $(nproc) cores, $(uname -m); profile $PROFILE; best of $RUNS run(s); file in page cache"
[[ $smoke == 1 ]] && echo "SMOKE RUN: a tiny corpus; the numbers say nothing about throughput"
printf '\n| %-16s | %9s | %12s | %8s | %12s | %8s | %8s |\n' \
    tool seconds packets/s Gbit/s "peak RSS MiB" "CPU s" "× bare"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------------ ----------- -------------- ---------- \
    -------------- ---------- ----------
bare_s=${secs[bare-read]}
for row in "${rows[@]}"; do
    read -r name s rss cpu <<<"$row"
    awk -v n="$name" -v s="$s" -v rss="$rss" -v cpu="$cpu" -v p="$packets" -v b="$bytes" \
        -v bare="$bare_s" 'BEGIN {
            if (s <= 0) s = 1e-6
            printf "| %-16s | %9.3f | %12.0f | %8.3f | %12.1f | %8s | %8.2f |\n",
                n, s, p / s, b * 8 / s / 1e9, rss / 1024, cpu, s / bare
        }'
done
echo
echo "× bare: wall time divided by bare-read's (1.0 = as fast as reading the file)."
