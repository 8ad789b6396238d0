#!/usr/bin/env bash
# Fuzzes every chat-fuzz target for MINUTES each (default 10), one target at a time,
# and prints a table: target, iterations, iterations/s, crashes. Panicking inputs are
# saved under fuzz-crashes/ (replay one with
# `chat-fuzz replay <target> fuzz-crashes/<file>`). Exits 1 if any target panicked.
#   scripts/fuzz-long.sh [MINUTES] [TARGET...]     (FUZZ_SEED=N picks the generator's seed)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
shift || true
seed="${FUZZ_SEED:-1}"

# The `fuzz` profile: optimized, with overflow checks and debug assertions.
cargo build -q -p chat-fuzz --profile fuzz
bin="${CARGO_TARGET_DIR:-target}/fuzz/chat-fuzz"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("$bin" list | awk '{print $1}')
fi

seconds=$(awk -v m="$minutes" 'BEGIN { printf "%.0f", m * 60 }')
rows=()
failed=0
for t in "${targets[@]}"; do
  echo "== $t for ${minutes} min (seed $seed)" >&2
  set +e
  out=$("$bin" run "$t" --seconds "$seconds" --seed "$seed" --keep-going)
  rc=$?
  set -e
  row=$(printf '%s\n' "$out" | awk -v t="$t" '$1 == t')
  if [ -z "$row" ]; then
    row="$t - - - - died(rc=$rc)"
    failed=1
  fi
  [ "$rc" -ne 0 ] && failed=1
  rows+=("$row")
  echo "$row" >&2
done

echo
printf '%-20s %12s %10s %10s %8s %12s\n' target iterations seconds iter/s crashes slowest_ms
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086
  printf '%-20s %12s %10s %10s %8s %12s\n' $r
done
exit "$failed"
