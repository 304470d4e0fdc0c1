// @ts-check
/**
 * A faithful, in-memory stand-in for api.weixin.qq.com's credential endpoints, the business calls a broker's
 * gateway forwards, WeCom (qyapi.weixin.qq.com, under /qyapi), and the WeCom group-robot webhook a broker
 * sends alerts to. Pure logic: it answers SimRequest objects and performs no I/O, so
 * server.js (or a test) can drive it directly.
 * A router: the rules it implements are in WECHAT-API.md, and each concept has its module (token-endpoints.js
 * and issuer.js for tokens, tickets.js, business.js, wecom.js, webhook.js, faults.js, control.js).
 *
 *   GET  /cgi-bin/token                  classic access_token
 *   POST /cgi-bin/stable_token           stable access_token
 *   GET  /cgi-bin/getcallbackip          the business API, to check a token
 *   GET  /cgi-bin/ticket/getticket       JS-SDK tickets, jsapi and wx_card (tickets.js)
 *   POST /cgi-bin/message/custom/send    business APIs for the gateway (business.js)
 *   POST /cgi-bin/media/upload
 *   GET  /cgi-bin/media/get
 *   POST /cgi-bin/webhook/send?key=KEY   WeCom group robot (qyapi.weixin.qq.com's path; also under /qyapi)
 *   GET  /qyapi/cgi-bin/…                WeCom: gettoken, get_jsapi_ticket, ticket/get, getcallbackip (wecom.js)
 *   *    /qyapi/cgi-bin/service/…        WeCom's service-provider API (wecom-service.js), and its suite pushes
 *   POST /__sim/webhook/generic          any JSON receiver (Slack, Feishu style)
 *   POST /cgi-bin/component/…            the open platform (open-platform.js), and its pushes (open-pushes.js)
 *   *    /__sim/...                      the control API (control.js; the open platform's: open-control.js)
 */
import { AppRegistry } from "./apps.js";
import { BusinessApi, readMediaPart } from "./business.js";
import { SimClock } from "./clock.js";
import { handleControl } from "./control.js";
import { ERR } from "./errcodes.js";
import { FaultQueue, withFault } from "./faults.js";
import { TokenIssuer } from "./issuer.js";
import { APP_STAT_NAMES, EndpointStats, UnknownTokenStats } from "./stats.js";
import { TicketStore } from "./ticket-store.js";
import { OfficialTickets, isOfficialTicketType } from "./tickets.js";
import { checkAccessToken } from "./token-check.js";
import { TokenEndpoints } from "./token-endpoints.js";
import { TokenStore } from "./token-store.js";
import { WebhookReceiver } from "./webhook.js";
import { ComponentRegistry } from "./open-components.js";
import { COMPONENT_PREFIX, OpenPlatformSim } from "./open-platform.js";
import { WECOM_PREFIX, WeComSim, wecomError } from "./wecom.js";
import { WeComServiceSim } from "./wecom-service.js";
import { SuiteRegistry } from "./wecom-suites.js";
import { wechatError, wechatJson } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResult} SimResult */
/** @typedef {import("./apps.js").AppConfig} AppConfig */
/** @typedef {import("./apps.js").PublicAppConfig} PublicAppConfig */
/** @typedef {import("./faults.js").FaultEndpoint} FaultEndpoint */
/** @typedef {import("./issuer.js").MintListener} MintListener */
/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./token-store.js").TokenRecord} TokenRecord */
/** @typedef {typeof APP_STAT_NAMES[number]} AppStatName */

const CONTROL_PREFIX = "/__sim/";
// A receiver, not a control endpoint, though it shares the prefix WeChat never uses.
const GENERIC_WEBHOOK_PATH = "/__sim/webhook/generic";
// getcallbackip answers with WeChat's callback egress ranges; these are real entries from that list.
const CALLBACK_IP_LIST = Object.freeze(["101.226.103.0/25", "101.226.62.0/26", "58.247.206.128/25", "182.254.11.0/24"]);

/**
 * @typedef {object} WeChatSimOptions
 * @property {() => number} [now]       real clock in ms (Date.now by default); the control API adds an offset
 * @property {MintListener} [onMint]    called for every token minted
 */

export class WeChatSim {
  #clock;
  #apps = new AppRegistry();
  #tokens = new TokenStore();
  #issuer;
  #faults = new FaultQueue();
  #stats = new EndpointStats(APP_STAT_NAMES);
  #unknownTokens = new UnknownTokenStats();
  /** @type {TokenEndpoints} */
  #tokenEndpoints;
  #webhook = new WebhookReceiver();
  #ticketStore = new TicketStore();
  #officialTickets = new OfficialTickets(this.#ticketStore);
  #business = new BusinessApi();
  #wecom = new WeComSim({
    tickets: this.#ticketStore, faults: this.#faults, unknownTokens: this.#unknownTokens,
    installedToken: (token) => this.#service.corpTokenEntry(token),
  });
  #components = new ComponentRegistry();
  #open = new OpenPlatformSim({ components: this.#components, accessTokens: this.#tokens });
  #suites = new SuiteRegistry();
  #service = new WeComServiceSim({ suites: this.#suites, faults: this.#faults });
  /** @type {import("./control.js").ControlContext} */
  #control;

  /** @param {WeChatSimOptions} [options] */
  constructor({ now, onMint } = {}) {
    this.#clock = new SimClock(now);
    this.#issuer = new TokenIssuer(this.#tokens, onMint);
    this.#tokenEndpoints = new TokenEndpoints({ apps: this.#apps, issuer: this.#issuer, faults: this.#faults, stats: this.#stats });
    this.#control = {
      clock: this.#clock,
      apps: this.#apps,
      issuer: this.#issuer,
      faults: this.#faults,
      stats: this.#stats,
      unknownTokens: this.#unknownTokens,
      webhook: this.#webhook,
      tickets: this.#ticketStore,
      wecom: this.#wecom,
      business: this.#business,
      open: { components: this.#components, open: this.#open, now: () => this.#clock.now() },
      suites: { suites: this.#suites, service: this.#service, now: () => this.#clock.now() },
      reset: () => this.reset(),
    };
  }

  /** Simulated time in ms since the epoch. */
  now() {
    return this.#clock.now();
  }

  /**
   * Registers or updates an app (same rules as POST /__sim/apps); throws AppConfigError on bad input.
   * @param {unknown} app
   * @returns {PublicAppConfig}
   */
  registerApp(app) {
    const { secret: _secret, ...rest } = this.#apps.upsert(app);
    return rest;
  }

  /**
   * Registers or updates a WeCom secret (same rules as POST /__sim/wecom/apps); throws AppConfigError.
   * @param {unknown} app
   */
  registerWecomApp(app) {
    const { secret: _secret, key: _key, ...rest } = this.#wecom.registry.upsert(app);
    return rest;
  }

  /**
   * Registers or updates an open-platform component (same rules as POST /__sim/open/components).
   * @param {unknown} component
   */
  registerComponent(component) {
    return this.#components.upsert(component).component_appid;
  }

  /**
   * Makes the pushes that are due and hands over those of components with an event URL, for open-pusher.js
   * to deliver; the others wait for a test to take them (POST /__sim/open/components/:id/take).
   * @returns {{ componentAppid: string, eventUrl: string, pushes: import("./open-pushes.js").Push[] }[]}
   */
  pushesToDeliver() {
    this.#open.pushes.tick(this.#clock.now());
    return this.#components.list().flatMap(({ component_appid, event_url }) => {
      if (!event_url) return [];
      const pushes = this.#open.pushes.take(component_appid);
      return pushes.length ? [{ componentAppid: component_appid, eventUrl: event_url, pushes }] : [];
    });
  }

  /** @param {string} componentAppid @param {boolean} delivered */
  recordPushDelivery(componentAppid, delivered) {
    this.#open.pushes.recordDelivery(componentAppid, delivered);
  }

  /**
   * Registers or updates a WeCom suite (same rules as POST /__sim/wecom/suites).
   * @param {unknown} suite
   */
  registerSuite(suite) {
    return this.#suites.upsert(suite).suite_id;
  }

  /**
   * Like pushesToDeliver, for WeCom suites with a callback URL (the others wait for a test to take them).
   * @returns {{ suiteId: string, callbackUrl: string, pushes: import("./wecom-suite-pushes.js").SuitePush[] }[]}
   */
  suitePushesToDeliver() {
    this.#service.pushes.tick(this.#clock.now());
    return this.#suites.list().flatMap(({ suite_id, callback_url }) => {
      if (!callback_url) return [];
      const pushes = this.#service.pushes.take(suite_id);
      return pushes.length ? [{ suiteId: suite_id, callbackUrl: callback_url, pushes }] : [];
    });
  }

  /** @param {string} suiteId @param {boolean} delivered */
  recordSuitePushDelivery(suiteId, delivered) {
    this.#service.pushes.recordDelivery(suiteId, delivered);
  }

  /** Forgets apps, tokens, faults, counters, webhook messages and the clock offset; hung calls are released. */
  reset() {
    this.#apps.clear();
    this.#tokens.clear();
    this.#issuer.clear();
    this.#faults.clear();
    this.#stats.clear();
    this.#unknownTokens.clear();
    this.#tokenEndpoints.clear();
    this.#webhook.clear();
    this.#ticketStore.clear();
    this.#officialTickets.clear();
    this.#wecom.clear();
    this.#business.clear();
    this.#components.clear();
    this.#open.clear();
    this.#suites.clear();
    this.#service.clear();
    this.#clock.reset();
  }

  /** Lets every hung call finish without removing the faults (server.js calls it on close). */
  releaseHung() {
    this.#faults.releaseHung();
  }

  /**
   * @param {SimRequest} request
   * @returns {Promise<SimResult>}
   */
  async handle(request) {
    const body = request.body ?? "";
    /** @type {Required<SimRequest>} */
    const req = {
      ...request,
      query: request.query ?? new URLSearchParams(),
      body,
      raw: request.raw ?? new TextEncoder().encode(body),
      headers: request.headers ?? {},
    };
    // Webhooks are not token endpoints: no token fault applies to them and they are not in the stats.
    if (req.path === GENERIC_WEBHOOK_PATH) return this.#webhook.generic(req, this.#clock.now());
    if (req.path.startsWith(CONTROL_PREFIX)) return handleControl(this.#control, req);
    if (req.path.startsWith(`${WECOM_PREFIX}/`)) {
      // The group robot lives on WeCom's host too; it is also served at the root for existing configs.
      if (req.path === `${WECOM_PREFIX}/cgi-bin/webhook/send`) return this.#webhook.wecom(req, this.#clock.now());
      const service = this.#service.handle(req, this.#clock.now());
      if (service) return service;
      return this.#wecom.handle(req, this.#clock.now()) ?? wecomError(ERR.SYSTEM_ERROR, 404);
    }
    if (req.path.startsWith(COMPONENT_PREFIX)) {
      const answer = this.#open.handle(req, this.#clock.now(), (component, endpoint, perform) => withFault(this.#faults, component, endpoint, perform, wechatError));
      if (answer) return answer;
    }
    switch (req.path) {
      case "/cgi-bin/token":
        return this.#tokenEndpoints.classic(req, this.#clock.now());
      case "/cgi-bin/stable_token":
        return this.#tokenEndpoints.stable(req, this.#clock.now());
      case "/cgi-bin/getcallbackip":
        return this.#getCallbackIp(req);
      case "/cgi-bin/ticket/getticket":
        return this.#getTicket(req);
      case "/cgi-bin/message/custom/send":
        if (req.method !== "POST") return wechatError(ERR.REQUIRE_POST);
        return this.#withToken(req, ["message_custom_send"], "message_custom_send", (record, now) =>
          this.#business.customSend(record.appid, req.body, now),
        );
      case "/cgi-bin/media/upload": {
        if (req.method !== "POST") return wechatError(ERR.REQUIRE_POST);
        const file = await readMediaPart(req);
        return this.#withToken(req, ["media_upload"], "media_upload", (record, now) =>
          this.#business.upload(record.appid, req.query.get("type"), file, now),
        );
      }
      case "/cgi-bin/media/get":
        return this.#withToken(req, ["media_get"], "media_get", (record, now) =>
          this.#business.get(record.appid, req.query.get("media_id"), now),
        );
      case "/cgi-bin/webhook/send":
        return this.#webhook.wecom(req, this.#clock.now());
      default:
        return wechatError(ERR.SYSTEM_ERROR, 404);
    }
  }

  /** @param {Required<SimRequest>} req */
  #getCallbackIp(req) {
    return this.#withToken(req, ["getcallbackip"], "getcallbackip", () => wechatJson({ ip_list: CALLBACK_IP_LIST }));
  }

  /** @param {Required<SimRequest>} req */
  #getTicket(req) {
    const type = req.query.get("type");
    /** @type {AppStatName[]} */
    const stats = isOfficialTicketType(type) ? ["getticket", `getticket_${type}`] : ["getticket"];
    return this.#withToken(req, stats, "getticket", (record, now) => {
      const app = this.#apps.get(record.appid) ?? this.#authorizerAccount(record);
      return app ? this.#officialTickets.getticket(app, type, now) : wechatError(ERR.INVALID_ACCESS_TOKEN);
    });
  }

  /**
   * An account that authorised a component is an official account like any other: its authorizer token gets
   * its JS-SDK tickets with the default limits. Registered on first use (its AppSecret is never used).
   * @param {import("./token-store.js").TokenRecord} record
   */
  #authorizerAccount(record) {
    if (!record.kind.startsWith("authorizer:")) return undefined;
    return this.#apps.upsert({ appid: record.appid, secret: `authorizer-account-${record.appid}` });
  }

  /**
   * A call authorised by an access_token: counted against the token's app (or as an unknown token), hit by
   * the endpoint's faults, and carried out only when the token works now.
   * @param {Required<SimRequest>} req
   * @param {ReadonlyArray<AppStatName>} stats  the counters this call adds one to
   * @param {FaultEndpoint} endpoint
   * @param {(record: TokenRecord, nowMs: number) => SimResponse} perform
   * @returns {SimResult}
   */
  #withToken({ path, query }, stats, endpoint, perform) {
    const check = checkAccessToken(this.#tokens, query.get("access_token"), this.#clock.now());
    if (check.missing) return wechatError(ERR.ACCESS_TOKEN_MISSING);
    const appid = check.record?.appid;
    if (appid !== undefined) for (const stat of stats) this.#stats.record(appid, stat);
    else this.#unknownTokens.record(path);
    // withFault runs perform on arrival or not at all, so the judgement made above still holds.
    return withFault(this.#faults, appid, endpoint, () => {
      const { record, errcode } = check;
      return errcode === undefined && record ? perform(record, this.#clock.now()) : wechatError(errcode ?? ERR.INVALID_ACCESS_TOKEN);
    }, wechatError);
  }
}
