#!/usr/bin/env bash
# What a /metrics scrape costs a gateway under the fan-out benchmark (BENCHMARKS.md,
# "Metrics scrape cost"). Starts a release gateway on SQLite, runs chat-bench's fan-out
# (1,000 connections, RATE msg/s) for 40 s and, while it runs, reads the gateway's CPU
# time (/proc/PID/stat) over alternating 8 s windows: without scrapes, then with
# SCRAPES_PER_SEC scrapes a second (far more than Prometheus' usual one per 15 s, so
# the difference stands out of the noise). Prints the CPU of each window, the cost of
# one scrape and its share of the gateway's CPU at one scrape a second.
#
#   crates/chat-bench/scrape-cost.sh            (GATEWAY, BENCH, RATE, SCRAPES_PER_SEC)
set -euo pipefail
PORT=${PORT:-28933}
RATE=${RATE:-1000}
SCRAPES_PER_SEC=${SCRAPES_PER_SEC:-10}
. "$(dirname "$0")/common.sh"

work=$(mktemp -d)
"$GATEWAY" serve --listen "127.0.0.1:$PORT" --database-url "sqlite://$work/bench.db" \
  --jwt-secret "$SECRET" --data-dir "$work/data" $BENCH_LIMITS >"$work/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null; wait $gw 2>/dev/null; rm -rf "$work"' EXIT
wait_ready "$PORT" "$gw" "$work/gateway.log" "the gateway did not start (port $PORT taken?)"

ticks() { awk '{print $14 + $15}' "/proc/$gw/stat"; }
hz=$(getconf CLK_TCK)

"$BENCH" --url "http://127.0.0.1:$PORT" --scenario fanout --dialects method-args,type-content,socketio-rooms \
  --connections 1000 --rate "$RATE" --duration 40 --threads 2 --jwt-secret "$SECRET" \
  --server-pid "$gw" --json "$work/bench.json" >"$work/bench.log" 2>&1 &
bench=$!
sleep 8   # connections open, the room is set up, the senders are running

window() { # $1: scrape or quiet; prints the CPU seconds per second of the window
  local t0 t1 start end n=0
  t0=$(ticks); start=$(date +%s.%N)
  if [ "$1" = scrape ]; then
    local period; period=$(awk -v r="$SCRAPES_PER_SEC" 'BEGIN {print 1 / r}')
    while awk -v s="$start" -v now="$(date +%s.%N)" 'BEGIN {exit !(now - s < 8)}'; do
      curl -fs "http://127.0.0.1:$PORT/metrics" >/dev/null; n=$((n + 1)); sleep "$period"
    done
  else
    sleep 8
  fi
  t1=$(ticks); end=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$start" -v e="$end" -v n="$n" -v w="$1" \
    'BEGIN {printf "%s %.4f %d\n", w, (b - a) / hz / (e - s), n}'
}

results=$(for w in quiet scrape quiet scrape; do window "$w"; done)
wait $bench || true
echo "$results" | awk -v bytes="$(curl -fs "http://127.0.0.1:$PORT/metrics" | wc -c)" '
  $1 == "quiet" {q += $2; nq++}
  $1 == "scrape" {s += $2; ns++; scrapes += $3}
  {printf "window %-6s gateway CPU %.3f s/s  scrapes %d\n", $1, $2, $3}
  END {
    q /= nq; s /= ns; per = (s - q) / (scrapes / ns / 8);
    printf "scrape: %d bytes; cost %.3f ms of CPU each (%.3f s/s with scrapes, %.3f without)\n", bytes, per * 1000, s, q;
    printf "share of the gateway CPU at 1 scrape/s: %.3f %%; at 1 per 15 s: %.4f %%\n", 100 * per / q, 100 * per / 15 / q;
  }'
grep -E "deliver|missing|p99" "$work/bench.log" | head -5 || true
