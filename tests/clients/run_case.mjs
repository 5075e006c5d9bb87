// Runs one shared case (JSON on stdin) against lucent-ws.js and prints what it observed,
// in the shape tests/clients/runner.py gives for the Python client.
// Usage: node run_case.mjs PATH/TO/lucent-ws.js WS_URL < case.json
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [modulePath, url] = process.argv.slice(2);
const { Client, ClientError, RequestFailed } = await import(pathToFileURL(modulePath).href);
const testCase = JSON.parse(readFileSync(0, "utf8"));
const settings = testCase.client || {};
const tokens = [...(settings.tokens || [])];
const backoff = settings.backoff || { base: 0.02, cap: 0.05 };
const ms = (s) => (s === undefined || s === null ? undefined : s * 1000);

const EVENT_FIELDS = {
  connected: [],
  disconnected: ["code"],
  closed: ["code"],
  recovered: ["room", "recovered", "missed", "reason"],
  left: ["room", "reason"],
};
const events = [];
let recording = true;
const client = new Client(url, {
  getToken: "tokens" in settings ? async () => tokens.shift() ?? null : undefined,
  backoff: { base: ms(backoff.base), cap: ms(backoff.cap) },
  requestTimeout: ms(settings.request_timeout ?? 2),
  onEvent: (event) => {
    if (recording) events.push(event);
  },
});
const messages = [];
const results = [];
const pumps = [];
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
async function until(condition, timeout) {
  const deadline = Date.now() + timeout * 1000;
  while (!condition() && Date.now() < deadline) await sleep(0.005);
}
function errorOf(err) {
  const out = { error: err.constructor.name };
  if (err instanceof RequestFailed) out.code = err.code;
  return out;
}

client.start();
for (const action of testCase.actions) {
  const { do: what } = action;
  try {
    if (what === "join") {
      const room = await client.join(action.room, { presence: action.presence || false });
      pumps.push((async () => {
        for await (const msg of room) messages.push({ room: msg.room, payload: msg.payload });
      })());
      results.push({ do: what, ok: true });
    } else if (what === "publish") {
      const ack = await client.rooms
        .get(action.room)
        .publish(action.payload, { id: action.id, timeout: ms(action.timeout) });
      results.push({ do: what, ok: true, delivered: ack.delivered, duplicate: ack.duplicate });
    } else if (what === "request") {
      const data = await client.request(action.type, action.data || {}, { timeout: ms(action.timeout) });
      results.push({ do: what, ok: true, data });
    } else if (what === "presence") {
      const p = client.rooms.get(action.room).presence;
      results.push({ do: what, count: p.count, keys: Object.keys(p.members).sort() });
    } else if (what === "wait_messages") {
      await until(() => messages.length >= action.count, 5);
    } else if (what === "wait_event") {
      await until(() => events.filter((e) => e.kind === action.kind).length >= action.count, 5);
    } else if (what === "sleep") {
      await sleep(action.seconds);
    }
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    results.push({ do: what, ...errorOf(err) });
  }
}
recording = false;
const state = client.state;
client.close();
await Promise.all(pumps);
const observed = [];
for (const event of events) {
  const fields = EVENT_FIELDS[event.kind];
  if (!fields) continue;
  const e = { kind: event.kind };
  for (const f of fields) e[f] = event[f] ?? null;
  observed.push(e);
}
process.stdout.write(JSON.stringify({ events: observed, messages, results, state }) + "\n");
