# Settings and steps shared by run.sh, cluster.sh and peers.sh (sourced, not run).
target=${CARGO_TARGET_DIR:-target}
GATEWAY=${GATEWAY:-$target/release/chat-gateway}
BENCH=${BENCH:-$target/release/chat-bench}
OUT=${OUT:-bench-results}
SECRET=chat-bench-secret-0123456789abcdef
# A benchmark is one client host driving far more than any real user or address
# would: the per-user and per-connection rates and the per-address connection cap
# are lifted (the README lists these limits).
BENCH_LIMITS="--user-rate 0 --conn-rate 0 --max-connections-per-ip 1000000"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/bench}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

# wait_ready PORT PID LOG WHAT: wait (up to 10 s) until the gateway on PORT is ready;
# when its process PID has died, print "WHAT:" and its LOG and exit.
wait_ready() {
  local port=$1 pid=$2 log=$3 what=$4
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$what:"; cat "$log"; exit 1
  fi
}

# recreate_db URL: drop the PostgreSQL database URL names and create it empty.
recreate_db() {
  local url=$1
  local db=${url##*/} base=${url%/*}
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
}

# start_gateway sqlite|postgres PORT WORK [serve flags...]: a release gateway on a fresh
# database (SQLite: a file in WORK; PostgreSQL: $PG_URL, recreated) listening on
# 127.0.0.1:PORT, with the benchmark limits; its pid in GW_PID, its log in
# WORK/gateway.log. Returns once it is ready (exits, printing the log, if it died).
start_gateway() {
  local db=$1 port=$2 work=$3 url
  shift 3
  case $db in
    sqlite) url="sqlite://$work/bench.db" ;;
    postgres) recreate_db "$PG_URL"; url=$PG_URL ;;
    *) echo "start_gateway: sqlite or postgres, not $db" >&2; return 2 ;;
  esac
  # shellcheck disable=SC2086
  "$GATEWAY" serve --listen "127.0.0.1:$port" --database-url "$url" --jwt-secret "$SECRET" \
    --data-dir "$work/data" $BENCH_LIMITS "$@" >"$work/gateway.log" 2>&1 &
  GW_PID=$!
  wait_ready "$port" "$GW_PID" "$work/gateway.log" "the gateway did not start (port $port taken?)"
}
