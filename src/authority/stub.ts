/** The one way to reach an app's TokenAuthority. */
import type { AppEnv } from "../env";
import type { TokenAuthority } from "./token-authority";

export function authority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, appid: string): DurableObjectStub<TokenAuthority> {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(appid));
}
