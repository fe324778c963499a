#!/usr/bin/env bash
# The HTML report of a large replay: its rendering time and size. Builds an all-mail corpus
# from the fixtures (make-corpus, SIZE, default 512M: about 22k sessions on 10k+ servers)
# unless one is given, and reads it PASSES times (default 5) into one report: about 100k
# sessions, and the inventory's 10,000 servers.
#
#   benches/html.sh [CORPUS.pcap]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
size=${SIZE:-512M}
passes=${PASSES:-5}
corpus=${1:-}
if [[ -z $corpus ]]; then
    corpus=${CARGO_TARGET_DIR:-target}/bench/html-corpus-$size.pcap
    if [[ ! -s $corpus ]]; then
        mkdir -p "$(dirname "$corpus")"
        cargo run --quiet --release --example make-corpus -- \
            --size "$size" --mail-share 1 --seed 1 -o "$corpus"
    fi
fi
cargo bench --quiet --bench html_report -- "$corpus" "$passes"
