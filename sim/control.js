// @ts-check
/**
 * The control API under /__sim/ (a prefix WeChat never uses): how tests register apps and WeCom corps, inject
 * faults, rotate or revoke tokens behind the broker's back, read call counts, move the clock, verify JS-SDK
 * signatures, and read the alerts and messages a broker sent.
 * JSON in and out; bad input is HTTP 400 with {"error": "..."} saying what to fix.
 * It deliberately never reveals a token or a token's state: tests must observe tokens the way a broker
 * does, through the business API.
 *
 *   GET    /__sim/apps                      → {apps: [app without secret]}
 *   POST   /__sim/apps                      {appid, secret?, lifetime_s?, daily_quota?, stable_daily_quota?,
 *                                           stable_minute_quota?, force_daily_limit?, ticket_lifetime_s?,
 *                                           ticket_daily_quota?, ticket_refetch?: "same"|"new"} → {app}  (upsert)
 *   POST   /__sim/apps/:appid/rotate        {kind: "classic"|"stable"} → {ok: true}
 *   POST   /__sim/apps/:appid/revoke        {kind: "classic"|"stable"} → {ok: true}
 *   GET    /__sim/faults                    → {faults: [{id, appid, endpoint, kind, errcode?, status?, then?, delay_ms?, times_left}]}
 *   POST   /__sim/faults                    {appid?, endpoint?, kind, errcode?, status?, then?, delay_ms?, times?} → {id}
 *   DELETE /__sim/faults                    → {ok: true, cleared: n}  (also releases hung and slow calls)
 *   GET    /__sim/stats[?appid=]            → {apps: {appid: {token, stable_token, stable_token_force, getcallbackip,
 *                                           getticket, getticket_jsapi, getticket_wx_card, message_custom_send,
 *                                           media_upload, media_get}}, wecom: {corpid: {gettoken, get_jsapi_ticket,
 *                                           ticket_get, getcallbackip}}, unknown_token: {path: n}}  (appid may be a
 *                                           corpid, or an account that authorised a component; unknown_token:
 *                                           calls whose access_token the simulator never issued, so they reach
 *                                           no app)
 *   GET    /__sim/clock                     → {now_ms}
 *   POST   /__sim/clock                     {advance_s} → {now_ms}
 *   GET    /__sim/webhook[?key=]            → {messages: [{key, msgtype, content, at_ms}]}  (oldest first, last 1000)
 *   DELETE /__sim/webhook                   → {ok: true, cleared: n}  (also ends the failure mode)
 *   POST   /__sim/webhook/fail              {times?, status?} → {ok: true}  (the next webhook calls answer an
 *                                           HTML error page, 500 by default, until cleared if times is omitted)
 *   GET    /__sim/messages[?appid=]         → {messages: [{appid, touser, msgtype, message, at_ms}]}  (custom/send
 *                                           messages accepted, oldest first, last 1000)
 *   DELETE /__sim/messages                  → {ok: true, cleared: n}
 *   GET    /__sim/wecom/apps                → {apps: [{corpid, agentid?, lifetime_s, same_token_on_refetch, ...}]}
 *   POST   /__sim/wecom/apps                {corpid, agentid?, secret, lifetime_s?, same_token_on_refetch?,
 *                                           ticket_lifetime_s?, ticket_refetch?} → {app}  (upsert per (corpid, agentid);
 *                                           no agentid: the corp-level secret)
 *   POST   /__sim/wecom/revoke              {corpid, agentid?} → {ok: true}  (every token of that secret, or of every
 *                                           secret of the corp, stops working now: 40014)
 *   POST   /__sim/jssdk/verify              {appid, url, timestamp, nonceStr, signature, type?, agentid?, card_id?,
 *                                           code?, openid?} → {ok: true} | {ok: false, reason}  (jssdk-verify.js:
 *                                           a signature checked as wx.config would, against tickets valid now)
 *   *      /__sim/open/…                    the open platform's components, pushes and authorisations (open-control.js)
 *   *      /__sim/wecom/suites…             WeCom suites, their suite_ticket pushes, URL checks and installs
 *                                           (wecom-suite-control.js)
 *   POST   /__sim/reset                     → {ok: true}  (forgets apps, corps, tokens, tickets, media, faults,
 *                                           counters, the clock offset, messages and the webhook failure mode)
 *
 * Faults (faults.js): endpoint is token, stable_token, getcallbackip, getticket, message_custom_send,
 * media_upload, media_get, wecom_gettoken, wecom_get_jsapi_ticket, wecom_ticket_get, wecom_getcallbackip, the
 * open platform's and WeCom's service-provider endpoints (faults.js lists them), or
 * "*" (the default: the two token endpoints only). appid is an appid or a WeCom corpid (omit it for every
 * app; on a business API it matches the app owning the token). kind is one of
 *   errcode {errcode}   the call fails with that errcode; nothing minted, no quota spent
 *   http {status?}      a bare nginx error page (503 by default)
 *   redirect            HTTP 302 to the same API without a token (what follows it gets 41001); nothing performed
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
import { BadRequest, describeFault, jsonBody, parseFault, parseWebhookFailure } from "./control-input.js";
import { verifyJssdk } from "./jssdk-verify.js";
import { handleOpenControl, OPEN_CONTROL_PREFIX } from "./open-control.js";
import { handleSuiteControl, SUITE_CONTROL_PREFIX } from "./wecom-suite-control.js";
import { controlJson } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */

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
 * @property {import("./wecom.js").WeComSim} wecom
 * @property {import("./business.js").BusinessApi} business
 * @property {import("./open-control.js").OpenControlContext} open
 * @property {import("./wecom-suite-control.js").SuiteControlContext} suites
 * @property {() => void} reset
 */

const TOKEN_KINDS = /** @type {const} */ (["classic", "stable"]);
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
function route(ctx, req) {
  const { method, path, query, body } = req;
  if (path.startsWith(OPEN_CONTROL_PREFIX)) return handleOpenControl(ctx.open, req);
  if (path === SUITE_CONTROL_PREFIX || path.startsWith(`${SUITE_CONTROL_PREFIX}/`)) return handleSuiteControl(ctx.suites, req);
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
      return controlJson({ id: ctx.faults.add(parseFault(body, (id) => ctx.apps.get(id) !== undefined || ctx.wecom.registry.hasCorp(id) || ctx.open.components.get(id) !== undefined
        || ctx.suites.suites.get(id) !== undefined || ctx.suites.suites.ofProvider(id).length > 0)).id });
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
        {
          apps: ctx.apps,
          tickets: ctx.tickets,
          isCorp: (corpid) => ctx.wecom.registry.hasCorp(corpid),
          isAgent: (corpid, agentid) => ctx.wecom.registry.select(corpid, agentid).length > 0,
          nowMs: ctx.clock.now(),
        },
        jsonBody(body),
      );
      if ("error" in outcome) throw new BadRequest(outcome.error);
      return controlJson(outcome);
    }
    case "/__sim/messages":
      if (method === "GET") return controlJson({ messages: ctx.business.messages(query.get("appid")) });
      requireMethod(method, "DELETE");
      return controlJson({ ok: true, cleared: ctx.business.clearMessages() });
    case "/__sim/wecom/apps":
      if (method === "GET") return controlJson({ apps: ctx.wecom.registry.listPublic() });
      requireMethod(method, "POST");
      return upsertWecomApp(ctx, body);
    case "/__sim/wecom/revoke":
      requireMethod(method, "POST");
      return revokeWecom(ctx, body);
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
 * @returns {typeof TOKEN_KINDS[number]}
 */
function tokenKind(body) {
  const { kind } = jsonBody(body);
  if (!TOKEN_KINDS.includes(/** @type {any} */ (kind))) {
    throw new BadRequest(`kind must be one of ${TOKEN_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
  return /** @type {typeof TOKEN_KINDS[number]} */ (kind);
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
 * @param {string} body
 */
function upsertWecomApp(ctx, body) {
  const { secret: _secret, key: _key, ...app } = ctx.wecom.registry.upsert(jsonBody(body));
  return controlJson({ app });
}

/**
 * @param {ControlContext} ctx
 * @param {string} body
 */
function revokeWecom(ctx, body) {
  const { corpid, agentid, ...rest } = jsonBody(body);
  if (Object.keys(rest).length) throw new BadRequest(`unknown field(s) ${Object.keys(rest).join(", ")}; allowed: corpid, agentid`);
  if (typeof corpid !== "string" || !ctx.wecom.registry.hasCorp(corpid)) {
    throw new BadRequest(`corpid must be a registered WeCom corp (POST /__sim/wecom/apps), got ${JSON.stringify(corpid)}`);
  }
  if (agentid !== undefined && !(Number.isSafeInteger(agentid) || typeof agentid === "string")) {
    throw new BadRequest(`agentid must be an integer (omit it to revoke every token of the corp), got ${JSON.stringify(agentid)}`);
  }
  const agent = agentid === undefined ? undefined : String(agentid);
  if (ctx.wecom.revoke(corpid, agent, ctx.clock.now()) === 0) throw new BadRequest(`agent ${agent} is not registered for corp ${corpid}`);
  return controlJson({ ok: true });
}

/**
 * One appid or corpid, or everything registered.
 * @param {ControlContext} ctx
 * @param {string | null} id
 */
function stats(ctx, id) {
  const isCorp = id !== null && !ctx.apps.get(id) && ctx.wecom.registry.hasCorp(id);
  // An authorizer is an account like any other on the business API, whether or not it is registered here.
  const appids = id === null ? ctx.apps.listPublic().map((a) => a.appid) : isCorp ? [] : ctx.open.open.isAuthorizer(id) ? [id] : [knownApp(ctx, id).appid];
  const corpids = id === null ? ctx.wecom.registry.corpids() : isCorp ? [id] : [];
  return controlJson({
    apps: Object.fromEntries(appids.map((appid) => [appid, ctx.stats.of(appid)])),
    wecom: Object.fromEntries(corpids.map((corpid) => [corpid, ctx.wecom.stats.of(corpid)])),
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
