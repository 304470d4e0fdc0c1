// @ts-check
/**
 * node:http adapter for WeChatSim. All WeChat behaviour lives in wechat-sim.js; this file only moves
 * bytes, enforces the body limits, and carries out the faults that need the socket or time (reset, hang,
 * lost, slow).
 */
import { createServer } from "node:http";
import { startPusher } from "./open-pusher.js";
import { WeChatSim } from "./wechat-sim.js";
import { WECHAT_CONTENT_TYPE } from "./wire.js";

/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./wire.js").SimResult} SimResult */
/** @typedef {import("node:net").Socket} Socket */

// Token requests are a few hundred bytes and WeCom caps a robot message at 4096 bytes; anything this large
// is a client bug, not a request.
export const MAX_BODY_BYTES = 64 * 1024;
// Temporary media go up to 10 MB (image, video); room for the multipart framing on top.
export const MAX_UPLOAD_BODY_BYTES = 10 * 1024 * 1024 + 64 * 1024;
const UPLOAD_PATH = "/cgi-bin/media/upload";

/**
 * @typedef {object} Simulator
 * @property {string} url        e.g. "http://127.0.0.1:9860", no trailing slash
 * @property {number} port
 * @property {WeChatSim} sim
 * @property {() => Promise<void>} close  stops listening and destroys every open socket, hung ones included
 */

/** Longer than any test or bench run, so the simulator never closes an idle connection a client may reuse. */
const IDLE_KEEP_ALIVE_MS = 60 * 60 * 1000;

/**
 * @typedef {object} StartOptions
 * @property {number} [port]   0 picks a free port
 * @property {string} [host]
 * @property {unknown[]} [apps]  app objects as accepted by POST /__sim/apps
 * @property {unknown[]} [wecomApps]  WeCom secrets as accepted by POST /__sim/wecom/apps
 * @property {unknown[]} [components]  open-platform components as accepted by POST /__sim/open/components
 * @property {unknown[]} [suites]  WeCom suites as accepted by POST /__sim/wecom/suites
 * @property {() => number} [now]  base clock in ms (Date.now by default); tests pass a frozen one so
 *                                 boundaries such as "exactly 300 s left" do not drift with real time
 * @property {import("./issuer.js").MintListener} [onMint]
 */

/**
 * @param {StartOptions} [options]
 * @returns {Promise<Simulator>}
 */
export async function startSimulator({ port = 0, host = "127.0.0.1", apps = [], wecomApps = [], components = [], suites = [], now, onMint } = {}) {
  const sim = new WeChatSim({ now, onMint });
  for (const app of apps) sim.registerApp(app);
  for (const app of wecomApps) sim.registerWecomApp(app);
  for (const component of components) sim.registerComponent(component);
  for (const suite of suites) sim.registerSuite(suite);

  /** @type {Set<Socket>} */
  const sockets = new Set();
  const server = createServer((req, res) => {
    serve(sim, req, res).catch((error) => {
      // A bug in the simulator: one log line, and an answer shaped like WeChat's own failures rather than
      // a call left open.
      console.error("wechat-sim: internal error", error);
      if (!res.headersSent) respond(res, { status: 500, headers: { "content-type": WECHAT_CONTENT_TYPE }, body: '{"errcode":-1,"errmsg":"system error"}' });
      else res.destroy();
    });
  });
  // Node closes an idle keep-alive connection after 5 s by default; a client that pools connections
  // (workerd does) can send its next request on one at the very moment Node closes it, and that request
  // fails with "Network connection lost". Idle connections stay open until close() instead.
  server.keepAliveTimeout = IDLE_KEEP_ALIVE_MS;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(undefined);
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("simulator did not bind a TCP port");
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  // Open-platform pushes and WeCom suite callbacks to the URLs of those that have one (open-pusher.js).
  const stopPusher = startPusher(sim);
  let closing;
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    sim,
    close() {
      closing ??= new Promise((resolve) => {
        server.close(() => void stopPusher().then(() => resolve(undefined)));
        for (const socket of sockets) socket.destroy();
        // Settle hung handlers too: their sockets are gone, so nothing is written, but no promise leaks.
        sim.releaseHung();
      });
      return closing;
    },
  };
}

/**
 * @param {WeChatSim} sim
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 */
async function serve(sim, req, res) {
  const url = new URL(req.url ?? "/", "http://simulator.invalid");
  const limit = url.pathname === UPLOAD_PATH ? MAX_UPLOAD_BODY_BYTES : MAX_BODY_BYTES;
  const raw = await readBody(req, limit);
  if (raw === undefined) {
    respond(res, { status: 413, headers: { "content-type": "application/json" }, body: JSON.stringify({ error: `body exceeds ${limit} bytes` }) });
    return;
  }
  /** @type {Record<string, string>} */
  const headers = {};
  const contentType = req.headers["content-type"];
  if (contentType !== undefined) headers["content-type"] = contentType;
  /** @type {SimResult} */
  let result = await sim.handle({ method: req.method ?? "GET", path: url.pathname, query: url.searchParams, body: raw.toString("utf8"), raw, headers });
  if ("hang" in result) result = await result.hang;
  if ("reset" in result) {
    req.socket.destroy();
    return;
  }
  if (res.destroyed || req.socket.destroyed) return;
  respond(res, result);
}

/**
 * Reads the body's bytes, or returns undefined if there are more than `limit`. An oversized body is still
 * drained (and discarded) before the 413 goes out: closing on a client that is still sending makes its TCP
 * stack see a reset instead of the answer.
 * @param {import("node:http").IncomingMessage} req
 * @param {number} limit
 * @returns {Promise<Buffer | undefined>}
 */
async function readBody(req, limit) {
  /** @type {Buffer[]} */
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return size > limit ? undefined : Buffer.concat(chunks);
}

/**
 * @param {import("node:http").ServerResponse} res
 * @param {SimResponse} response
 */
function respond(res, { status, headers = {}, body }) {
  res.writeHead(status, { ...headers, "content-length": typeof body === "string" ? Buffer.byteLength(body) : body.byteLength });
  res.end(body);
}
