# Settings and steps shared by run.sh and cluster.sh (sourced, not run).
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
