// @ts-check
/**
 * The control API under /__sim/ (a prefix WeChat never uses): how tests register apps, inject faults,
 * rotate or revoke tokens behind the broker's back, read call counts, move the clock and read the alerts a
 * broker posted to the simulated webhooks.
 * JSON in and out; bad input is HTTP 400 with {"error": "..."} saying what to fix.
 * It deliberately never reveals a token or a token's state: tests must observe tokens the way a broker
 * does, through the business API.
 *
 *   GET    /__sim/apps                      → {apps: [app without secret]}
 *   POST   /__sim/apps                      {appid, secret?, lifetime_s?, daily_quota?, ...} → {app}  (upsert)
 *   POST   /__sim/apps/:appid/rotate        {kind: "classic"|"stable"} → {ok: true}
 *   POST   /__sim/apps/:appid/revoke        {kind: "classic"|"stable"} → {ok: true}
 *   GET    /__sim/faults                    → {faults: [{id, appid, endpoint, kind, errcode?, status?, then?, delay_ms?, times_left}]}
 *   POST   /__sim/faults                    {appid?, endpoint?, kind, errcode?, status?, then?, delay_ms?, times?} → {id}
 *   DELETE /__sim/faults                    → {ok: true, cleared: n}  (also releases hung and slow calls)
 *   GET    /__sim/stats[?appid=]            → {apps: {appid: {token, stable_token, stable_token_force, getcallbackip,
 *                                           getticket, ...}}, unknown_token: {path: n}}  (unknown_token: calls whose
 *                                           access_token the simulator never issued; they reach no app)
 *   GET    /__sim/clock                     → {now_ms}
 *   POST   /__sim/clock                     {advance_s} → {now_ms}
 *   GET    /__sim/webhook[?key=]            → {messages: [{key, msgtype, content, at_ms}]}  (oldest first, last 1000)
 *   DELETE /__sim/webhook                   → {ok: true, cleared: n}  (also ends the failure mode)
 *   POST   /__sim/webhook/fail              {times?, status?} → {ok: true}  (the next webhook calls answer an
 *                                           HTML error page, 500 by default, until cleared if times is omitted)
 *   POST   /__sim/jssdk/verify              {appid, url, timestamp, nonceStr, signature, type?, agentid?, card_id?,
 *                                           code?, openid?} → {ok: true} | {ok: false, reason}  (jssdk-verify.js:
 *                                           a signature checked as wx.config would, against tickets valid now)
 *   POST   /__sim/reset                     → {ok: true}  (forgets apps, tokens, faults, counters, the clock
 *                                           offset, webhook messages and the webhook failure mode)
 *
 * Faults (faults.js): endpoint is token, stable_token, getcallbackip, getticket, wecom_gettoken,
 * wecom_get_jsapi_ticket, wecom_ticket_get, wecom_getcallbackip, or "*" (default: the two token endpoints
 * only); appid is an appid or a WeCom corpid (omit it for every app). kind is one of
 *   errcode {errcode}   the call fails with that errcode; nothing minted, no quota spent
 *   http {status?}      a bare nginx error page (503 by default)
 *   malformed           HTTP 200 whose body is not JSON
 *   reset               the connection is dropped
 *   hang                no answer until the faults are cleared (then errcode -1)
 *   lost {then?}        WeChat performs the call (mints, revokes, counts quota and stats) but the answer never
 *                       arrives: then "hang" (default, as hang) or "reset" (dropped at once)
 *   slow {delay_ms}     performed on arrival, answered after delay_ms real milliseconds (at most 60000;
 *                       clearing the faults answers at once)
 *
 * The receivers themselves are not control endpoints (wechat-sim.js routes them); neither counts in the stats
 * nor is hit by /__sim/faults:
 *   POST   /cgi-bin/webhook/send?key=KEY    {msgtype: "text"|"markdown", <msgtype>: {content}} → {errcode: 0, errmsg: "ok"}
 *   POST   /__sim/webhook/generic           any JSON → {ok: true}  (recorded as {key: null, msgtype: "json", content: <raw body>})
 */
import { AppConfigError } from "./apps.js";
import { MS_PER_S } from "./clock.js";
import { DEFAULT_FAULT_HTTP_STATUS, FAULT_ENDPOINTS, FAULT_KINDS, LOST_THEN, MAX_SLOW_DELAY_MS } from "./faults.js";
import { verifyJssdk } from "./jssdk-verify.js";
import { controlJson, parseJsonObject } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./faults.js").Fault} Fault */
/** @typedef {import("./faults.js").FaultSpec} FaultSpec */
/** @typedef {import("./token-store.js").TokenKind} TokenKind */
/** @typedef {import("./webhook.js").WebhookFailureSpec} WebhookFailureSpec */

/**
 * The parts of WeChatSim the control API may touch.
 * @typedef {object} ControlContext
 * @property {import("./clock.js").SimClock} clock
 * @property {import("./apps.js").AppRegistry} apps
 * @property {import("./issuer.js").TokenIssuer} issuer
 * @property {import("./faults.js").FaultQueue} faults
 * @property {import("./stats.js").EndpointStats<typeof import("./stats.js").APP_STAT_NAMES[number]>} stats
 * @property {import("./stats.js").UnknownTokenStats} unknownTokens
 * @property {import("./webhook.js").WebhookReceiver} webhook
 * @property {import("./ticket-store.js").TicketStore} tickets
 * @property {() => void} reset
 */

const TOKEN_KINDS = /** @type {const} */ (["classic", "stable"]);
const FAULT_FIELDS = new Set(["appid", "endpoint", "kind", "errcode", "status", "then", "delay_ms", "times"]);
const WEBHOOK_FAILURE_FIELDS = new Set(["status", "times"]);
// A webhook receiver that fails is most often an application error behind the proxy.
const DEFAULT_WEBHOOK_FAILURE_STATUS = 500;
const MIN_FAULT_HTTP_STATUS = 200;
const MAX_FAULT_HTTP_STATUS = 599;

class BadRequest extends Error {
  /**
   * @param {string} message
   * @param {number} [status]
   */
  constructor(message, status = 400) {
    super(message);
    this.status = status;
  }
}

/**
 * @param {ControlContext} ctx
 * @param {Required<SimRequest>} req
 * @returns {SimResponse}
 */
export function handleControl(ctx, req) {
  try {
    return route(ctx, req);
  } catch (error) {
    if (error instanceof BadRequest) return controlJson({ error: error.message }, error.status);
    if (error instanceof AppConfigError) return controlJson({ error: error.message }, 400);
    throw error;
  }
}

/**
 * @param {ControlContext} ctx
 * @param {Required<SimRequest>} req
 * @returns {SimResponse}
 */
function route(ctx, { method, path, query, body }) {
  const appAction = /^\/__sim\/apps\/(?<encodedAppid>[^/]+)\/(?<action>rotate|revoke)$/.exec(path)?.groups;
  if (appAction) {
    requireMethod(method, "POST");
    let appid;
    try {
      appid = decodeURIComponent(appAction.encodedAppid ?? "");
    } catch {
      throw new BadRequest("appid in the path is not valid percent-encoding");
    }
    return appAction.action === "rotate" ? rotate(ctx, appid, body) : revoke(ctx, appid, body);
  }
  switch (path) {
    case "/__sim/apps":
      if (method === "GET") return controlJson({ apps: ctx.apps.listPublic() });
      requireMethod(method, "POST");
      return upsertApp(ctx, body);
    case "/__sim/faults":
      if (method === "GET") return controlJson({ faults: ctx.faults.list().map(describeFault) });
      if (method === "DELETE") {
        const cleared = ctx.faults.list().length;
        ctx.faults.clear();
        return controlJson({ ok: true, cleared });
      }
      requireMethod(method, "POST");
      return controlJson({ id: ctx.faults.add(parseFault(ctx, body)).id });
    case "/__sim/stats":
      requireMethod(method, "GET");
      return stats(ctx, query.get("appid"));
    case "/__sim/clock":
      if (method === "GET") return controlJson({ now_ms: ctx.clock.now() });
      requireMethod(method, "POST");
      return advanceClock(ctx, body);
    case "/__sim/webhook":
      if (method === "GET") return controlJson({ messages: ctx.webhook.list(query.get("key")) });
      requireMethod(method, "DELETE");
      return controlJson({ ok: true, cleared: ctx.webhook.clear() });
    case "/__sim/webhook/fail":
      requireMethod(method, "POST");
      ctx.webhook.failNext(parseWebhookFailure(body));
      return controlJson({ ok: true });
    case "/__sim/jssdk/verify": {
      requireMethod(method, "POST");
      const outcome = verifyJssdk(
        { apps: ctx.apps, tickets: ctx.tickets, isCorp: () => false, isAgent: () => false, nowMs: ctx.clock.now() },
        jsonBody(body),
      );
      if ("error" in outcome) throw new BadRequest(outcome.error);
      return controlJson(outcome);
    }
    case "/__sim/reset":
      requireMethod(method, "POST");
      ctx.reset();
      return controlJson({ ok: true });
    default:
      throw new BadRequest(`no control endpoint ${path}`, 404);
  }
}

/**
 * @param {string} method
 * @param {string} expected
 */
function requireMethod(method, expected) {
  if (method !== expected) throw new BadRequest(`use ${expected} here, not ${method}`, 405);
}

/**
 * @param {string} body
 * @returns {Record<string, unknown>}
 */
function jsonBody(body) {
  const json = parseJsonObject(body === "" ? "{}" : body);
  if (!json) throw new BadRequest("body must be a JSON object");
  return json;
}

/**
 * @param {ControlContext} ctx
 * @param {string} body
 */
function upsertApp(ctx, body) {
  const { secret: _secret, ...app } = ctx.apps.upsert(jsonBody(body));
  return controlJson({ app });
}

/**
 * @param {ControlContext} ctx
 * @param {string} appid
 */
function knownApp(ctx, appid) {
  const app = ctx.apps.get(appid);
  if (!app) throw new BadRequest(`unknown appid ${JSON.stringify(appid)}; register it with POST /__sim/apps`);
  return app;
}

/**
 * @param {string} body
 * @returns {TokenKind}
 */
function tokenKind(body) {
  const { kind } = jsonBody(body);
  if (!TOKEN_KINDS.includes(/** @type {TokenKind} */ (kind))) {
    throw new BadRequest(`kind must be one of ${TOKEN_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
  return /** @type {TokenKind} */ (kind);
}

/**
 * Rotation as another server holding the AppSecret would cause it. Neither counts in the endpoint stats,
 * and a stable rotation neither waits for nor spends the force_refresh limits (30 s, daily).
 * @param {ControlContext} ctx
 * @param {string} appid
 * @param {string} body
 */
function rotate(ctx, appid, body) {
  const app = knownApp(ctx, appid);
  const kind = tokenKind(body);
  const now = ctx.clock.now();
  if (kind === "classic") ctx.issuer.issueClassic(app, now);
  else ctx.issuer.forceRotateStable(app, now);
  return controlJson({ ok: true });
}

/**
 * @param {ControlContext} ctx
 * @param {string} appid
 * @param {string} body
 */
function revoke(ctx, appid, body) {
  knownApp(ctx, appid);
  ctx.issuer.revokeAll(appid, tokenKind(body), ctx.clock.now());
  return controlJson({ ok: true });
}

/**
 * @param {ControlContext} ctx
 * @param {string | null} appid
 */
function stats(ctx, appid) {
  const appids = appid === null ? ctx.apps.listPublic().map((a) => a.appid) : [knownApp(ctx, appid).appid];
  return controlJson({
    apps: Object.fromEntries(appids.map((id) => [id, ctx.stats.of(id)])),
    unknown_token: ctx.unknownTokens.snapshot(),
  });
}

/**
 * @param {ControlContext} ctx
 * @param {string} body
 */
function advanceClock(ctx, body) {
  const { advance_s } = jsonBody(body);
  if (typeof advance_s !== "number" || !Number.isFinite(advance_s) || advance_s < 0) {
    throw new BadRequest(`advance_s must be a finite number >= 0 (the clock only moves forward), got ${JSON.stringify(advance_s)}`);
  }
  // Whole milliseconds, the clock's unit: fractional seconds such as 0.1 would otherwise accumulate
  // float error and make "exactly 300 s left" boundaries unreliable.
  ctx.clock.advance(Math.round(advance_s * MS_PER_S));
  return controlJson({ now_ms: ctx.clock.now() });
}

/**
 * @param {ControlContext} ctx
 * @param {string} body
 * @returns {FaultSpec}
 */
function parseFault(ctx, body) {
  const json = jsonBody(body);
  const unknown = Object.keys(json).filter((k) => !FAULT_FIELDS.has(k));
  if (unknown.length) throw new BadRequest(`unknown fault field(s) ${unknown.join(", ")}; allowed: ${[...FAULT_FIELDS].join(", ")}`);
  const { appid, endpoint = "*", kind, errcode, status = DEFAULT_FAULT_HTTP_STATUS, then = "hang", delay_ms, times } = json;

  if (appid !== undefined) {
    if (typeof appid !== "string") throw new BadRequest("appid must be a string (omit it to hit every app)");
    knownApp(ctx, appid);
  }
  if (!FAULT_ENDPOINTS.includes(/** @type {any} */ (endpoint))) {
    throw new BadRequest(`endpoint must be one of ${FAULT_ENDPOINTS.join(", ")}, got ${JSON.stringify(endpoint)}`);
  }
  if (!FAULT_KINDS.includes(/** @type {any} */ (kind))) {
    throw new BadRequest(`kind must be one of ${FAULT_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
  if (kind === "errcode" && !(Number.isSafeInteger(errcode) && errcode !== 0)) {
    throw new BadRequest(`kind errcode needs a non-zero integer errcode, got ${JSON.stringify(errcode)}`);
  }
  if (!LOST_THEN.includes(/** @type {any} */ (then))) {
    throw new BadRequest(`then must be one of ${LOST_THEN.join(", ")} (what a lost call does with its connection), got ${JSON.stringify(then)}`);
  }
  if (then !== "hang" && kind !== "lost") throw new BadRequest("then applies only to kind lost");
  const slow = kind === "slow";
  if (slow !== (delay_ms !== undefined)) throw new BadRequest("kind slow needs delay_ms, and only kind slow takes it");
  if (slow && !(typeof delay_ms === "number" && Number.isSafeInteger(delay_ms) && delay_ms >= 0 && delay_ms <= MAX_SLOW_DELAY_MS)) {
    throw new BadRequest(`delay_ms must be an integer 0-${MAX_SLOW_DELAY_MS} (real milliseconds), got ${JSON.stringify(delay_ms)}`);
  }
  return {
    appid: /** @type {string | undefined} */ (appid),
    endpoint: /** @type {FaultSpec["endpoint"]} */ (endpoint),
    kind: /** @type {FaultSpec["kind"]} */ (kind),
    errcode: kind === "errcode" ? /** @type {number} */ (errcode) : undefined,
    status: httpStatus(status),
    then: /** @type {FaultSpec["then"]} */ (then),
    delay_ms: slow ? /** @type {number} */ (delay_ms) : 0,
    times: faultTimes(times),
  };
}

/**
 * @param {string} body
 * @returns {WebhookFailureSpec}
 */
function parseWebhookFailure(body) {
  const json = jsonBody(body);
  const unknown = Object.keys(json).filter((k) => !WEBHOOK_FAILURE_FIELDS.has(k));
  if (unknown.length) throw new BadRequest(`unknown webhook failure field(s) ${unknown.join(", ")}; allowed: ${[...WEBHOOK_FAILURE_FIELDS].join(", ")}`);
  const { status = DEFAULT_WEBHOOK_FAILURE_STATUS, times } = json;
  return { status: httpStatus(status), times: faultTimes(times) };
}

/**
 * @param {unknown} status
 * @returns {number}
 */
function httpStatus(status) {
  if (
    typeof status !== "number" ||
    !Number.isInteger(status) ||
    status < MIN_FAULT_HTTP_STATUS ||
    status > MAX_FAULT_HTTP_STATUS
  ) {
    throw new BadRequest(`status must be an integer HTTP status ${MIN_FAULT_HTTP_STATUS}-${MAX_FAULT_HTTP_STATUS}, got ${JSON.stringify(status)}`);
  }
  return status;
}

/**
 * @param {unknown} times
 * @returns {number | undefined}
 */
function faultTimes(times) {
  if (times !== undefined && !(typeof times === "number" && Number.isSafeInteger(times) && times >= 1)) {
    throw new BadRequest(`times must be an integer >= 1 (omit it to fail until cleared), got ${JSON.stringify(times)}`);
  }
  return times;
}

/**
 * @param {Fault} fault
 */
function describeFault({ id, appid, endpoint, kind, errcode, status, then, delay_ms, remaining }) {
  return {
    id,
    appid: appid ?? "*",
    endpoint,
    kind,
    ...(kind === "errcode" ? { errcode } : {}),
    ...(kind === "http" ? { status } : {}),
    ...(kind === "lost" ? { then } : {}),
    ...(kind === "slow" ? { delay_ms } : {}),
    times_left: Number.isFinite(remaining) ? remaining : null,
  };
}
