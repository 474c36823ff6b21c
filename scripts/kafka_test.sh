#!/usr/bin/env bash
# The Kafka bridges against a real Kafka-protocol broker (TESTING.md, "Bridges"). CI does not
# run this. It installs the `tansu` broker from crates.io (about 12 minutes of build on 2
# cores, once; its own target directory; scripts/tansu.sh), starts it on a free loopback port
# with its memory storage engine, and runs the bridge's Kafka tests (cargo feature `kafka`, which builds
# librdkafka from source through rdkafka-sys: a C compiler and make are needed), and the
# crate's unit tests with that feature (--lib: the partitioner, where ingest resumes).
#   scripts/kafka_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tansu.sh
trap stop_tansu EXIT
port="$tansu_port"
# Topics are created by the tests (CreateTopics); tansu's own CLI would do too:
#   tansu topic create NAME --partitions 3 --broker tcp://127.0.0.1:$port
export ALLUVIUM_KAFKA_URL="kafka://127.0.0.1:$port"
cargo test -p alluvium-bridge --features kafka --no-fail-fast --lib \
  --test publishing_to_kafka_with_the_bridge_killed_at_random_points_puts_every_change_in_its_key_partition_once \
  --test ingesting_from_kafka_with_the_ingester_killed_at_random_points_reproduces_the_source \
  -- --nocapture
