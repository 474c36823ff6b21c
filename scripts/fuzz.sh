#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 20) and prints the executions of each.
#
#   scripts/fuzz.sh [seconds] [target...]
#
# Stable Rust: `-s none` builds the targets with coverage instrumentation and no sanitizer.
# `-a` turns on debug assertions, so an integer overflow is a crash too. The bounds: a
# single allocation over 32 MiB aborts (fuzz/src/lib.rs), the process may not grow past
# 512 MiB, and one input may take at most 10 s. The committed seeds (fuzz/corpus/<target>)
# are only read; what the fuzzer finds goes to a scratch directory. A crash leaves its input
# in fuzz/artifacts/<target>/ and makes this script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked"; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
flags=(-s none -a)
(cd fuzz && cargo fuzz build "${flags[@]}")
status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  if (cd fuzz && cargo fuzz run "${flags[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=512 -timeout=10 \
      -print_final_stats=1) >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
    tail -40 "$log"
  fi
  runs="$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo 0)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)"
  summary+=("$(printf '%-14s %-6s %10s executions in %ss, coverage %s' "$t" "$result" "$runs" "$seconds" "$cov")")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$status"
