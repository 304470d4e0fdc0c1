/**
 * Structured log lines (one JSON object per line, what Workers Logs indexes). Tokens appear only masked;
 * secrets never. Callers pass only the fields below through `maskToken` or as plain metadata.
 */
export type LogLevel = "info" | "warn" | "error";

export function log(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
	const line = JSON.stringify({ level, event, ...fields });
	if (level === "error") console.error(line);
	else if (level === "warn") console.warn(line);
	else console.log(line);
}

/** Characters of a token safe to show: enough to tell two tokens apart, far too few to use one. */
const VISIBLE_TOKEN_CHARS = 8;

export function maskToken(token: string): string {
	return `${token.slice(0, VISIBLE_TOKEN_CHARS)}…(${token.length} chars)`;
}
