#!/usr/bin/env bash
# Five clients, one per dialect, in one chat of a running gateway: watch the gateway
# translate every message into each client's own protocol.
#
# The chat is the direct chat of ann (user 1) and bob (user 2), the one room all five
# dialects can name (socketio-pubsub knows nothing else). Ann is connected three times
# (method-args, type-content, action-request), bob twice (socketio-rooms,
# socketio-pubsub). The clients start one after the other, each once the previous one
# is in the chat, and each sends "hello from <dialect>": so the first sees all five
# messages, the last only its own. Every line is prefixed with the client's dialect.
#
#   cargo run --release -p chat-gateway -- serve     # in another terminal, from the repo root
#   bash examples/five-dialects.sh
#
# Environment (all optional):
#   GATEWAY             the gateway's base URL (http://127.0.0.1:8080)
#   ANN_TOKEN BOB_TOKEN tokens for users 1 and 2; minted with `chat-gateway token`
#                       (which reads the secret from ./data) when not given
#   WS_CLIENTS          folder of the built Rust examples; built with cargo when not given
#   LINGER              seconds to keep listening after the last client joined (2)
set -euo pipefail
cd "$(dirname "$0")/.."

GATEWAY=${GATEWAY:-http://127.0.0.1:8080}
LINGER=${LINGER:-2}

if [ -z "${ANN_TOKEN:-}" ] || [ -z "${BOB_TOKEN:-}" ]; then
  ANN_TOKEN=$(cargo run -q --release -p chat-gateway -- token --user 1 --username ann)
  BOB_TOKEN=$(cargo run -q --release -p chat-gateway -- token --user 2 --username bob)
fi
if [ -z "${WS_CLIENTS:-}" ]; then
  cargo build -q --release -p ws-clients
  WS_CLIENTS=${CARGO_TARGET_DIR:-target}/release
fi
[ -d examples/node/node_modules ] || npm ci --prefix examples/node --no-audit --no-fund --loglevel=error

# A user exists once the gateway has seen their token; the first client below
# creates the chat with bob, so bob must exist before it starts.
for token in "$ANN_TOKEN" "$BOB_TOKEN"; do
  curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$GATEWAY/api/rooms"
done

logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$logs"
}
trap cleanup EXIT

# start NAME COMMAND…: run a client in the background, its lines prefixed with NAME,
# and wait until it says it is in the chat.
start() {
  local name=$1
  shift
  "$@" > >(sed -u "s/^/[$name] /" | tee "$logs/$name") 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q '^\[[a-z-]*\] ready' "$logs/$name" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not get into the chat" >&2
  exit 1
}

export CHAT_URL=$GATEWAY
CHAT_TOKEN=$ANN_TOKEN CHAT_PEER=2 start method-args "$WS_CLIENTS/method-args"
CHAT_TOKEN=$ANN_TOKEN CHAT_USER_ID=1 CHAT_PEER=2 start type-content "$WS_CLIENTS/type-content"
CHAT_TOKEN=$ANN_TOKEN CHAT_PEER=2 start action-request "$WS_CLIENTS/action-request"
CHAT_TOKEN=$BOB_TOKEN CHAT_USER_ID=2 CHAT_PEER=1 start socketio-rooms node examples/node/socketio-rooms.mjs
CHAT_TOKEN=$BOB_TOKEN CHAT_PEER=ann start socketio-pubsub node examples/node/socketio-pubsub.mjs
sleep "$LINGER"
