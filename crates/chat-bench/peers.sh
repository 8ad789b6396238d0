#!/usr/bin/env bash
# One script, one run, one table (issue 15): the same chat-bench scenarios against the
# ceiling peer, the gateway on SQLite, the gateway on PostgreSQL, the legacy Node
# socket.io stack and the legacy Django DCRF stack, one server after the other, and the
# side-by-side table written into BENCHMARKS.md between the peers-table markers.
#
#   crates/chat-bench/peers.sh            # from the repository root; QUICK=1 for a short try
#
# The peers are copied from $PEERS (default ../shared/peers, read-only) to $PEERS_WORK
# (default ${TMPDIR:-/tmp}/chat-bench-peers) and built or set up there (setup.sh runs
# only where node_modules/ or .venv/ is missing). Needs: release builds of chat-gateway
# and chat-bench (GATEWAY, BENCH as in run.sh), cargo, node/npm, python3, psql, jq,
# PostgreSQL at PG_BASE (default postgres://postgres@127.0.0.1:5432). Databases:
# bench (the gateway), peer_bench_node, peer_bench_dcrf, each recreated.
# Ports: CEILING_PORT (9100), GW_PORT (28951), NODE_PORT (28961), DCRF_PORT (28962).
# JSON reports go to $OUT (default bench-results/peers-<time>/). BENCHMARKS (default
# BENCHMARKS.md) is the file the table goes into; TABLE_ONLY=1 rewrites it from the
# reports in $OUT without running anything.
#
# Exit status: 0 when every run passed and the table is whole; 1 when any run failed
# (chat-bench exit status non-zero, or no report) or a cell is missing; 2 on a set-up
# error (a peer that does not build or start).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
stamp=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-bench-results/peers-$stamp}
PEERS=${PEERS:-../shared/peers}
PEERS_WORK=${PEERS_WORK:-${TMPDIR:-/tmp}/chat-bench-peers}
PG_BASE=${PG_BASE:-postgres://postgres@127.0.0.1:5432}
PG_URL=$PG_BASE/bench
NODE_DB=$PG_BASE/peer_bench_node
DCRF_DB=$PG_BASE/peer_bench_dcrf
CEILING_PORT=${CEILING_PORT:-9100}
GW_PORT=${GW_PORT:-28951}
NODE_PORT=${NODE_PORT:-28961}
DCRF_PORT=${DCRF_PORT:-28962}
BENCHMARKS=${BENCHMARKS:-BENCHMARKS.md}
QUICK=${QUICK:-0}
. crates/chat-bench/common.sh

die() { echo "peers.sh: $*" >&2; exit 2; }

# ---------------------------------------------------------------------------------
# The scenarios. Each is NAME|SERVERS|chat-bench flags; SERVERS lists which of
# ceiling, sqlite, postgres, node, dcrf run it (the others get "–" and a footnote).
# Sizes: the issue's, or small ones with QUICK=1.
if [ "$QUICK" = 1 ]; then
  F="--connections 100 --senders 1 --rate 100 --duration 2"
  R="--connections 2 --senders 1 --rate 500 --duration 2"
  D="--pairs 10 --rate 0 --duration 2"
  DA="--pairs 5 --rate 0 --duration 2"
  I="--connections 500 --connect-rate 1000 --duration 2"
  I_LEGACY="--connections 100 --connect-rate 100 --duration 2"
  S="--connections 500 --duration 1"
  S_LEGACY="--connections 100 --duration 1"
  DRAIN="--drain 5"
else
  F="--connections 1000 --senders 1 --rate 1000 --duration 10 --threads 2"
  R="--connections 2 --senders 1 --rate 5000 --duration 5"
  D="--pairs 100 --rate 0 --duration 10 --threads 2"
  DA="--pairs 20 --rate 0 --duration 10"
  I="--connections 10000 --connect-rate 3000 --source-ips 4 --duration 5 --threads 2"
  I_LEGACY="--connections 1000 --connect-rate 200 --duration 5"
  S="--connections 5000 --source-ips 4 --duration 2 --threads 2"
  S_LEGACY="--connections 500 --duration 2"
  DRAIN="--drain 10"
fi
MA="--dialects method-args"
SCENARIOS=(
  "F|ceiling sqlite postgres|--scenario fanout $MA $F $DRAIN"
  "R|ceiling sqlite postgres|--scenario fanout $MA $R $DRAIN"
  "D|ceiling sqlite postgres|--scenario direct $MA $D $DRAIN"
  "DP|sqlite postgres node|--scenario direct --dialects socketio-pubsub $D $DRAIN"
  "DA|sqlite postgres dcrf|--scenario direct --dialects action-request $DA $DRAIN"
  "I|ceiling sqlite postgres|--scenario idle $MA $I"
  "I-node|node|--scenario idle --dialects socketio-pubsub $I_LEGACY"
  "I-dcrf|dcrf|--scenario idle --dialects action-request $I_LEGACY"
  "SN|ceiling sqlite postgres|--scenario storm --new-users $MA $S"
  "SR|ceiling sqlite postgres|--scenario storm $MA $S"
  "SN-node|node|--scenario storm --new-users --dialects socketio-pubsub $S_LEGACY"
  "SR-node|node|--scenario storm --dialects socketio-pubsub $S_LEGACY"
  "SN-dcrf|dcrf|--scenario storm --new-users --dialects action-request $S_LEGACY"
  "SR-dcrf|dcrf|--scenario storm --dialects action-request $S_LEGACY"
)

# ---------------------------------------------------------------------------------
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_up PID LOG WHAT CHECK...: run CHECK until it succeeds (up to 60 s) while PID lives.
wait_up() {
  local pid=$1 log=$2 what=$3
  shift 3
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    "$@" >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "peers.sh: $what did not come up:" >&2
  tail -20 "$log" >&2
  exit 2
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# port_free PORT: refuse to start a server where something else already listens (it
# would be measured instead).
port_free() { ! port_open "$1" || die "127.0.0.1:$1 is taken by another process"; }
# stop PID: end a server this script started, and forget it.
stop() {
  kill "$1" 2>/dev/null; wait "$1" 2>/dev/null
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
stop_server() { stop "$SERVER_PID"; }

# bench NAME SERVER URL PID ARGS...: one chat-bench run; report $OUT/SERVER-NAME.json,
# exit status in $OUT/SERVER-NAME.rc, output in $OUT/SERVER-NAME.log.
bench() {
  local name=$1 server=$2 url=$3 pid=$4
  shift 4
  local base="$OUT/$server-$name"
  echo "== $server $name: $BENCH --url $url $* ($(uptime | sed 's/.*load/load/'))"
  # shellcheck disable=SC2068
  "$BENCH" --url "$url" --jwt-secret "$SECRET" --server-pid "$pid" --json "$base.json" --quiet \
    "$@" >"$base.log" 2>&1
  local rc=$?
  echo "$rc" >"$base.rc"
  if [ "$rc" != 0 ]; then
    echo "!! $server $name failed (exit $rc):" >&2
    grep -h "chat-bench:" "$base.log" | head -5 >&2
  fi
}

# runs_on SERVER ENTRY: whether the scenario ENTRY runs on SERVER.
runs_on() { local servers=${2#*|}; servers=${servers%%|*}; [[ " $servers " == *" $1 "* ]]; }

# run_all_on SERVER URL START STOP: every scenario of SERVER, each between the
# functions START (sets SERVER_PID) and STOP.
run_all_on() {
  local server=$1 url=$2 start=$3 stop_fn=$4 entry
  for entry in "${SCENARIOS[@]}"; do
    runs_on "$server" "$entry" || continue
    $start
    # shellcheck disable=SC2086
    bench "${entry%%|*}" "$server" "$url" "$SERVER_PID" ${entry##*|} ${EXTRA_ARGS:-}
    $stop_fn
  done
}

if [ "${TABLE_ONLY:-0}" != 1 ]; then
  mkdir -p "$OUT" "$PEERS_WORK"
  [ -x "$GATEWAY" ] && [ -x "$BENCH" ] ||
    die "no release build at $GATEWAY / $BENCH: cargo build --release -p chat-gateway -p chat-bench"
  [ -d "$PEERS" ] || die "no peers at $PEERS (PEERS=dir to point elsewhere)"
  echo "== load before: $(uptime)" | tee "$OUT/load-before"

  # The peers, copied to a writable place (what setup.sh installed is kept).
  for p in ceiling node-socketio django-dcrf; do
    mkdir -p "$PEERS_WORK/$p"
    (cd "$PEERS/$p" && tar cf - --exclude=node_modules --exclude=.venv --exclude=target .) |
      (cd "$PEERS_WORK/$p" && tar xf -) || die "copy $PEERS/$p"
  done
  echo "== building the ceiling"
  cargo build --release --manifest-path "$PEERS_WORK/ceiling/Cargo.toml" --target-dir target/peers \
    >"$OUT/ceiling-build.log" 2>&1 || { tail -20 "$OUT/ceiling-build.log"; die "the ceiling did not build"; }
  CEILING=target/peers/release/ceiling
  if [ ! -d "$PEERS_WORK/node-socketio/node_modules" ]; then
    echo "== setting up node-socketio"
    (cd "$PEERS_WORK/node-socketio" && ./setup.sh) >"$OUT/node-setup.log" 2>&1 || die "node-socketio setup.sh failed (see $OUT/node-setup.log)"
  fi
  if [ ! -x "$PEERS_WORK/django-dcrf/.venv/bin/python" ]; then
    echo "== setting up django-dcrf"
    (cd "$PEERS_WORK/django-dcrf" && ./setup.sh) >"$OUT/dcrf-setup.log" 2>&1 || die "django-dcrf setup.sh failed (see $OUT/dcrf-setup.log)"
  fi

  work=$(mktemp -d)
  trap 'cleanup; rm -rf "$work"' EXIT

  # The ceiling: a fresh process per scenario.
  start_ceiling() {
    port_free "$CEILING_PORT"
    "$CEILING" --listen "127.0.0.1:$CEILING_PORT" >"$work/ceiling.log" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    wait_up "$SERVER_PID" "$work/ceiling.log" "the ceiling" port_open "$CEILING_PORT"
  }
  run_all_on ceiling "http://127.0.0.1:$CEILING_PORT" start_ceiling stop_server

  # The gateway: a fresh process on a fresh database per scenario, as run.sh does.
  for db in sqlite postgres; do
    start_gw() {
      rm -rf "$work/gw" && mkdir -p "$work/gw"
      port_free "$GW_PORT"
      start_gateway "$db" "$GW_PORT" "$work/gw"
      SERVER_PID=$GW_PID
      pids+=("$SERVER_PID")
    }
    run_all_on "$db" "http://127.0.0.1:$GW_PORT" start_gw stop_server
  done

  # The legacy Node stack: one process on a fresh database for all its scenarios.
  recreate_db "$NODE_DB"
  port_free "$NODE_PORT"
  (cd "$PEERS_WORK/node-socketio" && exec ./run.sh "$NODE_PORT" "$NODE_DB" "$SECRET") >"$work/node.log" 2>&1 &
  SERVER_PID=$!
  pids+=("$SERVER_PID")
  wait_up "$SERVER_PID" "$work/node.log" "node-socketio" curl -fs "http://127.0.0.1:$NODE_PORT/healthz"
  run_all_on node "http://127.0.0.1:$NODE_PORT" : :
  stop "$SERVER_PID"

  # The legacy Django stack: one daphne on a fresh database; user ids below 2^31 (the
  # Django user table's key is 32-bit), a fresh block per scenario.
  recreate_db "$DCRF_DB"
  port_free "$DCRF_PORT"
  (cd "$PEERS_WORK/django-dcrf" && CONN_MAX_AGE=60 DAPHNE_ARGS="-v 0" exec ./run.sh "$DCRF_PORT" "$DCRF_DB" "$SECRET") \
    >"$work/dcrf.log" 2>&1 &
  SERVER_PID=$!
  pids+=("$SERVER_PID")
  wait_up "$SERVER_PID" "$work/dcrf.log" "django-dcrf" curl -fs "http://127.0.0.1:$DCRF_PORT/healthz"
  dcrf_block=0
  next_dcrf_block() { dcrf_block=$((dcrf_block + 1)); EXTRA_ARGS="--user-base $((dcrf_block * 100000))"; }
  run_all_on dcrf "http://127.0.0.1:$DCRF_PORT" next_dcrf_block :
  EXTRA_ARGS=
  stop "$SERVER_PID"
  echo "== load after: $(uptime)" | tee "$OUT/load-after"
fi

# ---------------------------------------------------------------------------------
# The table, from the JSON reports.
commit=$(git rev-parse --short HEAD)
[ -n "$(git status --porcelain -- crates)" ] && commit="$commit (with uncommitted changes)"
command="crates/chat-bench/peers.sh"
[ "$QUICK" = 1 ] && command="QUICK=1 $command"
OUT="$OUT" BENCHMARKS="$BENCHMARKS" QUICK="$QUICK" COMMIT="$commit" COMMAND="$command" \
  SCENARIO_LIST="$(printf '%s\n' "${SCENARIOS[@]}")" python3 - <<'EOF'
import json, os, re, sys

out, quick = os.environ["OUT"], os.environ["QUICK"] == "1"
servers = ["ceiling", "sqlite", "postgres", "node", "dcrf"]
heads = ["ceiling (method-args)", "gateway SQLite", "gateway PostgreSQL",
         "Node socket.io (socketio-pubsub)", "Django DCRF (action-request)"]
flags = {}
for line in os.environ["SCENARIO_LIST"].splitlines():
    name, srv, args = line.split("|", 2)
    for s in srv.split():
        flags[(name, s)] = " ".join(args.split())
failed, holes = [], []

def report(name, server):
    base = os.path.join(out, f"{server}-{name}")
    try:
        rc = open(base + ".rc").read().strip()
    except OSError:
        holes.append(f"{server} {name}: not run")
        return None
    try:
        r = json.load(open(base + ".json"))
    except (OSError, ValueError):
        r = None
    if rc != "0" or r is None:
        why = "; ".join((r or {}).get("verdict", {}).get("problems", [])) or f"exit {rc}"
        failed.append(f"{server} {name}: {why}")
        return {"failed": why}
    return r

def ms(x):
    return "?" if x is None else (f"{x:.1f} ms" if x < 1000 else f"{x / 1000:.2f} s")

def num(x):
    return f"{x:,.0f}"

def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "?"

# (row title, scenario name per server, cell, ratio reference, target text)
def fanout(r):
    run, d = r["run"], r["delivery_latency"]
    return (f"{num(run['deliveries_per_s'])} deliveries/s, p99 {ms(d.get('p99_ms'))}, "
            f"{run['missing']} missing"), d.get("p99_ms")
def one_conn(r):
    run, a = r["run"], r["ack_latency"]
    within = run["acks_per_s"] * run["seconds"]
    share = 100 * within / run["sent"] if run["sent"] else 0
    return (f"{share:.1f} % acked in the window ({run['acks']:,}/{run['sent']:,} in all), "
            f"ack p99 {ms(a.get('p99_ms'))}"), a.get("p99_ms")
def pairs(r):
    run, a = r["run"], r["ack_latency"]
    return f"{num(run['acks_per_s'])} acked/s, ack p99 {ms(a.get('p99_ms'))}", run["acks_per_s"]
def idle(r):
    s = r["server"]
    k = s.get("rss_kib_per_connection_at_stop")
    if k is None:
        return "no RSS figure (the server's pid was not readable)", None
    return f"{k:.1f} KiB/conn ({r['connect']['ready']:,} conns)", k
def storm(r):
    c = r["connect"]
    return (f"{num(c['connects_per_s'])} connects/s ({c['ready']:,} in "
            f"{c['seconds_until_all_ready']:.2f} s)"), c["connects_per_s"]

rows = [
    ("fan-out: one room, one sender", {s: "F" for s in servers[:3]}, fanout, "ceiling",
     "nothing missing, p99 ≤ 2× the ceiling's"),
    ("one connection sending into a room of 2", {s: "R" for s in servers[:3]}, one_conn, None,
     "≥ 95 % acked in the window, ack p99 ≤ 50 ms"),
    ("closed-loop pairs, method-args", {s: "D" for s in servers[:3]}, pairs, "ceiling",
     "PostgreSQL ≥ 0.35× the ceiling, ack p99 ≤ 25 ms"),
    ("closed-loop pairs, socketio-pubsub", {"sqlite": "DP", "postgres": "DP", "node": "DP"}, pairs,
     "node", "≥ 10× the Node stack"),
    ("closed-loop pairs, action-request", {"sqlite": "DA", "postgres": "DA", "dcrf": "DA"}, pairs,
     "dcrf", "≥ 50× DCRF"),
    ("idle connections", {"ceiling": "I", "sqlite": "I", "postgres": "I", "node": "I-node",
                          "dcrf": "I-dcrf"}, idle, "ceiling", "≤ 1.1× the ceiling's KiB"),
    ("connect storm, new users", {"ceiling": "SN", "sqlite": "SN", "postgres": "SN",
                                  "node": "SN-node", "dcrf": "SN-dcrf"}, storm, None,
     "≥ 5,000/s"),
    ("connect storm, returning users", {"ceiling": "SR", "sqlite": "SR", "postgres": "SR",
                                        "node": "SR-node", "dcrf": "SR-dcrf"}, storm, None, "–"),
]
notes = {
    "ceiling-DP": "a", "ceiling-DA": "a", "node-F": "b", "node-R": "b", "node-D": "c",
    "node-DA": "c", "dcrf-F": "d", "dcrf-R": "d", "dcrf-D": "c", "dcrf-DP": "c",
}
footnotes = {
    "a": "the ceiling speaks only the method-args subset `auth`, `create_chat`, `send_message`.",
    "b": "socketio-pubsub has no rooms of more than two members, and the Node stack speaks nothing else.",
    "c": "a legacy stack speaks one dialect: it runs the pairs of its own (the gateway runs them too, for the ratio).",
    "d": "not run: the DCRF stack acknowledges a few hundred messages/s (its pairs row), so 1,000 msg/s into a room of 1,000 or 5,000 msg/s from one connection cannot finish; a run that cannot drain fails.",
}
row_key = ["F", "R", "D", "DP", "DA", "I", "SN", "SR"]
lines = ["| scenario | " + " | ".join(heads) + " | target |",
         "|---|" + "---|" * len(heads) + "---|"]
used = set()
for (title, per, cell, ref, target), key in zip(rows, row_key):
    vals, cells = {}, {}
    for s in servers:
        if s not in per:
            n = notes.get(f"{s}-{key}", "a")
            used.add(n)
            cells[s] = f"– ({n})"
            continue
        r = report(per[s], s)
        if r is None:
            cells[s] = "not run"
        elif "failed" in r:
            cells[s] = f"**failed**: {r['failed']}"
        else:
            text, v = cell(r)
            cells[s] = text
            if v is None:
                holes.append(f"{s} {per[s]}: {text}")
            else:
                vals[s] = v
    if ref and ref in vals:
        for s in vals:
            if s != ref:
                if key == "F":
                    cells[s] += f" — p99 {ratio(vals[s], vals[ref])} the ceiling's"
                elif key == "I":
                    cells[s] += f" — {ratio(vals[s], vals[ref])} the ceiling's"
                elif ref == "ceiling":
                    cells[s] += f" — {ratio(vals[s], vals[ref])} the ceiling's rate"
                else:
                    cells[s] += f" — {ratio(vals[s], vals[ref])} the legacy stack's rate"
    some = next(iter(per.items()))
    lines.append(f"| {title} (`{per.get('sqlite', some[1])}`) | " +
                 " | ".join(cells[s] for s in servers) + f" | {target} |")

load_before = open(os.path.join(out, "load-before")).read().strip() if os.path.exists(os.path.join(out, "load-before")) else "?"
load_after = open(os.path.join(out, "load-after")).read().strip() if os.path.exists(os.path.join(out, "load-after")) else "?"
import datetime
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
block = []
if quick:
    block.append("**QUICK=1 run: short durations and small sizes, for trying the script out; "
                 "not the issue's scenarios, so these figures are no verdict.**\n")
block.append(f"Written by `{os.environ['COMMAND']}` on {stamp}, commit {os.environ['COMMIT']}; "
             f"reports in `{out}/`. {load_before.replace('== ', '')}; {load_after.replace('== ', '')}.\n")
block += lines
block.append("")
for n in sorted(used):
    block.append(f"({n}) {footnotes[n]}  ")
block.append("")
block.append("The runs (`chat-bench --url URL --jwt-secret S --server-pid PID` plus):\n")
block.append("| run | servers | flags |")
block.append("|---|---|---|")
seen = {}
for (name, s), f in flags.items():
    seen.setdefault(name, ([], f))[0].append(s)
for name, (srvs, f) in seen.items():
    block.append(f"| {name} | {', '.join(srvs)} | `{f}` |")
if failed or holes:
    block.append("")
    block.append("**Not whole:** " + "; ".join(failed + holes))
text = "\n".join(block)

path = os.environ["BENCHMARKS"]
doc = open(path).read()
begin, end = "<!-- peers-table:begin -->", "<!-- peers-table:end -->"
if begin not in doc:
    section = ("## Side by side with the peers (issue 15)\n\n" + begin + "\n" + end + "\n\n")
    at = doc.find("## Issue 13 refactor")
    doc = doc[:at] + section + doc[at:] if at >= 0 else doc + "\n" + section
doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: begin + "\n" + text + "\n" + end,
             doc, flags=re.S)
open(path, "w").write(doc)
print(text)
if failed or holes:
    print("peers.sh: the table is not whole: " + "; ".join(failed + holes), file=sys.stderr)
    sys.exit(1)
EOF
