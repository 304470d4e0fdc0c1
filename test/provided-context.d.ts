/** What the global setups provide: test/global-setup.ts `simUrl` and `wecomVectors` (worker tests), test/e2e/global-setup.ts `bundlePath`. */
declare module "vitest" {
	export interface ProvidedContext {
		simUrl: string;
		wecomVectors: import("./wecom-crypto-vectors").WeComVector[];
		bundlePath: string;
	}
}
export {};
