/** The one way to reach an app's TokenAuthority. */
import { componentObjectName, suiteObjectName } from "../core/storage-keys";
import type { AppEnv } from "../env";
import type { TokenAuthority } from "./token-authority";

export function authority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, appid: string): DurableObjectStub<TokenAuthority> {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(appid));
}

/** The one way to reach an open-platform component's object: its own name space, apart from the accounts'. */
export function componentAuthority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, componentAppid: string): DurableObjectStub<TokenAuthority> {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(componentObjectName(componentAppid)));
}

/** The one way to reach a WeCom suite's object: its own name space, apart from apps and components. */
export function suiteAuthority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, suiteId: string): DurableObjectStub<TokenAuthority> {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(suiteObjectName(suiteId)));
}
