#!/usr/bin/env bash
# Changes per second published to a broker and ingested from it (BENCHMARKS.md, "Bridges").
#   scripts/bench_bridge.sh [CHANGES] [nats|kafka]   (default 200000 nats; 16-byte keys,
#                                                    100-byte values, one change per batch)
# nats: starts its own nats-server -js on a free loopback port with a temporary store.
# kafka: starts the tansu broker (memory engine; scripts/tansu.sh installs it the first time)
# and builds the tool with the `kafka` feature (librdkafka from source) in its own target
# directory, ALLUVIUM_KAFKA_TARGET (default /tmp/target-kafka-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
changes="${1:-200000}"
broker="${2:-nats}"
work="$(mktemp -d)"
case "$broker" in
  nats)
    command -v nats-server >/dev/null || PATH="$PATH:/usr/sbin"
    command -v nats-server >/dev/null || { echo "nats-server is required (apt-get install -y nats-server)"; exit 1; }
    cargo build --release -q -p alluvium-cli
    alluvium=target/release/alluvium
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" >"$work/nats.log" 2>&1 &
    nats_pid=$!
    trap 'kill $nats_pid 2>/dev/null; rm -rf "$work"' EXIT
    sleep 0.5
    to=(--to "nats://127.0.0.1:$port" --stream BENCH)
    from=(--from "nats://127.0.0.1:$port" --stream BENCH)
    ;;
  kafka)
    target="${ALLUVIUM_KAFKA_TARGET:-/tmp/target-kafka-bench}"
    CARGO_TARGET_DIR="$target" cargo build --release -q -p alluvium-cli --features kafka
    alluvium="$target/release/alluvium"
    . scripts/tansu.sh
    trap 'stop_tansu; rm -rf "$work"' EXIT
    tansu topic create BENCH --partitions 3 --broker "tcp://127.0.0.1:$tansu_port" >/dev/null
    to=(--to "kafka://127.0.0.1:$tansu_port" --topic BENCH)
    from=(--from "kafka://127.0.0.1:$tansu_port" --topic BENCH)
    ;;
  *) echo "unknown broker $broker (nats or kafka)"; exit 2 ;;
esac

# The publisher's subscription must exist before the writes, or a flush could let retention
# delete their log files: one publish run on the empty database creates it.
$alluvium put "$work/src" bench:start 1 --create >/dev/null
$alluvium feed publish "$work/src" "${to[@]}" --exit-at-end >/dev/null 2>&1
$alluvium bench --benchmarks fillrandom --num "$changes" --key_size 16 --value_size 100 \
  --db "$work/src" --use_existing_db | grep -E '^fillrandom'

seconds() { python3 -c 'import time; print(time.monotonic())'; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f} changes/s in {$3 - $2:.2f} s')"; }

t0=$(seconds)
$alluvium feed publish "$work/src" "${to[@]}" --batch 1024 --exit-at-end 2>/dev/null | tail -1
t1=$(seconds)
echo "publish: $(rate "$changes" "$t0" "$t1")"

t0=$(seconds)
$alluvium feed ingest "$work/copy" "${from[@]}" --batch 1000 --exit-at-end 2>/dev/null | tail -1
t1=$(seconds)
echo "ingest:  $(rate "$changes" "$t0" "$t1")"
