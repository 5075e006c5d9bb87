// Type declarations of lucent-ws.js, the lucent_ws hub's JavaScript client (protocol v2).

export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface Message {
  room: string | null;
  payload: JSONValue;
  from: string | null;
  offset: number | null;
  epoch: string | null;
  replay: boolean;
}

export interface Ack {
  id: string;
  delivered: number;
  offset: number | null;
  epoch: string | null;
  duplicate: boolean;
}

export interface PresenceEntry {
  id: string;
  info?: { [key: string]: JSONValue };
}

export interface Presence {
  count: number;
  members: { [key: string]: PresenceEntry[] };
}

export type EventKind = "connecting" | "connected" | "disconnected" | "recovered" | "left" | "closed";

export interface ClientEvent {
  kind: EventKind;
  /** disconnected / closed: the close code (1006 without a close frame) or HTTP status. */
  code?: number;
  /** connecting: the delay (ms) before this attempt, and the attempt counter. */
  delay?: number;
  attempt?: number;
  /** connected: the connection id and the URL it reached. */
  id?: string | null;
  url?: string | null;
  /**
   * recovered (after a re-join with `since`, or a server `resync`) / left: the room;
   * recovered false means the missed messages are lost (refetch), `reason` says why.
   */
  room?: string;
  recovered?: boolean;
  missed?: number;
  reason?: string | null;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface ClientOptions {
  /** A bearer token (sent as the `bearer` subprotocol), asked again once after 401/403/1008. */
  getToken?: () => string | null | Promise<string | null>;
  /** The WebSocket constructor; globalThis.WebSocket by default. */
  WebSocket?: typeof WebSocket;
  /** Default request timeout, ms (5000). */
  requestTimeout?: number;
  /** Time allowed for the handshake and greeting, ms (10000). */
  connectTimeout?: number;
  /** Full-jitter backoff, ms: uniform(0, min(cap, base * 2^attempt)); reset after resetAfter up. */
  backoff?: { base?: number; cap?: number; resetAfter?: number };
  /** Where room positions are kept across page reloads, e.g. sessionStorage. */
  storage?: StorageLike | null;
  /** A source of uniform numbers in [0, 1). */
  random?: () => number;
  /** Receives every event. */
  onEvent?: (event: ClientEvent) => void;
  /** The storage key of the room positions (default: "lucent-ws:" + the first URL). */
  storageKey?: string;
}

/** A hub URL, the cluster's node URLs (failover in turn), or a function asked per attempt. */
export type UrlSource = string | string[] | (() => string | Promise<string>);

export declare function isFinal(code: number): boolean;
export declare function backoffWindow(attempt: number, base?: number, cap?: number): number;

export declare class ClientError extends Error {
  code: string | number | null;
  publishId: string | null;
}
export declare class RequestFailed extends ClientError {}
export declare class RequestTimeout extends ClientError {}
export declare class Disconnected extends ClientError {}
export declare class ConnectionClosed extends ClientError {}

export declare class Stream implements AsyncIterableIterator<Message> {
  readonly ended: boolean;
  next(): Promise<IteratorResult<Message>>;
  [Symbol.asyncIterator](): AsyncIterableIterator<Message>;
}

export declare class Room extends Stream {
  readonly name: string;
  readonly epoch: string | null;
  readonly offset: number | null;
  readonly presence: Presence;
  readonly joined: boolean;
  since(): { offset: number; epoch: string } | null;
  publish(payload: JSONValue, options?: { timeout?: number; id?: string }): Promise<Ack>;
  history(options?: {
    since?: { offset: number; epoch: string };
    limit?: number;
    timeout?: number;
  }): Promise<{ [key: string]: JSONValue }>;
  refreshPresence(options?: { timeout?: number }): Promise<Presence>;
  leave(options?: { timeout?: number }): Promise<void>;
}

export declare class Client {
  constructor(url: UrlSource, options?: ClientOptions);
  /** The URL of the current (or last) connection attempt. */
  readonly url: string | null;
  /** The URLs of a string or list source, as v2 WebSocket URLs. */
  readonly urls: string[];
  readonly id: string | null;
  readonly state: "idle" | "connecting" | "connected" | "closed";
  readonly closeCode: number | null;
  readonly rooms: Map<string, Room>;
  /** Messages sent to this connection alone. */
  readonly direct: Stream;
  on(kind: EventKind | "event", listener: (event: ClientEvent) => void): () => void;
  start(): this;
  close(): void;
  join(room: string, options?: { presence?: boolean; timeout?: number }): Promise<Room>;
  leave(room: string, options?: { timeout?: number }): Promise<void>;
  request(type: string, data?: { [key: string]: JSONValue }, options?: { timeout?: number }): Promise<JSONValue>;
}
