// lucent-ws.js: the official JavaScript client of the lucent_ws hub (protocol v2).
// One ES module, no dependencies, no build step; browsers and Node 20+.
// Served by the hub at `{path}/client.js`; types in lucent-ws.d.ts. Behaviour: SPEC section 11.
//
//   import { Client } from "/ws/client.js";
//   const client = new Client("ws://127.0.0.1:8080/ws", { getToken: async () => token });
//   const room = await client.join("chat:1");
//   for await (const msg of room) console.log(msg.payload);

const ABNORMAL = 1006;
const FINAL_CLOSE_CODES = new Set([1008, 4001]);
const FINAL_STATUSES = new Set([400, 401, 403]);
const AUTH_CLASS = new Set([1008, 401, 403]);

/** True when a close code or handshake status ends the client instead of a reconnect. */
export function isFinal(code) {
  return FINAL_CLOSE_CODES.has(code) || FINAL_STATUSES.has(code);
}

/** The upper bound (ms) of the full-jitter delay before `attempt`. */
export function backoffWindow(attempt, base = 500, cap = 20000) {
  return Math.min(cap, base * 2 ** Math.min(attempt, 64));
}

export class ClientError extends Error {
  constructor(message, { code = null, publishId = null } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.publishId = publishId;
  }
}
/** The server answered a request with an error; `code` is its code. */
export class RequestFailed extends ClientError {}
/** No answer within the request's timeout. */
export class RequestTimeout extends ClientError {}
/** The connection dropped (or was not up) before the answer; never resent. */
export class Disconnected extends ClientError {}
/** The client stopped for good; `code` is the close code or HTTP status. */
export class ConnectionClosed extends ClientError {}

/** Messages in arrival order: `for await (const msg of stream)` ends when it closes. */
export class Stream {
  constructor() {
    this._buffer = [];
    this._waiters = [];
    this.ended = false;
  }
  _put(message) {
    if (this.ended) return;
    const waiter = this._waiters.shift();
    if (waiter) waiter({ value: message, done: false });
    else this._buffer.push(message);
  }
  _end() {
    if (this.ended) return;
    this.ended = true;
    for (const waiter of this._waiters.splice(0)) waiter({ value: undefined, done: true });
  }
  next() {
    if (this._buffer.length) return Promise.resolve({ value: this._buffer.shift(), done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this._waiters.push(resolve));
  }
  [Symbol.asyncIterator]() {
    return this;
  }
}

const isOffset = (v) => Number.isInteger(v) && v >= 0;

/** A joined room; re-joined with `since` after every reconnect. */
export class Room extends Stream {
  constructor(client, name, { presence = false } = {}) {
    super();
    this._client = client;
    this.name = name;
    this.epoch = null;
    this.offset = null;
    this.presence = { count: 0, members: {} };
    this.wantsPresence = presence;
    this.joined = false;
    this._askedSince = false;
    this._everJoined = false;
  }
  since() {
    return this.epoch !== null && this.offset !== null ? { offset: this.offset, epoch: this.epoch } : null;
  }
  _onJoined(frame) {
    const asked = this._askedSince;
    const recovered = frame.recovered === true;
    if (!(asked && recovered) && typeof frame.epoch === "string" && isOffset(frame.offset)) {
      this.epoch = frame.epoch;
      this.offset = frame.offset;
    }
    this.joined = this._everJoined = true;
    if (!asked) return null;
    return {
      room: this.name,
      recovered,
      missed: isOffset(frame.missed) ? frame.missed : 0,
      reason: typeof frame.reason === "string" ? frame.reason : null,
    };
  }
  /** A `resync`: the server cannot continue from our position; take the new one. */
  _onResync(frame) {
    if (typeof frame.epoch === "string" && isOffset(frame.offset)) {
      this.epoch = frame.epoch;
      this.offset = frame.offset;
    }
    return {
      room: this.name,
      recovered: false,
      missed: 0,
      reason: typeof frame.reason === "string" ? frame.reason : "resync",
    };
  }
  /** Record a message's position; false for one already delivered. */
  _accept(epoch, offset) {
    if (typeof epoch !== "string" || !isOffset(offset)) return true;
    if (epoch === this.epoch && this.offset !== null && offset <= this.offset) return false;
    this.epoch = epoch;
    this.offset = offset;
    return true;
  }
  _presenceReset(frame) {
    const members = {};
    for (const [key, entries] of Object.entries(frame.members || {})) {
      if (Array.isArray(entries)) members[key] = entries.filter((e) => e && typeof e === "object");
    }
    this.presence = { count: countOf(frame, members), members };
  }
  _presenceApply(frame) {
    const members = this.presence.members;
    for (const [key, entries] of Object.entries(frame.leaves || {})) {
      const gone = new Set((entries || []).map((e) => e && e.id));
      const kept = (members[key] || []).filter((e) => !gone.has(e.id));
      if (kept.length) members[key] = kept;
      else delete members[key];
    }
    for (const [key, entries] of Object.entries(frame.joins || {})) {
      const current = (members[key] = members[key] || []);
      const known = new Set(current.map((e) => e.id));
      for (const e of entries || []) if (e && typeof e === "object" && !known.has(e.id)) current.push(e);
    }
    this.presence = { count: countOf(frame, members), members };
  }
  /** Publish `payload`; resolves to the ack `{id, delivered, offset, epoch, duplicate}`. */
  async publish(payload, { timeout, id } = {}) {
    const publishId = id || randomId();
    const reply = await this._client._call(
      { type: "broadcast", room: this.name, payload, id: publishId },
      timeout,
      publishId,
    );
    return {
      id: publishId,
      delivered: Number.isInteger(reply.delivered) ? reply.delivered : 0,
      offset: Number.isInteger(reply.offset) ? reply.offset : null,
      epoch: typeof reply.epoch === "string" ? reply.epoch : null,
      duplicate: reply.duplicate === true,
    };
  }
  /** The server's `history` answer for this room. */
  history({ since, limit, timeout } = {}) {
    const frame = { type: "history", room: this.name };
    if (since) frame.since = since;
    if (limit !== undefined) frame.limit = limit;
    return this._client._call(frame, timeout);
  }
  /** Fetch the full presence (rejects with RequestFailed `presence_disabled` where off). */
  async refreshPresence({ timeout } = {}) {
    await this._client._call({ type: "presence", room: this.name }, timeout);
    return this.presence; // the client applied the answer in arrival order
  }
  /** Leave: no re-join any more, and iteration ends. */
  leave(options) {
    return this._client.leave(this.name, options);
  }
}

function countOf(frame, members) {
  return isOffset(frame.count) ? frame.count : Object.values(members).reduce((n, v) => n + v.length, 0);
}

function randomId() {
  const c = globalThis.crypto;
  if (c && c.randomUUID) return c.randomUUID().replaceAll("-", "");
  return Math.random().toString(16).slice(2) + Date.now().toString(16);
}

/** A hub URL as a v2 WebSocket URL (relative URLs resolve against the page). */
function v2Url(url) {
  const u = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  u.searchParams.set("v", "2");
  return u.toString();
}

/**
 * A protocol v2 client that stays connected.
 * `url`: the hub's URL, an array of the cluster's node URLs (each attempt after a failure or a
 * lost connection goes to the next one: failover when a node dies), or a function (sync or
 * async) returning the URL to try, asked before every attempt.
 * Options: getToken (sync or async; sent as the `bearer` subprotocol), WebSocket (constructor,
 * default globalThis.WebSocket), requestTimeout / connectTimeout (ms), backoff {base, cap,
 * resetAfter} (ms), storage (e.g. sessionStorage: room positions survive a reload),
 * random (() => [0, 1)), onEvent (every event), storageKey (default: from the first URL).
 */
export class Client {
  constructor(url, options = {}) {
    this._urlSource = typeof url === "function" ? url : null;
    this.urls = this._urlSource ? [] : (Array.isArray(url) ? url : [url]).map(v2Url);
    if (!this._urlSource && !this.urls.length) throw new TypeError("the client needs at least one URL");
    this._nextUrl = 0;
    /** The URL of the current (or last) connection attempt. */
    this.url = this.urls[0] ?? null;
    this.options = options;
    this.requestTimeout = options.requestTimeout ?? 5000;
    this.connectTimeout = options.connectTimeout ?? 10000;
    const b = options.backoff || {};
    this.backoff = { base: b.base ?? 500, cap: b.cap ?? 20000, resetAfter: b.resetAfter ?? 10000, attempt: 0 };
    this.random = options.random || Math.random;
    this.rooms = new Map();
    this.direct = new Stream();
    this.id = null;
    this.state = "idle";
    this.closeCode = null;
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._storage = options.storage || null;
    this._storageKey = options.storageKey ?? "lucent-ws:" + (this.url ?? "");
    this._listeners = new Map();
    this._ref = 0;
    this._pending = new Map();
    this._ws = null;
    this._token = null;
    this._freshTokenAsked = false;
    this._readyWaiters = [];
    this._timer = null;
    this._wakeAt = 0;
    this._watchdog = null;
    this._hint = null;
    this._retries = new Set();
    if (options.onEvent) this.on("event", options.onEvent);
    this._onWake = () => this._wake();
    this._onVisible = () => {
      if (!globalThis.document || globalThis.document.visibilityState === "visible") this._wake();
    };
  }

  /** `on(kind, fn)`: kind is connecting, connected, disconnected, recovered, left, closed or event. */
  on(kind, fn) {
    if (!this._listeners.has(kind)) this._listeners.set(kind, new Set());
    this._listeners.get(kind).add(fn);
    return () => this._listeners.get(kind).delete(fn);
  }

  /** Start connecting (join and request do it too). */
  start() {
    if (this.state !== "idle") return this;
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onWake);
      globalThis.addEventListener("visibilitychange", this._onVisible);
    }
    this._attempt(0);
    return this;
  }

  /** Close (1000) and stop for good. */
  close() {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(1000);
      } catch {}
    }
    this._finish(1000, "closed by the application");
  }

  /** Join `room` (re-joined after every reconnect); with `presence`, track its members. */
  async join(room, { presence = false, timeout } = {}) {
    if (this.rooms.has(room)) return this.rooms.get(room);
    const r = new Room(this, room, { presence });
    const saved = this._loadPositions()[room];
    if (saved && typeof saved.epoch === "string" && isOffset(saved.offset)) {
      r.epoch = saved.epoch;
      r.offset = saved.offset;
    }
    this.rooms.set(room, r);
    try {
      await this._join(r, timeout);
    } catch (err) {
      if (this.rooms.get(room) === r) this.rooms.delete(room);
      r._end();
      throw err;
    }
    return r;
  }

  async leave(room, { timeout } = {}) {
    const r = this.rooms.get(room);
    if (!r) return;
    this.rooms.delete(room);
    r._end();
    this._savePositions();
    if (this._ws) await this._call({ type: "leave", room }, timeout);
  }

  /** Send an application message (`@hub.message(type)`); resolves to its reply's `data`. */
  async request(type, data = {}, { timeout } = {}) {
    const reply = await this._call({ ...data, type }, timeout);
    return reply.data;
  }

  async _join(room, timeout) {
    const frame = { type: "join", room: room.name };
    const since = room.since();
    if (since) frame.since = since;
    room._askedSince = since !== null;
    await this._call(frame, timeout);
    if (room.wantsPresence) {
      try {
        await room.refreshPresence({ timeout });
      } catch (err) {
        if (!(err instanceof RequestFailed)) throw err;
      }
    }
  }

  async _call(frame, timeout, publishId = null) {
    const limit = timeout ?? this.requestTimeout;
    const deadline = Date.now() + limit;
    await this._untilReady(limit, publishId);
    const ws = this._ws;
    const ref = ++this._ref;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(ref);
        reject(new RequestTimeout(`no answer to '${frame.type}' within ${limit} ms`, { publishId }));
      }, Math.max(0, deadline - Date.now()));
      this._pending.set(ref, { resolve, reject, timer, publishId });
      try {
        ws.send(JSON.stringify({ ...frame, ref }));
      } catch (err) {
        this._settle(ref, new Disconnected(`send failed: ${err}`, { publishId }));
      }
    });
  }

  _settle(ref, error, value) {
    const p = this._pending.get(ref);
    if (!p) return;
    this._pending.delete(ref);
    clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(value);
  }

  _untilReady(limit, publishId) {
    if (this.state === "connected") return Promise.resolve();
    if (this.state === "closed") return Promise.reject(new ConnectionClosed("the client is closed", { code: this.closeCode }));
    this.start();
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        this._readyWaiters = this._readyWaiters.filter((w) => w !== waiter);
        reject(new RequestTimeout(`not connected within ${limit} ms`, { publishId }));
      }, limit);
      this._readyWaiters.push(waiter);
    });
  }

  _releaseWaiters(error) {
    for (const w of this._readyWaiters.splice(0)) {
      clearTimeout(w.timer);
      if (error) w.reject(error);
      else w.resolve();
    }
  }

  // --- the connection loop -------------------------------------------------------------

  _attempt(delay) {
    this.state = "connecting";
    this._emit({ kind: "connecting", delay, attempt: this.backoff.attempt });
    this._wakeAt = Date.now() + delay;
    this._timer = setTimeout(() => {
      this._timer = null;
      this._open().catch(() => this._lost(ABNORMAL));
    }, delay);
  }

  /** `online` or a page made visible: reconnect early, still jittered (within 1 s). */
  _wake() {
    if (this._timer === null || this.state !== "connecting") return;
    const remaining = this._wakeAt - Date.now();
    if (remaining <= 1000) return;
    clearTimeout(this._timer);
    this._timer = null;
    this._attempt(this.random() * 1000);
  }

  async _open() {
    if (this._token === null && this.options.getToken) this._token = (await this.options.getToken()) ?? null;
    if (this.state !== "connecting") return;
    this.url = this._urlSource
      ? v2Url(await this._urlSource())
      : this.urls[this._nextUrl % this.urls.length];
    if (this.state !== "connecting") return;
    const protocols = this._token ? ["bearer", this._token] : undefined;
    const ws = new this._WebSocket(this.url, protocols);
    this._ws = ws;
    let hello = false;
    const started = Date.now();
    const giveUp = setTimeout(() => {
      if (!hello && this._ws === ws) this._drop(ws, ABNORMAL);
    }, this.connectTimeout);
    ws._lucent = {
      message: (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!frame || typeof frame !== "object") return;
        this._feed(ws);
        if (!hello) {
          if (frame.type !== "connected") return;
          hello = true;
          clearTimeout(giveUp);
          this._connected(ws, frame, started);
          return;
        }
        this._onFrame(ws, frame);
      },
      close: (event) => {
        clearTimeout(giveUp);
        if (this._ws !== ws) return;
        this._detach(ws);
        this._ws = null;
        if (!hello) this._refused();
        else this._lost(event.code || ABNORMAL, Date.now() - this._upSince);
      },
    };
    // Node's WebSocket fires only "error" for a refused handshake; browsers fire both.
    ws._lucent.error = () => setTimeout(() => ws._lucent.close({ code: ABNORMAL }), 0);
    ws.addEventListener("message", ws._lucent.message);
    ws.addEventListener("close", ws._lucent.close);
    ws.addEventListener("error", ws._lucent.error);
  }

  _detach(ws) {
    if (ws._lucent) {
      ws.removeEventListener("message", ws._lucent.message);
      ws.removeEventListener("close", ws._lucent.close);
      ws.removeEventListener("error", ws._lucent.error);
    }
    clearTimeout(this._watchdog);
    this._watchdog = null;
    for (const timer of this._retries) clearTimeout(timer);
    this._retries.clear();
  }

  /** Close a socket we gave up on and handle the loss at once. */
  _drop(ws, code) {
    this._detach(ws);
    this._ws = null;
    try {
      ws.close();
    } catch {}
    this._lost(code, this.state === "connected" ? Date.now() - this._upSince : 0);
  }

  /** A handshake failed before opening: browsers hide the HTTP status, so ask with a GET. */
  async _refused() {
    let status = ABNORMAL;
    if (typeof fetch === "function") {
      try {
        const headers = this._token ? { Authorization: `Bearer ${this._token}` } : {};
        const probe = await fetch(this.url.replace(/^ws/, "http"), { headers, cache: "no-store" });
        if (FINAL_STATUSES.has(probe.status) || probe.status === 503) status = probe.status;
      } catch {}
    }
    if (this.state === "connecting") this._lost(status, 0);
  }

  _connected(ws, frame, started) {
    this.id = typeof frame.id === "string" ? frame.id : null;
    this._freshTokenAsked = false;
    this._upSince = started;
    const hb = frame.heartbeat;
    this._watchdogMs = hb && typeof hb === "object" ? ((hb.interval ?? 30) + (hb.timeout ?? 10)) * 1000 : null;
    this._feed(ws);
    this.state = "connected";
    this._emit({ kind: "connected", id: this.id, url: this.url });
    this._releaseWaiters(null);
    // Rooms never joined yet are being joined by their own join() call.
    for (const room of [...this.rooms.values()].filter((r) => r._everJoined)) this._rejoin(ws, room, 0);
  }

  _rejoin(ws, room, attempt) {
    this._join(room).catch((err) => {
      if (!(err instanceof RequestFailed) || this.rooms.get(room.name) !== room) return;
      if (err.code === "unavailable") {
        // The hub cannot serve the room's history now: keep the room, ask again later.
        const delay = this.random() * backoffWindow(attempt, this.backoff.base, this.backoff.cap);
        const timer = setTimeout(() => {
          this._retries.delete(timer);
          if (this._ws === ws && this.state === "connected") this._rejoin(ws, room, attempt + 1);
        }, delay);
        this._retries.add(timer);
        return;
      }
      this.rooms.delete(room.name);
      room._end();
      this._emit({ kind: "left", room: room.name, reason: err.code });
    });
  }

  /** The watchdog: nothing for heartbeat interval + timeout means the connection is dead. */
  _feed(ws) {
    if (!this._watchdogMs) return;
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => {
      if (this._ws === ws) this._drop(ws, ABNORMAL);
    }, this._watchdogMs);
  }

  _onFrame(ws, frame) {
    const kind = frame.type;
    if (kind === "message") this._onMessage(frame);
    else if (kind === "ping") {
      try {
        ws.send('{"type":"pong"}');
      } catch {}
    } else if (kind === "reconnect") {
      if (typeof frame.within === "number") this._hint = frame.within * 1000;
    } else if (kind === "joined" || kind === "resync") {
      const room = this.rooms.get(frame.room);
      if (room) {
        const recovery = kind === "joined" ? room._onJoined(frame) : room._onResync(frame);
        this._savePositions();
        if (recovery) this._emit({ kind: "recovered", ...recovery });
      }
    } else if (kind === "presence" || kind === "presence_diff") {
      const room = this.rooms.get(frame.room);
      if (room && kind === "presence") room._presenceReset(frame);
      else if (room) room._presenceApply(frame);
    }
    if (Number.isInteger(frame.ref) && this._pending.has(frame.ref)) {
      const p = this._pending.get(frame.ref);
      if (kind === "error") {
        const err = new RequestFailed(`${frame.code}: ${frame.message}`, { code: frame.code, publishId: p.publishId });
        this._settle(frame.ref, err);
      } else this._settle(frame.ref, null, frame);
    }
  }

  _onMessage(frame) {
    const message = {
      room: typeof frame.room === "string" ? frame.room : null,
      payload: frame.payload,
      from: typeof frame.from === "string" ? frame.from : null,
      offset: Number.isInteger(frame.offset) ? frame.offset : null,
      epoch: typeof frame.epoch === "string" ? frame.epoch : null,
      replay: frame.replay === true,
    };
    if (message.room === null) return this.direct._put(message);
    const room = this.rooms.get(message.room);
    if (room && room._accept(frame.epoch, frame.offset)) {
      room._put(message);
      if (message.offset !== null) this._savePositions();
    }
  }

  _lost(code, upFor = 0) {
    if (this.state === "closed") return;
    this.state = "connecting";
    this._nextUrl += 1; // the next attempt goes to the next node of a URL list
    for (const room of this.rooms.values()) room.joined = false;
    for (const ref of [...this._pending.keys()]) {
      const p = this._pending.get(ref);
      this._settle(ref, new Disconnected("disconnected before the answer", { publishId: p.publishId }));
    }
    if (upFor >= this.backoff.resetAfter) this.backoff.attempt = 0;
    if (AUTH_CLASS.has(code) && this.options.getToken && !this._freshTokenAsked) {
      this._freshTokenAsked = true;
      this._token = null;
      this._emit({ kind: "disconnected", code });
      return this._attempt(0);
    }
    if (isFinal(code)) return this._finish(code, FINAL_STATUSES.has(code) ? "refused" : "closed by the server");
    this._emit({ kind: "disconnected", code });
    let delay;
    if (this._hint !== null) {
      delay = this.random() * this._hint;
      this._hint = null;
    } else {
      delay = this.random() * backoffWindow(this.backoff.attempt, this.backoff.base, this.backoff.cap);
      this.backoff.attempt += 1;
    }
    this._attempt(delay);
  }

  _finish(code, reason) {
    if (this.state === "closed") return;
    this.closeCode = code;
    this.state = "closed";
    clearTimeout(this._timer);
    this._timer = null;
    clearTimeout(this._watchdog);
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onWake);
      globalThis.removeEventListener("visibilitychange", this._onVisible);
    }
    const error = new ConnectionClosed(`the client stopped: ${reason}`, { code });
    for (const ref of [...this._pending.keys()]) this._settle(ref, error);
    this._releaseWaiters(error);
    for (const room of this.rooms.values()) room._end();
    this.direct._end();
    this._emit({ kind: "closed", code, reason });
  }

  _emit(event) {
    for (const kind of [event.kind, "event"]) {
      for (const fn of this._listeners.get(kind) || []) {
        try {
          fn(event);
        } catch (err) {
          console.error("lucent-ws listener failed", err);
        }
      }
    }
  }

  _loadPositions() {
    if (!this._storage) return {};
    try {
      return JSON.parse(this._storage.getItem(this._storageKey) || "{}") || {};
    } catch {
      return {};
    }
  }

  _savePositions() {
    if (!this._storage) return;
    const saved = {};
    for (const [name, room] of this.rooms) if (room.since()) saved[name] = room.since();
    try {
      this._storage.setItem(this._storageKey, JSON.stringify(saved));
    } catch {}
  }
}
