#!/usr/bin/env bash
# Time `chat-gateway import` of N generated messages into a fresh SQLite file and a
# fresh PostgreSQL schema, and print messages/s for each (issue 16, BENCHMARKS.md
# "Import (issue 16)").
#
#   scripts/import-bench.sh [N] [ROOMS]
#
# N messages (default 500000) over ROOMS group rooms (default 1000) of 100 users,
# each message with created_at, a third of them replies. The binary is
# target/release/chat-gateway (built if missing) or $CHAT_GATEWAY_BIN; PostgreSQL is
# $PG_URL (default postgres://postgres@127.0.0.1:5432/test), skipped when unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500000}
ROOMS=${2:-1000}
BIN=${CHAT_GATEWAY_BIN:-target/release/chat-gateway}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
[ -x "$BIN" ] || cargo build --release -p chat-gateway --bin chat-gateway
work=$(mktemp -d "${TMPDIR:-/tmp}/import-bench.XXXXXX")
schema="import_bench_$$"
cleanup() {
  rm -rf "$work"
  psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

python3 - "$N" "$ROOMS" > "$work/history.jsonl" <<'PY'
import json, sys
n, rooms = int(sys.argv[1]), int(sys.argv[2])
w = sys.stdout.write
for u in range(1, 101):
    w(json.dumps({"type": "user", "id": u, "username": f"user-{u}"}) + "\n")
for r in range(1, rooms + 1):
    members = [1 + (r * 7 + k) % 100 for k in range(4)]
    w(json.dumps({"type": "room", "id": r, "kind": "group", "title": f"room {r}",
                  "members": sorted(set(members))}) + "\n")
t0 = 1_600_000_000
for i in range(1, n + 1):
    r = 1 + i % rooms
    m = {"type": "message", "id": i, "room": r, "author": 1 + (r * 7 + i % 4) % 100,
         "text": f"message number {i} in room {r}, with some words in it", "created_at": t0 + i}
    if i > rooms and i % 3 == 0:
        m["reply_to"] = i - rooms
    w(json.dumps(m, separators=(",", ":")) + "\n")
PY
lines=$(wc -l < "$work/history.jsonl")
echo "generated $lines lines ($N messages, $ROOMS rooms) in $(du -h "$work/history.jsonl" | cut -f1)"

run() { # NAME URL
  local start end secs
  start=$(date +%s.%N)
  "$BIN" import "$work/history.jsonl" --quiet --database-url "$2" --data-dir "$work/data" > "$work/$1.out"
  end=$(date +%s.%N)
  secs=$(echo "$end - $start" | bc -l)
  grep '^messages:' "$work/$1.out"
  printf '%-10s %8d messages in %6.2f s = %8.0f messages/s\n' "$1" "$N" "$secs" "$(echo "$N / $secs" | bc -l)"
}

run sqlite "sqlite://$work/bench.db"
if psql "$PG_URL" -qc "CREATE SCHEMA $schema" >/dev/null 2>&1; then
  sep='?'; case "$PG_URL" in *\?*) sep='&';; esac
  run postgres "${PG_URL}${sep}options=-csearch_path%3D${schema}"
else
  echo "SKIPPED postgres: $PG_URL unreachable"
fi
