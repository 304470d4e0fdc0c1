// @ts-check
/**
 * The control API of the simulated open platform, under /__sim/open/ (control.js has the rest). JSON in and
 * out; bad input is HTTP 400 `{"error"}` naming what to fix. Like the rest of the control API it never
 * reveals a ticket or a token: pushes are handed out encrypted, as WeChat sends them.
 *
 *   GET  /__sim/open/components               → {components: [component without secret, token or key]}
 *   POST /__sim/open/components               {component_appid, secret, token, encoding_aes_key, event_url?,
 *                                             token_lifetime_s?, ticket_lifetime_s?, push_interval_s?,
 *                                             pre_auth_code_lifetime_s?, auth_code_lifetime_s?,
 *                                             authorizer_token_lifetime_s?, daily_quota?, ip_allowed?,
 *                                             list_refresh_tokens?} → {component}  (upsert)
 *   GET  /__sim/open/components/:id           → {component, stats: {api_component_token, …, pushes: {made,
 *                                             dropped, delivered, failed}}, schedule}
 *   POST /__sim/open/components/:id/schedule  {running?, duplicate?, next_in_s?} → {schedule}  (stop, restart,
 *                                             duplicate the ticket pushes, or move the next one)
 *   POST /__sim/open/components/:id/push      {create_time_s?} → {ok: true}  (a ticket push now, e.g. with an
 *                                             older CreateTime)
 *   POST /__sim/open/components/:id/take      → {pushes: [{info_type, query, body, create_time}]}  (makes what is
 *                                             due, then hands over every waiting push, oldest first)
 *   POST /__sim/open/components/:id/authorize {authorizer_appid, pre_auth_code?, push?: true, func_info?: [ids]}
 *                                             → {auth_code, expires_in}  (an account consents; with push, an
 *                                             `authorized` or `updateauthorized` push follows)
 *   POST /__sim/open/components/:id/authorize-many {authorizer_appids: [...], push?: true, func_info?: [ids]}
 *                                             → {codes: [{authorizer_appid, auth_code, expires_in}]}  (many accounts
 *                                             consent at once, each as /authorize does: its own single-use code
 *                                             and, with push, its own push; at most MAX_OUTBOX with push, which is
 *                                             what one component's outbox holds)
 *   POST /__sim/open/components/:id/tickets   {create_times_s: [s, …]} → {pushes: [{info_type, query, body,
 *                                             create_time}]}  (one ticket push per CreateTime, each with a fresh
 *                                             ticket, handed over instead of queued: a burst the caller delivers)
 *   POST /__sim/open/components/:id/unauthorize {authorizer_appid, push?: true} → {ok: true}
 *   POST /__sim/open/components/:id/revoke    {authorizer_appid} → {ok: true}  (the account's tokens refused from
 *                                             now on, 40001, its authorisation kept: a revocation behind the
 *                                             broker's back)
 */
import { BadRequest, jsonBody } from "./control-input.js";
import { publicComponent } from "./open-components.js";
import { MAX_OUTBOX } from "./open-pushes.js";
import { controlJson } from "./wire.js";

export const OPEN_CONTROL_PREFIX = "/__sim/open/";
/** WeChat's permission-set ids (func_info): 1 messages, 2 users, … — a default set for an authorisation. */
const DEFAULT_FUNC_INFO = [1, 2, 3];
/** Accounts one authorize-many call may authorise without pushes: a bound on one request's work. */
export const MAX_BULK_AUTHORIZATIONS = 1_000;
/** Ticket pushes one tickets call may make. */
export const MAX_TICKET_PUSHES = 10_000;

/**
 * @typedef {object} OpenControlContext
 * @property {import("./open-components.js").ComponentRegistry} components
 * @property {import("./open-platform.js").OpenPlatformSim} open
 * @property {() => number} now
 */

/**
 * @param {OpenControlContext} ctx
 * @param {Required<import("./wire.js").SimRequest>} req
 * @returns {import("./wire.js").SimResponse}
 */
export function handleOpenControl(ctx, { method, path, body }) {
  if (path === "/__sim/open/components") {
    if (method === "GET") return controlJson({ components: ctx.components.listPublic() });
    requireMethod(method, "POST");
    return controlJson({ component: publicComponent(ctx.components.upsert(jsonBody(body))) });
  }
  const match = /^\/__sim\/open\/components\/(?<id>[^/]+)(?:\/(?<action>schedule|push|take|tickets|authorize-many|authorize|unauthorize|revoke))?$/.exec(path)?.groups;
  if (!match) throw new BadRequest(`no control endpoint ${path}`, 404);
  const id = decodeURIComponent(match.id ?? "");
  const component = ctx.components.get(id);
  if (!component) throw new BadRequest(`unknown component ${JSON.stringify(id)}; register it with POST /__sim/open/components`);
  const now = ctx.now();
  if (!match.action) {
    requireMethod(method, "GET");
    return controlJson({ component: publicComponent(component), stats: ctx.open.statsOf(id), schedule: ctx.open.pushes.scheduleOf(id, now) });
  }
  requireMethod(method, "POST");
  const input = body.trim() === "" ? {} : jsonBody(body);
  switch (match.action) {
    case "schedule": {
      const { running, duplicate, next_in_s, ...rest } = input;
      noOthers(rest, "running, duplicate, next_in_s");
      if (running !== undefined && typeof running !== "boolean") throw new BadRequest("running must be true or false");
      if (duplicate !== undefined && typeof duplicate !== "boolean") throw new BadRequest("duplicate must be true or false");
      if (next_in_s !== undefined && !(typeof next_in_s === "number" && Number.isFinite(next_in_s) && next_in_s >= 0)) throw new BadRequest("next_in_s must be a number >= 0");
      return controlJson({ schedule: ctx.open.pushes.reschedule(id, { running, duplicate, next_in_s }, now) });
    }
    case "push": {
      const { create_time_s, ...rest } = input;
      noOthers(rest, "create_time_s");
      if (create_time_s !== undefined && !Number.isSafeInteger(create_time_s)) throw new BadRequest("create_time_s must be an integer (seconds)");
      ctx.open.pushes.pushTicket(component, now, /** @type {number | undefined} */ (create_time_s));
      return controlJson({ ok: true });
    }
    case "take":
      noOthers(input, "nothing");
      ctx.open.pushes.tick(now);
      return controlJson({ pushes: ctx.open.pushes.take(id) });
    case "tickets": {
      const { create_times_s, ...rest } = input;
      noOthers(rest, "create_times_s");
      if (!Array.isArray(create_times_s) || create_times_s.length === 0 || create_times_s.length > MAX_TICKET_PUSHES || !create_times_s.every((t) => Number.isSafeInteger(t) && t >= 0)) {
        throw new BadRequest(`create_times_s must be 1 to ${MAX_TICKET_PUSHES} CreateTimes, integers in seconds`);
      }
      return controlJson({ pushes: ctx.open.pushes.ticketPushes(component, now, create_times_s) });
    }
    case "authorize": {
      const { authorizer_appid, pre_auth_code, push = true, func_info = DEFAULT_FUNC_INFO, ...rest } = input;
      noOthers(rest, "authorizer_appid, pre_auth_code, push, func_info");
      if (typeof authorizer_appid !== "string" || authorizer_appid === "") throw new BadRequest("authorizer_appid must be a non-empty string");
      if (pre_auth_code !== undefined && typeof pre_auth_code !== "string") throw new BadRequest("pre_auth_code must be a string");
      const outcome = ctx.open.authorize(id, { authorizer_appid, pre_auth_code, push: pushFlag(push), func_info: funcInfo(func_info) }, now);
      if ("error" in outcome) throw new BadRequest(outcome.error);
      return controlJson(outcome);
    }
    case "authorize-many": {
      const { authorizer_appids, push = true, func_info = DEFAULT_FUNC_INFO, ...rest } = input;
      noOthers(rest, "authorizer_appids, push, func_info");
      const pushed = pushFlag(push);
      const max = pushed ? MAX_OUTBOX : MAX_BULK_AUTHORIZATIONS;
      if (!Array.isArray(authorizer_appids) || authorizer_appids.length === 0 || authorizer_appids.length > max) {
        throw new BadRequest(`authorizer_appids must list 1 to ${max} accounts${pushed ? ` with push (a component's outbox holds ${MAX_OUTBOX}; wait for them to be delivered, or authorise without push)` : ""}`);
      }
      if (!authorizer_appids.every((a) => typeof a === "string" && a !== "") || new Set(authorizer_appids).size !== authorizer_appids.length) {
        throw new BadRequest("authorizer_appids must be distinct non-empty strings");
      }
      const scopes = funcInfo(func_info);
      const codes = authorizer_appids.map((authorizer_appid) => {
        const outcome = ctx.open.authorize(id, { authorizer_appid, push: pushed, func_info: scopes }, now);
        // Without a pre_auth_code the only refusal is an unknown component, checked above.
        if ("error" in outcome) throw new BadRequest(outcome.error);
        return { authorizer_appid, ...outcome };
      });
      return controlJson({ codes });
    }
    case "revoke": {
      const { authorizer_appid, ...rest } = input;
      noOthers(rest, "authorizer_appid");
      if (typeof authorizer_appid !== "string") throw new BadRequest("authorizer_appid must be a string");
      if (!ctx.open.revokeTokens(id, authorizer_appid, now)) throw new BadRequest(`${authorizer_appid} has not authorised ${id}`);
      return controlJson({ ok: true });
    }
    default: {
      const { authorizer_appid, push = true, ...rest } = input;
      noOthers(rest, "authorizer_appid, push");
      if (typeof authorizer_appid !== "string" || typeof push !== "boolean") throw new BadRequest("authorizer_appid must be a string and push true or false");
      if (!ctx.open.unauthorize(id, authorizer_appid, push, now)) throw new BadRequest(`${authorizer_appid} has not authorised ${id}`);
      return controlJson({ ok: true });
    }
  }
}

/** @param {unknown} push @returns {boolean} */
function pushFlag(push) {
  if (typeof push !== "boolean") throw new BadRequest("push must be true or false");
  return push;
}

/** @param {unknown} ids @returns {number[]} */
function funcInfo(ids) {
  if (!Array.isArray(ids) || !ids.every(Number.isSafeInteger)) throw new BadRequest("func_info must be an array of integer ids");
  return ids;
}

/** @param {string} method @param {string} expected */
function requireMethod(method, expected) {
  if (method !== expected) throw new BadRequest(`use ${expected} here, not ${method}`, 405);
}

/** @param {Record<string, unknown>} rest @param {string} allowed */
function noOthers(rest, allowed) {
  const unknown = Object.keys(rest);
  if (unknown.length) throw new BadRequest(`unknown field(s) ${unknown.join(", ")}; allowed: ${allowed}`);
}
