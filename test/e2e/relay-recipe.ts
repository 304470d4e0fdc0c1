/** relay/nginx.conf, the relay recipe the README deploys, made runnable on a test machine for the e2e tests. */
import { readFileSync } from "node:fs";

const RECIPE = readFileSync("relay/nginx.conf", "utf8");

/**
 * The recipe as an operator deploys it, with only what a test machine needs changed: a loopback port
 * instead of TLS on 443, the simulator instead of WeChat's hosts, and files inside the test's own
 * directory. Every substitution must hit, so the recipe cannot drift away from what is tested.
 */
export function relayTestConf(simUrl: string, port: number, relayKey: string): (dir: string) => string {
	return (dir: string): string => {
		const edits: [RegExp, string][] = [
			[/^pid .*;$/m, `pid ${dir}/nginx.pid;`],
			[/^error_log \S+ crit;$/m, `error_log ${dir}/logs/error.log crit;`],
			[/access_log \S+ relay;/, `access_log ${dir}/logs/access.log relay;`],
			[/^worker_processes auto;$/m, "worker_processes 1;"],
			[/listen 443 ssl;.*$/m, `listen 127.0.0.1:${port};`],
			[/^\s*ssl_certificate .*$/m, ""],
			[/^\s*ssl_certificate_key .*$/m, ""],
			[/https:\/\/api\.weixin\.qq\.com\//, `${simUrl}/`],
			[/https:\/\/qyapi\.weixin\.qq\.com\//, `${simUrl}/`],
			[/"CHANGE-ME-to-openssl-rand-hex-24"/, `"${relayKey}"`],
			[/^http \{$/m, ["http {", ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `\t${t}_temp_path ${dir}/${t}_temp;`)].join("\n")],
		];
		return edits.reduce((conf, [pattern, replacement]) => {
			if (!pattern.test(conf)) throw new Error(`relay/nginx.conf no longer has ${pattern}: update this test with the recipe`);
			return conf.replace(pattern, replacement);
		}, RECIPE);
	};
}
