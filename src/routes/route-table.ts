/**
 * The broker's own routes and their methods: app.ts answers 405 and the 404 hint from it, and the OpenAPI
 * test (test/e2e/openapi.test.ts) checks that public/openapi.json documents every one. No imports, so that
 * test can read it in Node.
 */
export const ROUTES: Readonly<Record<string, readonly string[]>> = {
	"/token": ["GET"],
	"/token/invalidate": ["POST"],
	"/token/refresh": ["POST"],
	"/ticket": ["GET"],
	"/ticket/refresh": ["POST"],
	"/jssdk/config": ["POST"],
	"/status": ["GET"],
	"/health": ["GET"],
	"/healthz": ["GET"],
	"/admin/apps": ["GET"],
	"/admin/apps/:appid": ["GET", "PUT", "DELETE"],
	"/admin/keys": ["GET", "POST"],
	"/admin/keys/:name": ["PUT", "DELETE"],
	"/admin/registry": ["GET"],
	"/admin/registry/reseal": ["POST"],
	"/admin/components/:component_appid": ["GET", "PUT"],
	"/open/:component_appid/events": ["POST"],
	"/open/:component_appid/auth-url": ["POST"],
	"/open/:component_appid/authorizations": ["POST"],
	"/open/:component_appid/authorizers": ["GET"],
	"/open/:component_appid/authorizers/sync": ["POST"],
	"/admin/suites/:suite_id": ["GET", "PUT"],
	"/wecom-suite/:suite_id/events": ["GET", "POST"],
	"/wecom-suite/:suite_id/install-url": ["POST"],
	"/wecom-suite/:suite_id/installs": ["GET", "POST"],
	"/wecom-suite/:suite_id/installs/sync": ["POST"],
	"/component-token": ["GET"],
	"/suite-token": ["GET"],
	"/provider-token": ["GET"],
};

/**
 * Paths that are static files (public/), served by Cloudflare ahead of the Worker; the Worker answers them
 * only where it runs without its static files, with a 404 saying where the file is.
 */
export const STATIC_FILES: Readonly<Record<string, string>> = {
	"/dashboard": "public/dashboard.html",
	"/openapi.json": "public/openapi.json",
};
