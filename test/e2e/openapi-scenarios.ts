/**
 * Reads public/openapi.json the way its info.description says its examples work: every response example
 * names a request, made of the parameter and request-body examples of the same name (a parameter without
 * one takes its first example). Each such request is a Scenario that test/e2e/openapi.test.ts sends.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Doc = Record<string, any>;

export const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
/** The id the document is registered under in Ajv, so `#/components/…` references resolve against it. */
const DOC_ID = "https://wx-token-broker.invalid/openapi.json";

export interface Operation {
	readonly id: string;
	readonly method: string;
	readonly path: string;
	readonly pointer: string;
	readonly op: Doc;
	readonly secured: boolean;
}

export interface Scenario {
	readonly operation: Operation;
	readonly name: string;
	readonly status: number;
	readonly mediaType: string;
	/** The documented answer. */
	readonly example: Json;
	/** JSON pointer (in the document) to the answer's schema. */
	readonly schemaPointer: string;
	readonly headers: readonly string[];
	readonly path: string;
	readonly query: ReadonlyArray<readonly [string, string]>;
	readonly body: { readonly mediaType: string; readonly value: Json; readonly schemaPointer: string } | null;
}

const escape = (part: string) => part.replaceAll("~", "~0").replaceAll("/", "~1");

export function operations(doc: Doc): Operation[] {
	const out: Operation[] = [];
	for (const [path, item] of Object.entries<Doc>(doc.paths)) {
		for (const method of METHODS) {
			const op = item[method];
			if (!op) continue;
			const security = op.security ?? doc.security ?? [];
			out.push({ id: op.operationId, method: method.toUpperCase(), path, pointer: `#/paths/${escape(path)}/${method}`, op, secured: security.length > 0 });
		}
	}
	return out;
}

/** `#/a/b` in the document. */
export function resolve(doc: Doc, pointer: string): Doc {
	return pointer.slice(2).split("/").reduce<Doc>((node, part) => node?.[part.replaceAll("~1", "/").replaceAll("~0", "~")], doc);
}

/** A Reference Object's target (one level: the document's references point at components directly). */
function deref(doc: Doc, node: Doc, pointer: string): { node: Doc; pointer: string } {
	return typeof node.$ref === "string" ? { node: resolve(doc, node.$ref), pointer: node.$ref } : { node, pointer };
}

function names(examples: Doc | undefined): string[] {
	return examples ? Object.keys(examples) : [];
}

/** An operation's scenarios, in the order their names first appear: request body, parameters, responses. */
export function scenarios(doc: Doc, operation: Operation): Scenario[] {
	const { op, pointer } = operation;
	const params: Doc[] = (op.parameters ?? []).map((p: Doc) => deref(doc, p, "").node);
	const bodyContent: Doc | undefined = op.requestBody?.content;
	const bodyType = bodyContent && Object.keys(bodyContent)[0];
	const answers: { status: number; mediaType: string; name: string; example: Json; schemaPointer: string; headers: string[] }[] = [];
	for (const [status, raw] of Object.entries<Doc>(op.responses ?? {})) {
		const { node: response, pointer: responsePointer } = deref(doc, raw, `${pointer}/responses/${status}`);
		for (const [mediaType, content] of Object.entries<Doc>(response.content ?? {})) {
			for (const [name, example] of Object.entries<Doc>(content.examples ?? {})) {
				answers.push({ status: Number(status), mediaType, name, example: example.value, schemaPointer: `${responsePointer}/content/${escape(mediaType)}/schema`, headers: Object.keys(response.headers ?? {}) });
			}
		}
	}
	const order = [...new Set([...names(bodyType ? bodyContent![bodyType].examples : undefined), ...params.flatMap((p) => names(p.examples)), ...answers.map((a) => a.name)])];
	return order.map((name) => {
		const matching = answers.filter((a) => a.name === name);
		if (matching.length !== 1) throw new Error(`${operation.id}: the request example "${name}" has ${matching.length} documented answers; it needs exactly one`);
		const answer = matching[0]!;
		const value = (p: Doc): string | undefined => {
			const chosen = p.examples?.[name] ?? Object.values<Doc>(p.examples ?? {})[0];
			return chosen === undefined ? undefined : String(chosen.value);
		};
		let path = operation.path;
		const query: [string, string][] = [];
		for (const p of params) {
			const v = value(p);
			if (v === undefined) {
				if (p.required) throw new Error(`${operation.id}: the required ${p.in} parameter ${p.name} has no example`);
				continue;
			}
			if (p.in === "path") path = path.replace(`{${p.name}}`, v);
			else if (p.in === "query") query.push([p.name, v]);
		}
		const bodyExamples = bodyType ? bodyContent![bodyType].examples : undefined;
		const bodyExample = bodyExamples?.[name] ?? (bodyExamples && Object.values<Doc>(bodyExamples)[0]);
		const body = bodyType && bodyExample ? { mediaType: bodyType, value: bodyExample.value as Json, schemaPointer: `${pointer}/requestBody/content/${escape(bodyType)}/schema` } : null;
		return { operation, ...answer, path, query, body };
	});
}

/** JSON Schema 2020-12 (OpenAPI 3.1's dialect), strict, with formats; the whole document is its root. */
export function schemaValidator(doc: Doc): (pointer: string) => ValidateFunction {
	const ajv = new Ajv2020({ strict: true, allErrors: true });
	addFormats.default(ajv);
	// The OpenAPI Object's own fields: annotations to Ajv, so only real schemas are held to strict mode.
	ajv.addVocabulary(["openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components", "security", "tags", "externalDocs"]);
	ajv.addSchema({ ...doc, $id: DOC_ID });
	return (pointer) => {
		const validate = ajv.getSchema(`${DOC_ID}${pointer}`);
		if (!validate) throw new Error(`no schema at ${pointer}`);
		return validate;
	};
}
