/** What test/global-setup.ts provides to the worker tests (`inject("simUrl")`). */
declare module "vitest" {
	export interface ProvidedContext {
		simUrl: string;
	}
}
export {};
