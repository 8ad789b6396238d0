// Drives the gateway's /console in a real Chromium (playwright-core, Debian's
// chromium): signs in with an admin token, waits for a connection the Rust test
// opened to appear, then sends a message from the "try it" pane in two dialects
// (one plain WebSocket, one Socket.IO) and saves a screenshot. The Rust test
// (crates/gateway/tests/console.rs) checks that its WebSocket client received them.
//
// Input (environment): CONSOLE_URL, ADMIN_TOKEN, USER_TOKEN, ROOM, RECEIVER (username),
// WATCH_DIALECT (whose open count must reach 1), WS_DIALECT, SIO_DIALECT,
// SCREENSHOT (path), CHROMIUM (executable). Prints one JSON line; exits 1 on failure.
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const TIMEOUT = 15000;

async function sendFrom(page, dialect, frame, expect) {
  await page.selectOption("#try-dialect", dialect);
  await page.fill("#try-token", env("USER_TOKEN"));
  await page.fill("#try-room", env("ROOM"));
  await page.click("#try-connect");
  await page.waitForFunction(() => document.getElementById("try-state").textContent === "open", null, { timeout: TIMEOUT });
  await page.fill("#try-frame", frame);
  await page.click("#try-send");
  // The dialect's own answer (not an error) comes back into the log.
  await page.waitForFunction(
    (want) => [...document.querySelectorAll("#try-log .in")].some(
      (l) => want.every((w) => l.textContent.includes(w)) && !l.textContent.includes('"error"'),
    ),
    expect,
    { timeout: TIMEOUT },
  );
  await page.click("#try-disconnect");
  await page.waitForFunction(() => document.getElementById("try-state").textContent === "closed", null, { timeout: TIMEOUT });
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
// Playwright's own polling evaluates code, which the console's CSP (rightly) forbids
// the page itself; bypassing it applies to the test's helpers only.
const page = await browser.newPage({ viewport: { width: 1200, height: 1400 }, bypassCSP: true });
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });
try {
  await page.goto(env("CONSOLE_URL"));
  await page.fill("#token", env("ADMIN_TOKEN"));
  await page.click("#sign-in");
  // The connection the test client holds shows up in its dialect's row.
  const watch = env("WATCH_DIALECT");
  await page.waitForFunction(
    (d) => document.querySelector(`#dialect-${d} .open`)?.textContent === "1",
    watch,
    { timeout: TIMEOUT },
  );
  // ...and its user is shown online in the room.
  await page.waitForSelector(`#room-${env("ROOM")} .online`, { timeout: TIMEOUT });

  const room = Number(env("ROOM"));
  const receiver = env("RECEIVER");
  const wsText = "from the browser over " + env("WS_DIALECT");
  await sendFrom(
    page,
    env("WS_DIALECT"),
    JSON.stringify({ method: "send_message", args: { chat: room, text: wsText }, event_response_key: 7 }),
    ["message_created", wsText],
  );
  const sioText = "from the browser over " + env("SIO_DIALECT");
  await sendFrom(
    page,
    env("SIO_DIALECT"),
    JSON.stringify(["send-message", { user: receiver, message: sioText }]),
    ["ack send-message", sioText],
  );
  // Let the figures catch up with the two messages before the screenshot.
  await page.waitForFunction(() => Number(document.getElementById("messages").textContent) >= 2, null, { timeout: TIMEOUT });
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
  if (problems.length) throw new Error(problems.join("; "));
  console.log(JSON.stringify({ ok: true, sent: [wsText, sioText] }));
  await browser.close();
} catch (e) {
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true }).catch(() => {});
  const log = await page.textContent("#try-log").catch(() => "");
  console.log(JSON.stringify({ ok: false, error: String(e), problems, log }));
  await browser.close();
  process.exit(1);
}
