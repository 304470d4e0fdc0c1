/** What the global setups provide: test/global-setup.ts `simUrl` (worker tests), test/e2e/global-setup.ts `bundlePath`. */
declare module "vitest" {
	export interface ProvidedContext {
		simUrl: string;
		bundlePath: string;
	}
}
export {};
