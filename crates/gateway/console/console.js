// The gateway's console: this node's figures (polled from /console/api/stats with an
// admin token) and a "try it" pane that talks to any mounted dialect from the browser.
// It knows no dialect by name: /console/api/dialects says what is mounted, over which
// transport, with which sample frames.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const CHART_POINTS = 60;

const state = {
  token: sessionStorage.getItem("chat-console-token") || "",
  timer: null,
  last: null, // { at, messages }
  rates: [],
  dialects: [],
  conn: null, // the try-it connection: { kind, send(text), close() }
};

function setStatus(text, error) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!error);
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

// ---------------------------------------------------------------- overview

async function poll() {
  let res;
  try {
    res = await fetch("/console/api/stats", { headers: { Authorization: "Bearer " + state.token } });
  } catch (e) {
    setStatus("The gateway does not answer: " + e, true);
    return;
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    setStatus("Refused: " + (body.detail || res.status), true);
    if (res.status === 401 || res.status === 403) signOut(false);
    return;
  }
  setStatus("Signed in; updated " + new Date().toLocaleTimeString() + ".");
  $("overview").hidden = false;
  render(body);
}

function render(s) {
  $("node").textContent = "v" + s.version + (s.node != null ? " · node " + s.node : "");
  $("connections").textContent = s.connections;
  $("online-users").textContent = s.online_users;
  $("messages").textContent = s.messages_committed;
  $("slow").textContent = s.slow_consumer_closes;
  const now = performance.now();
  if (state.last) {
    const secs = (now - state.last.at) / 1000;
    const rate = secs > 0 ? Math.max(0, (s.messages_committed - state.last.messages) / secs) : 0;
    state.rates.push(rate);
    if (state.rates.length > CHART_POINTS) state.rates.shift();
    $("rate").textContent = rate.toFixed(1);
  }
  state.last = { at: now, messages: s.messages_committed };
  drawChart();

  const tbody = $("dialects").querySelector("tbody");
  tbody.replaceChildren();
  for (const d of s.dialects) {
    const tr = document.createElement("tr");
    tr.id = "dialect-" + d.name;
    cell(tr, d.name);
    cell(tr, d.open, "num open");
    cell(tr, d.accepted, "num");
    cell(tr, d.closed, "num");
    cell(tr, d.slow_consumer_closes, "num");
    cell(tr, d.messages_committed, "num");
    cell(tr, d.events_delivered, "num");
    tbody.appendChild(tr);
  }

  const rooms = $("rooms").querySelector("tbody");
  rooms.replaceChildren();
  $("room-count").textContent = s.total_rooms > s.rooms.length
    ? `(first ${s.rooms.length} of ${s.total_rooms})` : `(${s.total_rooms})`;
  for (const r of s.rooms) {
    const tr = document.createElement("tr");
    tr.id = "room-" + r.id;
    cell(tr, r.id, "num");
    cell(tr, r.kind + (r.project_id != null ? " " + r.project_id : ""));
    cell(tr, r.title);
    const td = cell(tr, "");
    r.members.forEach((m, i) => {
      const span = document.createElement("span");
      span.className = m.online ? "online" : "offline";
      span.textContent = (m.online ? "● " : "○ ") + (m.username || "#" + m.id);
      if (i > 0) td.appendChild(document.createTextNode(", "));
      td.appendChild(span);
    });
    rooms.appendChild(tr);
  }
}

function drawChart() {
  const c = $("chart");
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...state.rates);
  g.fillStyle = "#5b6676";
  g.font = "11px system-ui";
  g.fillText(max.toFixed(1) + "/s", 4, 12);
  g.strokeStyle = "#2f6feb";
  g.lineWidth = 2;
  g.beginPath();
  const step = c.width / (CHART_POINTS - 1);
  state.rates.forEach((r, i) => {
    const x = (CHART_POINTS - state.rates.length + i) * step;
    const y = c.height - 4 - (r / max) * (c.height - 20);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

function signIn(token) {
  state.token = token;
  sessionStorage.setItem("chat-console-token", token);
  $("sign-out").hidden = false;
  clearInterval(state.timer);
  state.timer = setInterval(poll, POLL_MS);
  poll();
}

function signOut(clearStatus) {
  clearInterval(state.timer);
  state.timer = null;
  state.token = "";
  sessionStorage.removeItem("chat-console-token");
  $("sign-out").hidden = true;
  $("overview").hidden = true;
  if (clearStatus) setStatus("Not signed in.");
}

// ---------------------------------------------------------------- try it

function log(kind, text) {
  const line = document.createElement("div");
  line.className = kind;
  const arrow = { out: "→ ", in: "← ", note: "· " }[kind];
  line.textContent = arrow + text;
  const pre = $("try-log");
  pre.appendChild(line);
  pre.scrollTop = pre.scrollHeight;
}

function currentDialect() {
  return state.dialects.find((d) => d.name === $("try-dialect").value);
}

function fill(text) {
  const token = $("try-token").value || state.token;
  return text.replaceAll("{{token}}", token).replaceAll("{{room}}", $("try-room").value || "1");
}

function showSamples() {
  const d = currentDialect();
  const sel = $("try-sample");
  sel.replaceChildren();
  for (const s of d ? d.samples : []) {
    const o = document.createElement("option");
    o.value = s.frame;
    o.textContent = s.label;
    sel.appendChild(o);
  }
  $("try-frame").value = sel.value ? fill(sel.value) : "";
}

function base(d, scheme) {
  const host = d.addr ? d.addr : location.host;
  const secure = location.protocol === "https:";
  return (scheme === "ws" ? (secure ? "wss://" : "ws://") : (secure ? "https://" : "http://")) + host;
}

function setConnected(open, label) {
  $("try-state").textContent = label;
  $("try-send").disabled = !open;
  $("try-disconnect").disabled = !state.conn;
  $("try-connect").disabled = !!state.conn;
}

function connect() {
  const d = currentDialect();
  if (!d) return;
  const token = $("try-token").value || state.token;
  if (d.transport === "socket.io") {
    if (typeof io !== "function") {
      log("note", window.CHAT_CONSOLE_NO_SOCKET_IO || "socket.io-client is not loaded");
      return;
    }
    const socket = io(base(d, "http") + (d.namespace || "/"), {
      path: d.path.replace(/\/?$/, "/"),
      transports: ["websocket"],
      auth: { token },
      reconnection: false,
    });
    state.conn = {
      kind: "socket.io",
      send(text) {
        let frame;
        try { frame = JSON.parse(text); } catch (e) { log("note", "not JSON: " + e.message); return; }
        if (!Array.isArray(frame) || typeof frame[0] !== "string") {
          log("note", 'a Socket.IO frame here is ["event", argument]');
          return;
        }
        log("out", text);
        socket.timeout(5000).emit(frame[0], frame[1], (err, reply) => {
          if (err) log("note", frame[0] + ": no ack within 5 s");
          else log("in", "ack " + frame[0] + " " + JSON.stringify(reply));
        });
      },
      close() { socket.disconnect(); },
    };
    socket.on("connect", () => { log("note", "connected to " + d.name); setConnected(true, "open"); });
    socket.on("connect_error", (e) => { log("note", "connect error: " + e.message); state.conn = null; setConnected(false, "refused"); });
    socket.on("disconnect", (why) => { log("note", "disconnected: " + why); state.conn = null; setConnected(false, "closed"); });
    socket.onAny((event, ...args) => log("in", event + " " + JSON.stringify(args.length === 1 ? args[0] : args)));
  } else {
    const ws = new WebSocket(base(d, "ws") + d.path + "?token=" + encodeURIComponent(token));
    state.conn = {
      kind: "websocket",
      send(text) { log("out", text); ws.send(text); },
      close() { ws.close(); },
    };
    ws.onopen = () => { log("note", "connected to " + d.name); setConnected(true, "open"); };
    ws.onmessage = (m) => log("in", String(m.data));
    ws.onclose = (e) => {
      log("note", "closed" + (e.code ? " (" + e.code + (e.reason ? " " + e.reason : "") + ")" : ""));
      state.conn = null;
      setConnected(false, "closed");
    };
  }
  setConnected(false, "connecting");
}

async function loadDialects() {
  const res = await fetch("/console/api/dialects");
  const body = await res.json();
  state.dialects = body.dialects;
  const sel = $("try-dialect");
  sel.replaceChildren();
  for (const d of state.dialects) {
    const o = document.createElement("option");
    o.value = d.name;
    o.textContent = `${d.name} (${d.transport} ${d.path})`;
    sel.appendChild(o);
  }
  showSamples();
}

// ---------------------------------------------------------------- wiring

$("sign-in-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("token").value.trim();
  if (t) signIn(t);
});
$("sign-out").addEventListener("click", () => signOut(true));
$("try-dialect").addEventListener("change", () => {
  if (state.conn) state.conn.close();
  showSamples();
});
$("try-sample").addEventListener("change", () => { $("try-frame").value = fill($("try-sample").value); });
$("try-room").addEventListener("change", () => { $("try-frame").value = fill($("try-sample").value); });
$("try-connect").addEventListener("click", connect);
$("try-disconnect").addEventListener("click", () => state.conn && state.conn.close());
$("try-send").addEventListener("click", () => state.conn && state.conn.send($("try-frame").value));

loadDialects().catch((e) => log("note", "cannot list the dialects: " + e));
if (state.token) signIn(state.token);
