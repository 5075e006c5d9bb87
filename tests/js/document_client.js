// The browser client code of the original Lucent WebSockets document, run unchanged
// by Node's built-in WebSocket against a lucent_ws hub (see tests/test_browser_client.py).
//
// The two blocks between the "verbatim" markers are the document's "Client-Side Usage"
// and "Client-side pong handler" examples, character for character (each in its own
// block because both declare `const ws`). The scaffolding around them only:
//   - points the document's URL, ws://localhost:3000/ws, at the hub under test ($HUB_URL);
//   - prints every opened/received/closed event and every console.log call to stdout,
//     one JSON object per line.
"use strict";

const HUB_URL = process.env.HUB_URL;
const emit = (record) => process.stdout.write(JSON.stringify(record) + "\n");
let clients = 0;

class WebSocket extends globalThis.WebSocket {
  constructor(url, protocols) {
    super(url === "ws://localhost:3000/ws" ? HUB_URL : url, protocols);
    const client = clients++;
    this.addEventListener("open", () => emit({ client, event: "open" }));
    this.addEventListener("message", (event) =>
      emit({ client, event: "message", data: JSON.parse(event.data) }),
    );
    this.addEventListener("close", (event) => emit({ client, event: "close", code: event.code }));
    this.addEventListener("error", () => emit({ client, event: "error" }));
  }
}

console.log = (...args) => emit({ event: "log", args });

// ---- client 0: "Client-Side Usage", verbatim ----
{
const ws = new WebSocket("ws://localhost:3000/ws");
ws.onopen = () => {
// Join a room to receive targeted broadcasts
ws.send(JSON.stringify({ type: "join", room: "posts" }));
};
ws.onmessage = (event) => {
const msg = JSON.parse(event.data);
switch (msg.type) {
case "ping":
// Acknowledge the server heartbeat — keeps the connection alive
ws.send(JSON.stringify({ type: "pong" }));
break;
case "post:created":
console.log("New post:", msg.doc);
break;
case "post:updated":
console.log("Updated post:", msg.doc);
break;
}
};
}
// ---- end of "Client-Side Usage" ----

// ---- client 1: "Client-side pong handler", verbatim ----
{
const ws = new WebSocket("ws://localhost:3000/ws");
ws.onmessage = (event) => {
const msg = JSON.parse(event.data);
if (msg.type === "ping") {
// Acknowledge the heartbeat
ws.send(JSON.stringify({ type: "pong" }));
return;
}
// Handle your application messages
};
}
// ---- end of "Client-side pong handler" ----
