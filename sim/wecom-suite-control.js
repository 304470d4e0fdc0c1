// @ts-check
/**
 * The control API of WeCom's simulated service-provider side, under /__sim/wecom/suites (control.js has the
 * rest). JSON in and out; bad input is HTTP 400 `{"error"}` naming what to fix. Like the rest of the control
 * API it never reveals a ticket or a token: pushes are handed out encrypted, as WeCom sends them.
 *
 *   GET  /__sim/wecom/suites                  → {suites: [suite without its secrets]}
 *   POST /__sim/wecom/suites                  {suite_id, secret, token, encoding_aes_key, callback_url?,
 *                                             provider_corpid?, provider_secret?, token_lifetime_s?,
 *                                             ticket_lifetime_s?, push_min_s?, push_max_s?, …} → {suite}  (upsert)
 *   GET  /__sim/wecom/suites/:id              → {suite, stats: {wecom_get_suite_token, …, pushes: {made,
 *                                             dropped, delivered, failed}}, provider_stats (its provider
 *                                             corpid's: wecom_get_provider_token; null without one), schedule}
 *   POST /__sim/wecom/suites/:id/schedule     {running?, duplicate?, next_in_s?} → {schedule}  (stop, restart,
 *                                             duplicate the ticket pushes, or bring the next one forward)
 *   POST /__sim/wecom/suites/:id/push         {time_stamp_s?} → {ok: true}  (a ticket push now, e.g. older)
 *   POST /__sim/wecom/suites/:id/take         → {pushes: [{info_type, query, body, time_stamp}]}  (makes what is
 *                                             due, then hands over every waiting push, oldest first)
 *   POST /__sim/wecom/suites/:id/url-check    → {query, echo}  (the GET WeCom makes when the URL is saved, and
 *                                             the bare text a receiver must answer)
 *   POST /__sim/wecom/suites/:id/install      {corpid, corp_name?, pre_auth_code?, push?: false, state?, agentid?}
 *                                             → {auth_code, expires_in}  (with push, a create_auth callback follows)
 *   POST /__sim/wecom/suites/:id/install-many {corpids: [...], push?: true} → {codes: [{corpid, auth_code,
 *                                             expires_in}]}  (many companies install at once, each with its own
 *                                             single-use auth code and, with push, its own create_auth callback;
 *                                             with push at most the outbox's MAX_SUITE_OUTBOX, without 1,000)
 *   POST /__sim/wecom/suites/:id/uninstall    {corpid, push?: true} → {ok: true}  (cancel_auth)
 *   POST /__sim/wecom/suites/:id/change       {corpid, corp_name?, push?: true} → {ok: true}  (change_auth)
 *   POST /__sim/wecom/suites/:id/reset        {corpid, push?: true} → {auth_code, expires_in}  (代开发
 *                                             reset_permanent_code: the code's exchange issues the new permanent code)
 */
import { BadRequest, jsonBody } from "./control-input.js";
import { publicSuite } from "./wecom-suites.js";
import { MAX_SUITE_OUTBOX } from "./wecom-suite-pushes.js";
import { controlJson } from "./wire.js";

export const SUITE_CONTROL_PREFIX = "/__sim/wecom/suites";
/** Companies one install-many call may install without pushes: a bound on one request's work. */
export const MAX_BULK_INSTALLS = 1_000;

/**
 * @typedef {object} SuiteControlContext
 * @property {import("./wecom-suites.js").SuiteRegistry} suites
 * @property {import("./wecom-service.js").WeComServiceSim} service
 * @property {() => number} now
 */

/**
 * @param {SuiteControlContext} ctx
 * @param {Required<import("./wire.js").SimRequest>} req
 * @returns {import("./wire.js").SimResponse}
 */
export function handleSuiteControl(ctx, { method, path, body }) {
  if (path === SUITE_CONTROL_PREFIX) {
    if (method === "GET") return controlJson({ suites: ctx.suites.list().map(publicSuite) });
    requireMethod(method, "POST");
    return controlJson({ suite: publicSuite(ctx.suites.upsert(jsonBody(body))) });
  }
  const match = /^\/__sim\/wecom\/suites\/(?<id>[^/]+)(?:\/(?<action>schedule|push|take|url-check|install-many|install|uninstall|change|reset))?$/.exec(path)?.groups;
  if (!match) throw new BadRequest(`no control endpoint ${path}`, 404);
  const id = decodeURIComponent(match.id ?? "");
  const suite = ctx.suites.get(id);
  if (!suite) throw new BadRequest(`unknown suite ${JSON.stringify(id)}; register it with POST /__sim/wecom/suites`);
  const now = ctx.now();
  const pushes = ctx.service.pushes;
  if (!match.action) {
    requireMethod(method, "GET");
    const providerStats = suite.provider_corpid === null ? null : ctx.service.statsOf(suite.provider_corpid);
    return controlJson({ suite: publicSuite(suite), stats: ctx.service.statsOf(id), provider_stats: providerStats, schedule: pushes.scheduleOf(id, now) });
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
      return controlJson({ schedule: pushes.reschedule(id, { running, duplicate, next_in_s }, now) });
    }
    case "push": {
      const { time_stamp_s, ...rest } = input;
      noOthers(rest, "time_stamp_s");
      if (time_stamp_s !== undefined && !Number.isSafeInteger(time_stamp_s)) throw new BadRequest("time_stamp_s must be an integer (seconds)");
      pushes.pushTicket(suite, now, /** @type {number | undefined} */ (time_stamp_s));
      return controlJson({ ok: true });
    }
    case "take":
      noOthers(input, "nothing");
      pushes.tick(now);
      return controlJson({ pushes: pushes.take(id) });
    case "url-check":
      noOthers(input, "nothing");
      return controlJson(pushes.urlCheck(suite, now));
    case "install": {
      const { corpid, corp_name, pre_auth_code, push = false, state, agentid, ...rest } = input;
      noOthers(rest, "corpid, corp_name, pre_auth_code, push, state, agentid");
      if (agentid !== undefined && !Number.isSafeInteger(agentid)) throw new BadRequest("agentid must be an integer");
      if (typeof corpid !== "string" || corpid === "") throw new BadRequest("corpid must be a non-empty string");
      const optional = (/** @type {string} */ name, /** @type {unknown} */ value) => {
        if (value !== undefined && typeof value !== "string") throw new BadRequest(`${name} must be a string`);
        return /** @type {string | undefined} */ (value);
      };
      if (typeof push !== "boolean") throw new BadRequest("push must be true or false");
      const outcome = ctx.service.install(id, {
        corpid, corp_name: optional("corp_name", corp_name), pre_auth_code: optional("pre_auth_code", pre_auth_code), push, state: optional("state", state),
        ...(agentid !== undefined && { agentid: /** @type {number} */ (agentid) }),
      }, now);
      if ("error" in outcome) throw new BadRequest(outcome.error);
      return controlJson(outcome);
    }
    case "install-many": {
      const { corpids, push = true, ...rest } = input;
      noOthers(rest, "corpids, push");
      if (typeof push !== "boolean") throw new BadRequest("push must be true or false");
      // With push every install's create_auth waits in the suite's outbox, which drops its oldest beyond MAX_SUITE_OUTBOX.
      const max = push ? MAX_SUITE_OUTBOX : MAX_BULK_INSTALLS;
      if (!Array.isArray(corpids) || corpids.length === 0 || corpids.length > max) {
        throw new BadRequest(`corpids must list 1 to ${max} companies${push ? ` with push (a suite's outbox holds ${MAX_SUITE_OUTBOX}; wait for them to be delivered, or install without push)` : ""}`);
      }
      if (!corpids.every((c) => typeof c === "string" && c !== "") || new Set(corpids).size !== corpids.length) throw new BadRequest("corpids must be distinct non-empty strings");
      const codes = corpids.map((corpid) => {
        const outcome = ctx.service.install(id, { corpid, push }, now);
        // Without a pre_auth_code the only refusal is an unknown suite, checked above.
        if ("error" in outcome) throw new BadRequest(outcome.error);
        return { corpid, ...outcome };
      });
      return controlJson({ codes });
    }
    case "change": {
      const { corpid, corp_name, push = true, ...rest } = input;
      noOthers(rest, "corpid, corp_name, push");
      if (typeof corpid !== "string" || typeof push !== "boolean" || (corp_name !== undefined && typeof corp_name !== "string")) throw new BadRequest("corpid and corp_name must be strings and push true or false");
      if (!ctx.service.change(id, corpid, /** @type {string | undefined} */ (corp_name), push, now)) throw new BadRequest(`${corpid} has not installed ${id}`);
      return controlJson({ ok: true });
    }
    case "reset": {
      const { corpid, push = true, ...rest } = input;
      noOthers(rest, "corpid, push");
      if (typeof corpid !== "string" || typeof push !== "boolean") throw new BadRequest("corpid must be a string and push true or false");
      const code = ctx.service.reset(id, corpid, push, now);
      if (!code) throw new BadRequest(`${corpid} has not installed ${id}`);
      return controlJson(code);
    }
    default: {
      const { corpid, push = true, ...rest } = input;
      noOthers(rest, "corpid, push");
      if (typeof corpid !== "string" || typeof push !== "boolean") throw new BadRequest("corpid must be a string and push true or false");
      if (!ctx.service.uninstall(id, corpid, push, now)) throw new BadRequest(`${corpid} has not installed ${id}`);
      return controlJson({ ok: true });
    }
  }
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
