/**
 * HTTP only: send one JSON body, report what came back. No retries, no queues here (as
 * xray_sdk/delivery/transport.py).
 *
 * `node:http` rather than `fetch`: a request in flight must never keep the process alive (its
 * socket is unref'd), so that a collector that holds requests forever cannot delay the exit;
 * fetch offers no way to unref its socket.
 */
import * as http from "node:http";
import * as https from "node:https";
import { isIPv4 } from "node:net";
import { promisify } from "node:util";
import { gzip } from "node:zlib";

const gzipAsync = promisify(gzip);

export const USER_AGENT = "xray-sdk-js/0.1";

/** Bodies of at least this many bytes are compressed, when they go to another machine. */
export const GZIP_MIN_BYTES = 1024;

/** Whether `hostname` (as `URL` writes it) names this machine: `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost" || host === "::1") return true;
  return isIPv4(host) && host.startsWith("127.");
}

/** The request did not complete: connection refused, reset, timed out. Retryable. */
export class TransportError extends Error {
  override name = "TransportError";
}

/** What the server answered. */
export interface Response {
  status: number;
  body: unknown;
  /** Seconds the server asked us to wait (`Retry-After`), if it said. */
  retryAfter: number | null;
}

/** POSTs JSON to the X-Ray API over kept-alive connections, with short timeouts. */
export class HttpTransport {
  readonly endpoint: string;
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly client: typeof http | typeof https;
  /**
   * Compress a body of at least this many bytes; null: never. By default, bodies to another
   * machine are compressed and those to this one are not: gzip at level 1 saves ~90% of a batch's
   * bytes, which pays on any link slower than ~140 MB/s, but on loopback it costs four times the
   * CPU of sending the plain body (BENCHMARKS.md, the SDK's delivery thread).
   */
  readonly gzipMinBytes: number | null;

  constructor(
    endpoint: string,
    readonly timeoutMs = 3000,
    gzipMinBytes: number | null = null,
  ) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint.replace(/\/+$/, ""));
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) {
      throw new TypeError(`XRAY_ENDPOINT must be an http(s) URL such as http://127.0.0.1:8000, not ${JSON.stringify(endpoint)}`);
    }
    this.url = url;
    this.gzipMinBytes = gzipMinBytes ?? (isLoopback(url.hostname) ? null : GZIP_MIN_BYTES);
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.client = url.protocol === "https:" ? https : http;
    this.agent = new this.client.Agent({ keepAlive: true, maxSockets: 2 });
  }

  /** Send `body` (JSON text); reject with TransportError if no answer came back. */
  async post(path: string, body: string): Promise<Response> {
    let payload: Buffer = Buffer.from(body, "utf8");
    const headers: Record<string, string> = { "Content-Type": "application/json", "User-Agent": USER_AGENT };
    if (this.gzipMinBytes !== null && payload.length >= this.gzipMinBytes) {
      payload = await gzipAsync(payload, { level: 1 });
      headers["Content-Encoding"] = "gzip";
    }
    headers["Content-Length"] = String(payload.length);
    const prefix = this.url.pathname === "/" ? "" : this.url.pathname;
    return new Promise<Response>((resolve, reject) => {
      const request = this.client.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          path: prefix + path,
          method: "POST",
          headers,
          agent: this.agent,
          timeout: this.timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              body: jsonOrNull(Buffer.concat(chunks).toString("utf8")),
              retryAfter: retryAfter(response.headers["retry-after"]),
            }),
          );
          response.on("error", (error) => reject(new TransportError(`${error.name}: ${error.message}`)));
        },
      );
      // Telemetry never keeps a process alive: an exit waits only for the SDK's bounded flush.
      request.on("socket", (socket) => socket.unref());
      request.on("timeout", () => request.destroy(new TransportError(`no answer within ${this.timeoutMs} ms`)));
      request.on("error", (error) =>
        reject(error instanceof TransportError ? error : new TransportError(`${error.name}: ${error.message}`)),
      );
      request.end(payload);
    });
  }

  /** Close the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

function jsonOrNull(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function retryAfter(value: string | string[] | undefined): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  const seconds = Number(text);
  // An HTTP date is rare from X-Ray: fall back to our own backoff.
  return Number.isFinite(seconds) ? Math.max(0, seconds) : null;
}
