#!/usr/bin/env bash
# Seed corpora from the fixtures: fuzz/corpus/<target>/ gets real captures, frames, segments,
# streams and certificate chains in each target's input format (fuzz/examples/seeds). Seeds are
# named after their fixture, so seeding again refreshes them and keeps what fuzzing added.
# Usage: bash fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nice -n 10 cargo run --quiet --manifest-path fuzz/Cargo.toml --example seeds -- fixtures fuzz/corpus
