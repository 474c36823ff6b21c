# Sourced by scripts/kafka_test.sh and scripts/bench_bridge.sh: installs the `tansu` Kafka-
# protocol broker from crates.io if needed (about 12 minutes of build on 2 cores, once; its
# own target directory), starts it on a free loopback port with its memory storage engine,
# waits until it listens, and sets `tansu_port` (the caller's EXIT trap must call
# `stop_tansu`).
export PATH="$HOME/.cargo/bin:$PATH"
# The memory storage engine needs tansu's `dynostore` feature.
if ! command -v tansu >/dev/null || ! tansu broker --help >/dev/null 2>&1; then
  echo "== installing tansu (cargo install --locked tansu --features dynostore)"
  CARGO_TARGET_DIR="${TANSU_TARGET_DIR:-/tmp/target-tansu}" \
    cargo install --locked --force tansu --features dynostore
fi
tansu_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
tansu_log="$(mktemp)"
tansu broker \
  --listener-url "tcp://127.0.0.1:$tansu_port" \
  --advertised-listener-url "tcp://127.0.0.1:$tansu_port" \
  --storage-engine "memory://tansu/" >"$tansu_log" 2>&1 &
tansu_pid=$!
stop_tansu() { kill "$tansu_pid" 2>/dev/null; wait "$tansu_pid" 2>/dev/null; rm -f "$tansu_log"; }
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$tansu_port") 2>/dev/null && break
  kill -0 "$tansu_pid" 2>/dev/null || { cat "$tansu_log"; echo "tansu exited (built without --features dynostore?)"; exit 1; }
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$tansu_port") 2>/dev/null || { cat "$tansu_log"; echo "tansu is not listening"; exit 1; }
echo "== tansu listening on 127.0.0.1:$tansu_port"
