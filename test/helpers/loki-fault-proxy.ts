import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { defaultFaultBody, type Fault, FaultInjector } from "../../loki-test-server/faults.ts";

/**
 * The faults of the Loki test server's own injector, applied here to push requests only (queries
 * always pass, so that a test can check what Loki stored): `status` answers instead of Loki for
 * the next `times` pushes, `latency` waits before forwarding, `reset` drops the connection.
 */
export type ProxyFault = Fault;

export interface LokiFaultProxy {
  /** Where clients send their requests (127.0.0.1, the proxy's port). */
  url: string;
  /** Pushes forwarded to Loki and answered 2xx since the proxy started. */
  readonly acceptedPushes: number;
  /** Pushes held back by a `latency` fault right now. */
  readonly heldPushes: number;
  setFault(fault?: ProxyFault): void;
  /** Loki down: stops listening and drops open connections (clients see "connection refused"). */
  down(): Promise<void>;
  /** Loki back: listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const PUSH_PATHS = new Set(["/loki/api/v1/push", "/api/prom/push"]);

/**
 * Starts a small HTTP proxy on 127.0.0.1 in front of `upstreamUrl` (the Loki test server or a real
 * Loki), so that outage, throttling and slow-Loki tests need no test-server internals and run
 * unchanged against any Loki.
 */
export async function startLokiFaultProxy(upstreamUrl: string): Promise<LokiFaultProxy> {
  const upstream = new URL(upstreamUrl);
  if (upstream.protocol !== "http:") {
    throw new Error(`the Loki fault proxy forwards to http:// only, not ${upstreamUrl}`);
  }
  const faults = new FaultInjector();
  const held = { count: 0 };
  const forwarder = new Forwarder(upstream);
  const listener = new Listener((req, res) => {
    void handle(req, res, { faults, forwarder, held });
  });
  const port = await listener.open(0);
  return {
    url: `http://127.0.0.1:${port}`,
    get acceptedPushes() {
      return forwarder.acceptedPushes;
    },
    get heldPushes() {
      return held.count;
    },
    setFault: (fault) => faults.set(fault),
    down: () => listener.shut(),
    up: async () => {
      await listener.open(port);
    },
    close: async () => {
      await listener.shut();
      forwarder.close();
    },
  };
}

interface ProxyState {
  faults: FaultInjector;
  forwarder: Forwarder;
  held: { count: number };
}

async function handle(req: IncomingMessage, res: ServerResponse, state: ProxyState): Promise<void> {
  const { faults, forwarder, held } = state;
  const fault = PUSH_PATHS.has(new URL(req.url ?? "/", "http://proxy").pathname) ? faults.next() : undefined;
  if (fault?.kind === "reset") {
    req.socket.destroy();
    return;
  }
  if (fault?.kind === "status") {
    req.resume();
    res.writeHead(fault.status, { "Content-Type": "text/plain; charset=utf-8" });
    res.end(fault.body ?? defaultFaultBody(fault.status));
    return;
  }
  if (fault?.kind === "latency") {
    held.count++;
    await new Promise((resolve) => setTimeout(resolve, fault.ms));
    held.count--;
  }
  // Dropped while waiting (Loki "went down"): a real Loki would never have seen this push.
  if (req.socket.destroyed) return;
  forwarder.forward(req, res);
}

/** Streams a request to Loki and Loki's answer back, headers and status unchanged. */
class Forwarder {
  readonly #upstream: URL;
  readonly #agent = new Agent({ keepAlive: true });
  acceptedPushes = 0;

  constructor(upstream: URL) {
    this.#upstream = upstream;
  }

  forward(req: IncomingMessage, res: ServerResponse): void {
    const isPush = PUSH_PATHS.has(new URL(req.url ?? "/", "http://proxy").pathname);
    const outgoing = request(
      {
        agent: this.#agent,
        hostname: this.#upstream.hostname,
        port: this.#upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.#upstream.host },
      },
      (answer) => {
        if (isPush && (answer.statusCode ?? 0) < 300) this.acceptedPushes++;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    // Loki itself unreachable behind the proxy: the client must see a failed connection too.
    outgoing.on("error", () => req.socket.destroy());
    req.pipe(outgoing);
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** An HTTP server that can stop and listen again on the same port, dropping open connections. */
class Listener {
  readonly #onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  constructor(onRequest: (req: IncomingMessage, res: ServerResponse) => void) {
    this.#onRequest = onRequest;
  }

  async open(port: number): Promise<number> {
    if (this.#server) throw new Error("the Loki fault proxy is already listening");
    const server = createServer(this.#onRequest);
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#server = server;
    const address = server.address();
    return typeof address === "object" && address ? address.port : port;
  }

  async shut(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
  }
}
