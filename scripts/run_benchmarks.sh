#!/usr/bin/env bash
# Runs the same db_bench workloads on alluvium, RocksDB and fjall, one engine after the other on
# the same machine, and writes bench-results/<engine>.txt, bench-results/results.tsv and
# bench-results/chart.svg. RocksDB is built from source through the `rocksdb` crate (about 16
# minutes on 2 cores) in its own target directory, which later runs reuse.
#
# Each group of workloads runs REPEAT times (default 3), the engines taking turns within each
# round, and results.tsv holds the median ops/sec with the lowest and highest: on this 2-core
# machine one run of a workload moves by 10-30% from the next, so one run per engine cannot
# tell a 1.3x ratio from noise. Dirty pages are written back (`sync`) before each run so that
# one engine's writeback does not land in the next engine's run.
#
#   scripts/run_benchmarks.sh                     # 1,000,000 keys, 3 rounds
#   NUM=100000 REPEAT=1 scripts/run_benchmarks.sh # a quick run
set -euo pipefail
cd "$(dirname "$0")/.."
NUM=${NUM:-1000000}
TARGET=${CARGO_TARGET_DIR_ROCKSDB:-/work/target-rocksdb}
OUT=${OUT:-bench-results}
ENGINES=${ENGINES:-alluvium rocksdb fjall}
REPEAT=${REPEAT:-3}
CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p alluvium-cli --features rocksdb,fjall
BIN="$TARGET/release/alluvium"
mkdir -p "$OUT"
DB=$(mktemp -d)
trap 'rm -rf "$DB"' EXIT

run() { # engine, label, extra arguments...
  local engine=$1 label=$2
  shift 2
  rm -rf "$DB/db"
  sync
  echo "== $engine $label round $round" | tee -a "$OUT/$engine.txt"
  "$BIN" bench --engine "$engine" --db "$DB/db" --num "$NUM" "$@" | tee -a "$OUT/$engine.txt"
}

for engine in $ENGINES; do : > "$OUT/$engine.txt"; done
for round in $(seq "$REPEAT"); do
  for engine in $ENGINES; do
    run "$engine" fill --benchmarks fillseq
    run "$engine" write --benchmarks fillrandom,overwrite,waitforcompaction,readrandom,readmissing,seekrandom,readseq,readreverse,readwhilewriting,deleterandom
    run "$engine" sync --benchmarks fillsync --threads 2
    run "$engine" overwrite5x --benchmarks overwrite,waitforcompaction --writes $((NUM * 5)) --histogram --statistics
  done
done

python3 scripts/bench_chart.py "$OUT" $ENGINES
