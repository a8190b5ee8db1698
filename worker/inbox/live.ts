/**
 * Private to the inbox: its live updates. Agents' pages hold a WebSocket on the app's directory
 * object (the `KefuStore` named `dir:<appId>`, which every user's object tells about each change
 * of its conversation), accepted with the Durable Objects Hibernation API: an idle socket costs
 * nothing, and the object may sleep between changes. A socket hears which conversation changed
 * and its version, never what was written: the page reads that through the inbox's API, as the
 * agent it is signed in as.
 *
 * @module
 */

/** The path the worker hands the upgrade to the directory object on. */
export const LIVE_PATH = "/inbox/live";
/** The header that tells the object until when the agent's sign-in holds (ms), set by the worker. */
export const EXPIRES_HEADER = "x-kefu-inbox-expires";
/** The close code of a socket whose sign-in ran out: the page signs in again. */
export const CLOSE_EXPIRED = 4001;

/** A server-side WebSocket, as far as the hub uses it (workerd's). */
export interface HubSocket {
  /** Sends a text message to the page. */
  send(message: string): void;
  /** Closes the socket with a code and a reason. */
  close(code?: number, reason?: string): void;
  /** Keeps a small value with the socket, across the object's hibernation. */
  serializeAttachment(value: unknown): void;
  /** The value kept with {@link serializeAttachment}. */
  deserializeAttachment(): unknown;
}

/** The part of a Durable Object's state the hub uses (the Hibernation API). */
export interface HubState {
  /** Accepts a socket the runtime may keep while the object hibernates. */
  acceptWebSocket(socket: HubSocket, tags?: string[]): void;
  /** The sockets accepted, by tag. */
  getWebSockets(tag?: string): HubSocket[];
  /** A message the runtime answers itself, without waking the object. */
  setWebSocketAutoResponse?(pair?: unknown): void;
}

/** What a socket is told. */
export type LiveMessage =
  | { type: "ready" }
  | { type: "changed"; openId: string; version: number; purged?: true };

/** workerd's globals the hub needs, looked up where they exist (a Workers runtime). */
interface WorkerdGlobals {
  WebSocketPair: new () => Record<0 | 1, HubSocket>;
  WebSocketRequestResponsePair: new (request: string, response: string) => unknown;
}

const TAG = "inbox";

/**
 * The directory object's sockets: accepts agents' upgrades, tells them of changes, and closes
 * those whose sign-in ran out.
 *
 * @example Which requests the directory object hands to the hub
 * ```ts
 * import { LiveHub } from "./live.ts";
 * const upgrade = new Request("https://inbox.invalid/inbox/live", { headers: { upgrade: "websocket" } });
 * console.log(LiveHub.isUpgrade(upgrade), LiveHub.isUpgrade(new Request("https://inbox.invalid/inbox/live"))); // true false
 * ```
 */
export class LiveHub {
  readonly #state: HubState;
  #autoResponse = false;

  /**
   * @param state the directory object's state
   */
  constructor(state: HubState) {
    this.#state = state;
  }

  /**
   * Whether a request to the object is an agent's upgrade, handed over by the worker.
   *
   * @param request the request the object got
   * @returns whether {@link accept} should answer it
   */
  static isUpgrade(request: Request): boolean {
    return request.headers.get("upgrade")?.toLowerCase() === "websocket" &&
      new URL(request.url).pathname === LIVE_PATH;
  }

  /**
   * Accepts the upgrade (the worker checked the agent and the origin before handing it over).
   *
   * @param request the upgrade, with {@link EXPIRES_HEADER}
   * @returns the 101 answer holding the page's end of the socket
   */
  accept(request: Request): Response {
    const globals = globalThis as unknown as WorkerdGlobals;
    if (!this.#autoResponse && this.#state.setWebSocketAutoResponse !== undefined) {
      // A page's keep-alive is answered by the runtime: the object stays asleep.
      this.#state.setWebSocketAutoResponse(new globals.WebSocketRequestResponsePair("ping", "pong"));
      this.#autoResponse = true;
    }
    const expires = Number(request.headers.get(EXPIRES_HEADER));
    const pair = new globals.WebSocketPair();
    const server = pair[1];
    this.#state.acceptWebSocket(server, [TAG]);
    server.serializeAttachment({ expiresAt: Number.isFinite(expires) && expires > 0 ? expires : null });
    server.send(JSON.stringify({ type: "ready" } satisfies LiveMessage));
    return new Response(null, { status: 101, webSocket: pair[0] } as ResponseInit);
  }

  /**
   * Tells every socket that a conversation changed; closes those whose sign-in ran out.
   *
   * @param message what changed
   * @param now the object's clock, ms
   */
  broadcast(message: LiveMessage, now: number): void {
    // Called for every change of every user: with no page open, nothing more is done.
    const sockets = this.#state.getWebSockets(TAG);
    if (sockets.length === 0) return;
    const text = JSON.stringify(message);
    for (const socket of sockets) {
      try {
        const { expiresAt } = (socket.deserializeAttachment() ?? {}) as { expiresAt?: number | null };
        if (typeof expiresAt === "number" && expiresAt <= now) socket.close(CLOSE_EXPIRED, "signed out");
        else socket.send(text);
      } catch {
        // A socket closing meanwhile: the page reconnects and catches up.
      }
    }
  }

  /**
   * Ends the object's side of a socket the page closed.
   *
   * @param socket the socket
   * @param code the page's close code
   */
  static closed(socket: HubSocket, code: number): void {
    try {
      // 1005/1006 are not codes one may send.
      socket.close(code === 1005 || code === 1006 ? 1000 : code, "closed");
    } catch {
      // Already closed.
    }
  }
}
