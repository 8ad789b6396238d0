#!/usr/bin/env bash
# Cluster benchmark runs of BENCHMARKS.md: start NODES release gateways on one fresh
# PostgreSQL database (with the PostgreSQL broker, or Redis on a redis-server of its
# own), run one chat-bench scenario with its clients spread over them, stop them.
#
#   crates/chat-bench/cluster.sh NODES postgres|redis SCENARIO [chat-bench args...]
#
# NODES=1 is the single-node baseline on the same database and machine. Environment:
# GATEWAY, BENCH, PG_URL (default postgres://postgres@127.0.0.1:5432/bench, recreated),
# PORT (first node's port, default 28941), REDIS_PORT (default 28940), OUT.
set -euo pipefail
nodes=$1; broker=$2; scenario=$3; shift 3
PORT=${PORT:-28941}
REDIS_PORT=${REDIS_PORT:-28940}
. "$(dirname "$0")/common.sh"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
pgdb=${PG_URL##*/}; pgbase=${PG_URL%/*}
psql "$pgbase/postgres" -qc "DROP DATABASE IF EXISTS $pgdb" -c "CREATE DATABASE $pgdb" >/dev/null

flags=()
case $broker in
  postgres) ;;
  redis)
    redis-server --port "$REDIS_PORT" --save '' --appendonly no >"$work/redis.log" 2>&1 &
    pids+=($!)
    flags=(--broker "redis://127.0.0.1:$REDIS_PORT") ;;
  *) echo "usage: $0 NODES postgres|redis SCENARIO [args]"; exit 2 ;;
esac

urls=()
gws=()
for i in $(seq 0 $((nodes - 1))); do
  port=$((PORT + i))
  "$GATEWAY" serve --listen "127.0.0.1:$port" --database-url "$PG_URL" --jwt-secret "$SECRET" \
    --data-dir "$work/data$i" $BENCH_LIMITS "${flags[@]}" >"$work/gateway$i.log" 2>&1 &
  pids+=($!); gws+=($!)
  urls+=("http://127.0.0.1:$port")
  wait_ready "$port" "${gws[-1]}" "$work/gateway$i.log" "node $i did not start"
done
list=$(IFS=,; echo "${urls[*]}")

cpu() { # user+system clock ticks of the gateways, summed
  local t=0
  for p in "${gws[@]}"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

name="$OUT/cluster$nodes-$broker-$scenario-$(date +%H%M%S).json"
echo "== $(uptime)"
echo "== $BENCH --url $list --scenario $scenario $* --jwt-secret $SECRET"
before=$(cpu); t0=$(date +%s.%N)
"$BENCH" --url "$list" --scenario "$scenario" --jwt-secret "$SECRET" \
  --json "$name" "$@" || echo "!! chat-bench reported a failed run (exit $?)"
after=$(cpu); t1=$(date +%s.%N)
echo "== gateways' CPU over the run: $(echo "($after - $before) / $(getconf CLK_TCK) / ($t1 - $t0) * 100" | bc -l | cut -c1-5) % of one core (all $nodes nodes)"
grep -h -i -E "error|warn" "$work"/gateway*.log | head -5 || true
echo "== report: $name"
