/**
 * The one way to reach an app's TokenAuthority. The stubs' type comes from the binding's
 * (DurableObjectNamespace<TokenAuthority>, worker-configuration.d.ts), so this module, which the object's
 * own modules use to reach other objects, does not import the object's class.
 */
import { componentObjectName, suiteObjectName } from "../core/storage-keys";
import type { AppEnv } from "../env";

export function authority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, appid: string) {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(appid));
}

/** The one way to reach an open-platform component's object: its own name space, apart from the accounts'. */
export function componentAuthority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, componentAppid: string) {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(componentObjectName(componentAppid)));
}

/** The one way to reach a WeCom suite's object: its own name space, apart from apps and components. */
export function suiteAuthority(env: Pick<AppEnv, "TOKEN_AUTHORITY">, suiteId: string) {
	return env.TOKEN_AUTHORITY.get(env.TOKEN_AUTHORITY.idFromName(suiteObjectName(suiteId)));
}
