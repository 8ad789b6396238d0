#!/usr/bin/env bash
# Full benchmark runs of BENCHMARKS.md: start a release gateway on the chosen database,
# run one chat-bench scenario against it, stop it. JSON reports go to $OUT (default
# bench-results/).
#
#   crates/chat-bench/run.sh sqlite|postgres SCENARIO [chat-bench args...]
#
# Environment: GATEWAY (default target/release/chat-gateway), BENCH (…/chat-bench),
# PG_URL (default postgres://postgres@127.0.0.1:5432/bench, recreated for each run),
# PORT (default 28931), OUT.
set -euo pipefail
db=$1; scenario=$2; shift 2
PORT=${PORT:-28931}
. "$(dirname "$0")/common.sh"

work=$(mktemp -d)
case $db in
  sqlite|postgres) ;;
  *) echo "usage: $0 sqlite|postgres SCENARIO [args]"; exit 2 ;;
esac
trap 'kill ${GW_PID:-} 2>/dev/null; wait ${GW_PID:-} 2>/dev/null; rm -rf "$work"' EXIT
start_gateway "$db" "$PORT" "$work"
gw=$GW_PID

name="$OUT/$db-$scenario-$(date +%H%M%S).json"
echo "== $(uptime)"
echo "== $BENCH --url http://127.0.0.1:$PORT --scenario $scenario $* --server-pid \$GATEWAY_PID --jwt-secret $SECRET"
"$BENCH" --url "http://127.0.0.1:$PORT" --scenario "$scenario" --jwt-secret "$SECRET" \
  --server-pid "$gw" --json "$name" "$@" || echo "!! chat-bench reported a failed run (exit $?)"
echo "== report: $name"
