// The two SDKs the e2e drives ship no types; scripts/e2e-sdk.mjs uses them as the untyped CommonJS they are.
declare module "co-wechat-api";
declare module "wechat-api";
