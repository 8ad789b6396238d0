#!/usr/bin/env bash
# What a /metrics scrape costs a gateway under the fan-out benchmark (BENCHMARKS.md,
# "Metrics scrape cost"). Starts a release gateway on SQLite, runs chat-bench's fan-out
# (1,000 connections, RATE msg/s, default 100 = 100,000 deliveries/s) for 30 s and,
# while it runs, reads the gateway's CPU time (/proc/PID/stat) over a quiet 5 s window
# and over a burst of SCRAPES back-to-back scrapes (so the cost stands out of the
# noise), twice. Prints the CPU one scrape costs and its share of the gateway's CPU at
# one scrape a second and at Prometheus' usual one per 15 s.
#
#   crates/chat-bench/scrape-cost.sh            (GATEWAY, BENCH, RATE, SCRAPES)
set -euo pipefail
PORT=${PORT:-28933}
RATE=${RATE:-100}
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
  --connections 1000 --rate "$RATE" --duration 30 --threads 2 --jwt-secret "$SECRET" \
  --server-pid "$gw" --json "$work/bench.json" >"$work/bench.log" 2>&1 &
bench=$!
sleep 8   # connections open, the room is set up, the senders are running

cpu_over() { # $1 seconds of wall time: prints "CPU-seconds wall-seconds" of the gateway
  local t0 t1 start end
  t0=$(ticks); start=$(date +%s.%N); "${@:2}"; t1=$(ticks); end=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$start" -v e="$end" 'BEGIN {printf "%.3f %.3f\n", (b - a) / hz, e - s}'
}
burst() { # SCRAPES scrapes on one kept-alive connection; each one's time to the last byte
  local urls=() i
  for i in $(seq 1 "$SCRAPES"); do urls+=("http://127.0.0.1:$PORT/metrics" -o /dev/null); done
  curl -fs -w '%{time_total}\n' "${urls[@]}" >"$work/times"
}
SCRAPES=${SCRAPES:-300}
for round in 1 2; do
  read -r qc qw < <(cpu_over 0 sleep 5)
  read -r bc bw < <(cpu_over 0 burst)
  med=$(sort -n "$work/times" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  awk -v qc="$qc" -v qw="$qw" -v bc="$bc" -v bw="$bw" -v n="$SCRAPES" -v med="$med" -v r="$round" 'BEGIN {
    base = qc / qw; per = (bc - base * bw) / n;
    printf "round %d: quiet %.3f CPU-s/s; %d scrapes in %.2f s took %.3f CPU-s: %.3f ms of CPU each (median time to last byte %.2f ms)\n", r, base, n, bw, bc, per * 1000, med * 1000;
    printf "round %d: one scrape per second = %.3f %% of the gateway CPU under this load; one per 15 s = %.4f %%\n", r, 100 * per / base, 100 * per / 15 / base;
  }'
done
echo "scrape size: $(curl -fs "http://127.0.0.1:$PORT/metrics" | wc -c) bytes"
wait $bench || true
grep -E "deliver|missing|p99" "$work/bench.log" | head -5 || true
