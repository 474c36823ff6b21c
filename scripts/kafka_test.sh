#!/usr/bin/env bash
# The Kafka bridges against a real Kafka-protocol broker (TESTING.md, "Bridges"). CI does not
# run this. It installs the `tansu` broker from crates.io (about 12 minutes of build on 2
# cores, once; its own target directory), starts it on a free loopback port with its memory
# storage engine, and runs the bridge's Kafka tests (cargo feature `kafka`, which builds
# librdkafka from source through rdkafka-sys: a C compiler and make are needed), and the
# crate's unit tests with that feature (--lib: the partitioner, where ingest resumes).
#   scripts/kafka_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# The memory storage engine needs tansu's `dynostore` feature.
if ! command -v tansu >/dev/null || ! tansu broker --help >/dev/null 2>&1; then
  echo "== installing tansu (cargo install --locked tansu --features dynostore)"
  CARGO_TARGET_DIR="${TANSU_TARGET_DIR:-/tmp/target-tansu}" \
    cargo install --locked --force tansu --features dynostore
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
tansu broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine "memory://tansu/" >"$log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $broker 2>/dev/null || { cat "$log"; echo "tansu exited (built without --features dynostore?)"; exit 1; }
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$log"; echo "tansu is not listening"; exit 1; }
echo "== tansu listening on 127.0.0.1:$port"
# Topics are created by the tests (CreateTopics); tansu's own CLI would do too:
#   tansu topic create NAME --partitions 3 --broker tcp://127.0.0.1:$port
export ALLUVIUM_KAFKA_URL="kafka://127.0.0.1:$port"
cargo test -p alluvium-bridge --features kafka --no-fail-fast --lib \
  --test publishing_to_kafka_with_the_bridge_killed_at_random_points_puts_every_change_in_its_key_partition_once \
  --test ingesting_from_kafka_with_the_ingester_killed_at_random_points_reproduces_the_source \
  -- --nocapture
