// A socket.io-client driven over stdin/stdout, one JSON document per line, so that
// the Rust integration tests can use the real client the legacy front-ends use.
//
// In (stdin):
//   {"cmd":"connect","id":"a","url":"http://127.0.0.1:8080/chat","opts":{...}}
//   {"cmd":"emit","id":"a","event":"send-message","args":[{...}],"seq":1,"ack":true}
//   {"cmd":"raw","id":"a","data":"42/chat,[\"x\""}   (an Engine.IO message, unparsed)
//   {"cmd":"transport","id":"a","seq":2}
//   {"cmd":"close","id":"a"}
//   {"cmd":"exit"}
// Out (stdout): {"id":"a","type":"connect"|"connect_error"|"disconnect"|"upgrade"|
//   "open"|"event"|"ack"|"transport"|"reconnect_attempt", ...}
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const sockets = new Map();
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function connect({ id, url, opts }) {
  const socket = io(url, { forceNew: true, ...opts });
  sockets.set(id, socket);
  // The Engine.IO connection opens (on polling unless told otherwise) before the
  // namespace connects, and may upgrade to WebSocket before or after that.
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    out({ id, type: "open", transport: engine.transport.name });
    engine.on("upgrade", (t) => out({ id, type: "upgrade", transport: t.name }));
  });
  socket.on("connect", () =>
    out({ id, type: "connect", transport: socket.io.engine.transport.name }));
  socket.on("connect_error", (err) =>
    out({ id, type: "connect_error", message: err.message, data: err.data ?? null }));
  socket.on("disconnect", (reason) => out({ id, type: "disconnect", reason }));
  socket.io.on("reconnect_attempt", (n) => out({ id, type: "reconnect_attempt", attempt: n }));
  socket.onAny((event, ...args) => out({ id, type: "event", event, args }));
}

function emit({ id, event, args = [], seq, ack }) {
  const socket = sockets.get(id);
  if (!socket) return out({ id, type: "ack", seq, error: "no such socket" });
  if (ack) {
    socket.timeout(5000).emit(event, ...args, (err, ...res) =>
      out({ id, type: "ack", seq, args: res, error: err ? String(err.message ?? err) : null }));
  } else {
    socket.emit(event, ...args);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    return out({ type: "driver_error", message: String(e) });
  }
  switch (msg.cmd) {
    case "connect": return connect(msg);
    case "emit": return emit(msg);
    case "raw": return sockets.get(msg.id)?.io.engine.write(msg.data);
    case "transport":
      return out({ id: msg.id, type: "transport", seq: msg.seq,
        name: sockets.get(msg.id)?.io.engine?.transport?.name ?? null });
    case "close": return sockets.get(msg.id)?.disconnect();
    case "exit":
      for (const s of sockets.values()) s.disconnect();
      return process.exit(0);
    default: return out({ type: "driver_error", message: `unknown cmd ${msg.cmd}` });
  }
});
rl.on("close", () => process.exit(0));
