#!/usr/bin/env bash
# Live capture rate: the highest packet rate `mailtap capture` takes without dropping.
#
#   sudo benches/live.sh [CORPUS.pcap]
#
# Makes a network namespace joined to the root namespace by a veth pair (nothing else is
# touched), runs `mailtap capture` on the root end and tcpreplay on the namespace end: first
# at --topspeed (the fastest this sender goes), then up a ladder of --pps rates until the
# capture drops (or the sender stops keeping up), then bisects between the last rate that
# passed and the first that dropped; each step with a fresh mailtap. For every
# step it compares what tcpreplay sent with what mailtap counted (sum of
# mailtap_packets_total), and reads mailtap_capture_dropped_packets_total{where} and the veth
# pair's own counters (`ip -s link`: rx_dropped on the capture end, tx_dropped on the sender)
# plus the kernel's per-CPU backlog drops (/proc/net/softnet_stat).
#
# Without CORPUS it makes the all-mail corpus with examples/make-corpus (--mail-share 1
# --seed 1, size CORPUS_SIZE, default 1G: the replay must be several times the capture buffer,
# or the buffer alone hides a rate mailtap cannot sustain).
#
# Environment:
#   RATES        the --pps ladder (default "50000 100000 200000 300000 400000 500000 600000
#                800000 1000000 1500000 2000000"); steps above --topspeed's rate are skipped
#   BUFFER_SIZE  mailtap --buffer-size (default 134217728 = 128 MiB, see below)
#   SNAPLEN      mailtap --snaplen (default 262144, mailtap's own: whole frames, even GRO'd)
#   WORKERS      mailtap --workers (default: mailtap's, the number of cores minus one)
#   LADDER=1     climb the ladder even when --topspeed dropped nothing (CPU at each rate)
#   BISECT       steps of bisection between the last rate that passed and the first that
#                dropped (or the top speed, if it dropped), default 3
#   LIMIT        replay only this many packets per step (tcpreplay --limit)
#   CORPUS_SIZE  size of the generated corpus (default 1G)
#   MAILTAP, MAKE_CORPUS  the binaries (default: ${CARGO_TARGET_DIR:-target}/release/...)
#   KEEP=1       keep the scratch directory (corpus, mailtap's stderr, tcpreplay's output)
#
# Settings, as an operator would run it on a busy link: a 128 MiB kernel buffer (four times
# the default: about a second of a saturated gigabit link), whole frames (mailtap needs the TLS
# certificates; truncating would cost more than it saves), mailtap's default workers. tcpreplay
# preloads the corpus into memory so that the sender does not read the disk.
# Numbers measured with the sender on the same machine are lower bounds: tcpreplay, the
# veth's softirq work and mailtap share its cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

corpus=""
for arg in "$@"; do
    case "$arg" in
        -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
        -*) echo "live.sh: unknown option $arg" >&2; exit 2 ;;
        *) corpus="$arg" ;;
    esac
done
if [[ $(id -u) != 0 ]]; then
    echo "live.sh: needs root (network namespace, veth pair, live capture): sudo $0 $*" >&2
    exit 2
fi

RATES=${RATES:-"50000 100000 200000 300000 400000 500000 600000 800000 1000000 1500000 2000000"}
BUFFER_SIZE=${BUFFER_SIZE:-134217728}
SNAPLEN=${SNAPLEN:-262144}
WORKERS=${WORKERS:-}
LIMIT=${LIMIT:-}
CORPUS_SIZE=${CORPUS_SIZE:-1G}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MAILTAP=${MAILTAP:-$TARGET/release/mailtap}
MAKE_CORPUS=${MAKE_CORPUS:-$TARGET/release/examples/make-corpus}

# --- tools -----------------------------------------------------------------------------------
if ! command -v tcpreplay >/dev/null; then
    echo "== apt-get install tcpreplay" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends tcpreplay >&2
fi
for t in ip curl python3; do
    command -v "$t" >/dev/null || { echo "live.sh: needs $t" >&2; exit 2; }
done
if [[ ! -x $MAILTAP ]] || ! "$MAILTAP" capture --help >/dev/null 2>&1 \
    || { [[ -z $corpus ]] && [[ ! -x $MAKE_CORPUS ]]; }; then
    echo "live.sh: build first: cargo build --release --features live --bin mailtap --example make-corpus" >&2
    echo "          (or point MAILTAP / MAKE_CORPUS at the binaries)" >&2
    exit 2
fi

# --- scratch, namespace, cleanup ------------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/mailtap-live.XXXXXX)
NS=mtlive$$
CAP_IF=mtl$$c   # root namespace: mailtap captures here
SEND_IF=mtl$$s  # in $NS: tcpreplay sends here
MT_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $MT_PID ]] && kill -0 "$MT_PID" 2>/dev/null; then
        kill -TERM "$MT_PID" 2>/dev/null || true
        wait "$MT_PID" 2>/dev/null || true
    fi
    ip link del "$CAP_IF" 2>/dev/null || true   # takes its peer with it
    ip netns del "$NS" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "kept $SCRATCH" >&2
    else
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z $corpus ]]; then
    corpus=$SCRATCH/all-mail.pcap
    echo "== make-corpus --size $CORPUS_SIZE --mail-share 1 --seed 1" >&2
    "$MAKE_CORPUS" --size "$CORPUS_SIZE" --mail-share 1 --seed 1 -o "$corpus" >&2
fi
[[ -r $corpus ]] || { echo "live.sh: cannot read $corpus" >&2; exit 2; }

ip netns add "$NS"
ip link add "$CAP_IF" type veth peer name "$SEND_IF"
ip link set "$SEND_IF" netns "$NS"
# No IPv6 link-local address: no router solicitations or DAD in the counters.
ip link set "$CAP_IF" addrgenmode none
ip netns exec "$NS" ip link set "$SEND_IF" addrgenmode none
ip link set "$CAP_IF" up
ip netns exec "$NS" ip link set "$SEND_IF" up
ip netns exec "$NS" ip link set lo up

# --- helpers ---------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# metric NAME [LABEL-MATCH]: the sum of every sample of NAME (whose labels contain MATCH).
metric() {
    curl -fsS --max-time 5 "http://$LISTEN/metrics" \
        | awk -v name="$1" -v match_="${2:-}" '
            $1 == name || index($1, name "{") == 1 {
                if (match_ == "" || index($1, match_) > 0) sum += $2
            }
            END { printf "%d\n", sum }'
}

# if_stat IFACE [NETNS] FIELD: a counter from /sys/class/net/IFACE/statistics.
if_stat() {
    if [[ -n $2 ]]; then
        ip netns exec "$2" cat "/sys/class/net/$1/statistics/$3"
    else
        cat "/sys/class/net/$1/statistics/$3"
    fi
}

# Backlog drops on every CPU (second column of softnet_stat, hex).
softnet_drops() {
    local sum=0 d
    while read -r _ d _; do sum=$((sum + 16#$d)); done </proc/net/softnet_stat
    echo "$sum"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

start_mailtap() {
    LISTEN=127.0.0.1:$(free_port)
    local args=(capture -i "$CAP_IF" --web.listen-address "$LISTEN"
                --buffer-size "$BUFFER_SIZE" --snaplen "$SNAPLEN")
    [[ -n $WORKERS ]] && args+=(--workers "$WORKERS")
    "$MAILTAP" "${args[@]}" 2>>"$SCRATCH/mailtap.stderr" &
    MT_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -fsS --max-time 1 "http://$LISTEN/metrics" >/dev/null 2>&1; then return 0; fi
        kill -0 "$MT_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "live.sh: mailtap did not serve /metrics; its stderr:" >&2
    cat "$SCRATCH/mailtap.stderr" >&2
    exit 1
}

stop_mailtap() {
    kill -TERM "$MT_PID"
    wait "$MT_PID" || echo "live.sh: mailtap exited with status $?" >&2
    MT_PID=""
}

# Wait until mailtap's packet count has not moved for 1.5 s (and at least 2 s, so that the
# once-a-second drop poll has run after the last packet).
settle() {
    local last=-1 now same=0 i
    sleep 2
    for ((i = 0; i < 240; i++)); do
        now=$(metric mailtap_packets_total)
        if [[ $now == "$last" ]]; then
            same=$((same + 1))
            ((same >= 3)) && return 0
        else
            same=0
        fi
        last=$now
        sleep 0.5
    done
    echo "live.sh: mailtap's packet count did not settle" >&2
}

ROWS=()
TOP_PPS=0
BEST_PPS=""
BEST_GBPS=""

# step LABEL [tcpreplay rate options...]: one replay with a fresh mailtap; appends a row and
# sets STEP_DROPS (every kind of loss, summed) and STEP_PPS / STEP_MBPS (tcpreplay's rate).
step() {
    local label=$1
    shift
    start_mailtap
    local p0 k0 i0 rx0 tx0 sn0 c0 c1
    p0=$(metric mailtap_packets_total)
    k0=$(metric mailtap_capture_dropped_packets_total 'where="kernel"')
    i0=$(metric mailtap_capture_dropped_packets_total 'where="interface"')
    rx0=$(if_stat "$CAP_IF" "" rx_dropped)
    tx0=$(if_stat "$SEND_IF" "$NS" tx_dropped)
    sn0=$(softnet_drops)
    c0=$(cpu_ticks "$MT_PID")
    local out=$SCRATCH/tcpreplay.$label.txt
    local lim=()
    [[ -n $LIMIT ]] && lim=(--limit "$LIMIT")
    ip netns exec "$NS" tcpreplay -i "$SEND_IF" --preload-pcap "${lim[@]}" "$@" "$corpus" \
        >"$out" 2>&1 || { echo "live.sh: tcpreplay failed:" >&2; cat "$out" >&2; exit 1; }
    c1=$(cpu_ticks "$MT_PID")
    settle
    local p1 k1 i1 rx1 tx1 sn1 c2
    c2=$(cpu_ticks "$MT_PID")
    p1=$(metric mailtap_packets_total)
    k1=$(metric mailtap_capture_dropped_packets_total 'where="kernel"')
    i1=$(metric mailtap_capture_dropped_packets_total 'where="interface"')
    rx1=$(if_stat "$CAP_IF" "" rx_dropped)
    tx1=$(if_stat "$SEND_IF" "$NS" tx_dropped)
    sn1=$(softnet_drops)
    local threads
    threads=$(for t in /proc/"$MT_PID"/task/*; do
        awk -v hz="$CLK_TCK" -v name="$(cat "$t/comm")" \
            '{ printf "%s %.2f, ", name, ($14 + $15) / hz }' "$t/stat"
    done)
    stop_mailtap

    # tcpreplay: "Actual: N packets (B bytes) sent in S seconds" and
    # "Rated: X Bps, Y Mbps, Z pps"; "Failed packets: F".
    local sent bytes secs mbps pps failed
    read -r sent bytes secs < <(awk '/Actual:/ { gsub(/[()]/, ""); print $2, $4, $8 }' "$out")
    read -r mbps pps < <(awk '/Rated:/ { gsub(/,/, ""); print $4, $6 }' "$out")
    failed=$(awk '/Failed packets:/ { print $3 }' "$out")
    local seen=$((p1 - p0)) kern=$((k1 - k0)) ifd=$((i1 - i0))
    local veth=$(((rx1 - rx0) + (tx1 - tx0))) backlog=$((sn1 - sn0))
    local cpu
    # Over tcpreplay's own sending time: mailtap idles while tcpreplay preloads the corpus.
    cpu=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v s="$secs" \
        'BEGIN { printf "%.0f", 100 * c / hz / s }')
    local cpu_s
    cpu_s=$(awk -v c="$((c2 - c0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", c / hz }')
    local missing=$((sent - failed - seen))
    STEP_DROPS=$((kern + ifd + veth + backlog + (missing > 0 ? missing : 0)))
    STEP_PPS=${pps%.*}
    STEP_MBPS=$mbps
    local gbps
    gbps=$(awk -v m="$mbps" 'BEGIN { printf "%.2f", m / 1000 }')
    ROWS+=("$(printf '%-10s %12s %9s %10s %10s %10s %8s %8s %8s %5s%% %6s' \
        "$label" "$pps" "$gbps" "$sent" "$seen" "$kern" "$ifd" "$veth" "$backlog" "$cpu" "$cpu_s")")
    printf '%s\n' "${ROWS[-1]}" >&2
    echo "   mailtap CPU seconds by thread since it started: ${threads%, }" >&2
    if ((failed > 0)); then
        echo "   tcpreplay: $failed packets failed to send (see ${out##*/})" >&2
    fi
    if ((missing != 0)); then
        echo "   mailtap saw $seen of $((sent - failed)) packets sent ($missing missing)" >&2
    fi
}

HEADER=$(printf '%-10s %12s %9s %10s %10s %10s %8s %8s %8s %6s %6s' \
    "asked" "achieved" "Gbit/s" "sent" "seen" "kernel" "iface" "veth" "backlog" "CPU" "CPU s")

echo "== corpus $corpus ($(stat -c %s "$corpus") bytes); mailtap --buffer-size $BUFFER_SIZE" \
     "--snaplen $SNAPLEN --workers ${WORKERS:-default}; $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "$HEADER" >&2

step topspeed --topspeed
TOP_PPS=$STEP_PPS
top_drops=$STEP_DROPS
if ((top_drops == 0)) && [[ ${LADDER:-0} != 1 ]]; then
    echo "   (no drops at the sender's top speed: the slower steps are skipped; LADDER=1 runs them)" >&2
    RATES=""
fi
# try RATE: one --pps step. 0: no drops, and tcpreplay got within 5 % of RATE (its pacing is
# only approximate; the best rate so far is recorded); 1: something dropped; 2: no drops, but
# the sender fell short of RATE (it is the limit there).
try() {
    step "$1" --pps "$1"
    ((STEP_DROPS == 0)) || return 1
    if ((STEP_PPS * 100 < $1 * 95)); then
        echo "   (the sender reached only $STEP_PPS of $1 pps: it is the limit from here on)" >&2
        return 2
    fi
    if [[ -z $BEST_PPS ]] || ((STEP_PPS > BEST_PPS)); then
        BEST_PPS=$STEP_PPS
        BEST_GBPS=$(awk -v m="$STEP_MBPS" 'BEGIN { printf "%.2f", m / 1000 }')
    fi
}

lo=0                                     # the highest rate that passed
hi=$((top_drops == 0 ? 0 : TOP_PPS))     # the lowest rate that dropped (0: none yet)
sender_short=0
for rate in $RATES; do
    # A step the sender cannot reach says nothing new: it would run at its top speed.
    if ((rate > TOP_PPS)); then
        echo "   (skipping --pps $rate and above: more than the sender's top speed, $TOP_PPS pps)" >&2
        break
    fi
    rc=0
    try "$rate" || rc=$?
    if ((rc == 0)); then
        lo=$rate
    elif ((rc == 1)); then
        hi=$rate
        break
    else
        sender_short=1
        hi=0
        break
    fi
done
# Narrow the gap between the last rate that passed and the first that failed.
for ((i = 0; i < ${BISECT:-3}; i++)); do
    ((lo > 0 && hi > lo && (hi - lo) * 100 > lo * 5)) || break
    mid=$(((lo + hi) / 2))
    rc=0
    try "$mid" || rc=$?
    if ((rc == 0)); then lo=$mid; elif ((rc == 1)); then hi=$mid; else sender_short=1; break; fi
done

echo
echo "Live capture rate: corpus $(basename "$corpus"), mailtap --buffer-size $BUFFER_SIZE" \
     "--snaplen $SNAPLEN --workers ${WORKERS:-default}, $(nproc) cores," \
     "load average after the run $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(kernel/iface: mailtap_capture_dropped_packets_total{where}; veth: rx_dropped on the"
echo " capture end + tx_dropped on the sender; backlog: /proc/net/softnet_stat drops, all CPUs;"
echo " CPU: mailtap's user+system time while tcpreplay sent, 100 % = one core; CPU s: its"
echo " CPU seconds from before the replay until it had counted the last packet)"
echo "$HEADER"
printf '%s\n' "${ROWS[@]}"
echo
if ((top_drops == 0)); then
    top_gbps=$(awk -v m="$(awk '/Rated:/ { gsub(/,/, ""); print $4 }' "$SCRATCH/tcpreplay.topspeed.txt")" \
        'BEGIN { printf "%.2f", m / 1000 }')
    echo "No drops even at tcpreplay --topspeed: the sender is the limit. Highest zero-drop rate:" \
         ">= $TOP_PPS pps (>= $top_gbps Gbit/s), the sender's top speed."
elif [[ -n $BEST_PPS ]]; then
    if ((sender_short)); then
        echo "Highest zero-drop rate: >= $BEST_PPS pps (>= $BEST_GBPS Gbit/s); above it the" \
             "sender could not keep the asked rate."
    else
        echo "Highest zero-drop rate: $BEST_PPS pps ($BEST_GBPS Gbit/s)."
    fi
else
    echo "Drops at every rate tried: lower the first RATES step."
fi
