/**
 * The broker's vocabulary of credentials, shared by every layer: which kinds exist. What differs between
 * them (endpoint, lifetime policy, quota) is the engine's (engine/kinds.ts).
 */

/** The JS-SDK tickets: `jsapi` (on a WeCom app, the corp ticket), `wx_card`, and WeCom's `agent_config`. */
export type TicketType = "jsapi" | "wx_card" | "agent_config";

/** `token` is the access_token; the others are JS-SDK tickets. */
export type CredentialType = "token" | TicketType;

export const CREDENTIAL_TYPES: readonly CredentialType[] = ["token", "jsapi", "wx_card", "agent_config"];
