// Prints the delays lucent-ws.js samples while it keeps failing to connect to a closed port:
// one JSON line [[delay_ms, attempt], ...]. Usage: node backoff_samples.mjs LUCENT_WS_JS URL COUNT
import { pathToFileURL } from "node:url";

const [modulePath, url, count] = process.argv.slice(2);
const { Client } = await import(pathToFileURL(modulePath).href);
const samples = [];
await new Promise((resolve) => {
  const client = new Client(url, {
    backoff: { base: 0.5, cap: 4 },
    onEvent: (e) => {
      if (e.kind !== "connecting" || !e.attempt) return;
      samples.push([e.delay, e.attempt - 1]);
      if (samples.length >= Number(count)) {
        client.close();
        resolve();
      }
    },
  });
  client.start();
});
process.stdout.write(JSON.stringify(samples) + "\n");
