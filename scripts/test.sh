#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, and the whole test suite (unit,
# store behaviour on SQLite and PostgreSQL, gateway and dialects on real sockets).
# PostgreSQL tests use TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
# when it is unreachable they print SKIPPED loudly, and under CI=true they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== dialect names outside their crates (at most 7 files each)"
bash scripts/dialect-names.sh

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== socket.io-client for the Socket.IO dialect tests (tests/node)"
# The Socket.IO tests drive the real npm socket.io-client, pinned by
# tests/node/package-lock.json. Without Node they print SKIPPED (under CI=true they fail).
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
  # The runnable Socket.IO examples have their own lock file (examples/node).
  npm ci --prefix examples/node --no-audit --no-fund --loglevel=error
else
  echo "!!!! npm not found: the socket.io-client tests will be SKIPPED (they fail under CI=true)"
fi

echo "== Chromium and playwright-core for the console's browser test (tests/browser)"
# crates/gateway/tests/console.rs drives /console in Debian's Chromium. Without it the
# test prints SKIPPED (under CI=true it fails).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "!!!! chromium not found: the console browser test will be SKIPPED (it fails under CI=true)"
  fi
fi
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

echo "== redis-server for the cluster tests with the Redis broker"
# The cluster tests start redis-servers of their own on free ports (one is restarted
# mid-test). Without the binary they print SKIPPED (under CI=true they fail).
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "!!!! redis-server not found: the Redis broker tests will be SKIPPED (they fail under CI=true)"
  fi
fi

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
