/**
 * A WeCom service provider known from a registry suite (PUT /admin/suites/{suite_id} with `provider_corpid` and
 * `provider_secret`), in the provider's own object (provider:<corpid>), where its token is fetched: the
 * ProviderSecret sealed there (registry/seal.ts, bound to the object's name), opened once per instance, and
 * served to the engine as an app named provider:<corpid>, as a WECOM_SUITES provider is (suite-token.ts
 * providerAppOf, which comes first: a provider configured in the secret keeps that secret). One provider serves
 * every suite that names it; the latest PUT that brings its secret sets it.
 */
import type { AppConfig } from "../config/config";
import { BrokerError } from "../core/errors";
import type { Failure } from "../core/outcome";
import { PROVIDER_KEY } from "../core/storage-keys";
import type { AppEnv } from "../env";
import { open, seal, sealingKeys, type Sealed } from "../registry/seal";
import { providerAsApp, providerObjectName } from "./suite-token";

interface StoredProvider {
	readonly corpid: string;
	readonly sealed: Sealed;
	readonly updatedAt: number;
}

function isStoredProvider(value: unknown): value is StoredProvider {
	return typeof value === "object" && value !== null && typeof (value as StoredProvider).corpid === "string" && typeof (value as StoredProvider).sealed === "object";
}

export interface RegistryProviderHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
}

export class RegistryProvider {
	readonly #host: RegistryProviderHost;
	#opened: AppConfig | undefined;

	constructor(host: RegistryProviderHost) {
		this.#host = host;
	}

	/** In the object's constructor: the stored provider opened, so its alarm can name it before any call. */
	async load(): Promise<void> {
		const stored = await this.#host.storage.get<unknown>(PROVIDER_KEY);
		if (!isStoredProvider(stored)) return;
		// A secret REGISTRY_KEY can no longer open stays stored; the provider is unknown until it is PUT again.
		const secret = await open(await sealingKeys(this.#host.env), providerObjectName(stored.corpid), stored.sealed).catch(() => undefined);
		if (secret !== undefined) this.#opened = providerAsApp(stored.corpid, secret, "registry");
	}

	/** The provider this object serves as provider:<corpid>, when a registry suite brought its secret. */
	appOf(appid: string): AppConfig | undefined {
		return this.#opened?.appid === appid ? this.#opened : undefined;
	}

	/** The ProviderSecret sealed and stored in place of any earlier one. */
	async configure(corpid: string, secret: string): Promise<{ ok: true } | { ok: false; failure: Failure }> {
		try {
			const sealed = await seal(await sealingKeys(this.#host.env), providerObjectName(corpid), secret);
			await this.#host.storage.put(PROVIDER_KEY, { corpid, sealed, updatedAt: Date.now() } satisfies StoredProvider);
			this.#opened = providerAsApp(corpid, secret, "registry");
			return { ok: true };
		} catch (error) {
			if (error instanceof BrokerError) return { ok: false, failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}
}
