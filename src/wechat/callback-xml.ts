/**
 * A minimal, strict reader for the XML WeChat's callbacks carry: `<xml>` with named children whose values
 * are text or one CDATA section, e.g. `<xml><AppId><![CDATA[wx…]]></AppId><CreateTime>1413192605</CreateTime></xml>`,
 * and a child may hold children of its own (notify_third_fasteregister's `<info>`), to MAX_DEPTH.
 *
 * Not an XML parser, on purpose: these messages are flat and machine-written, and whatever this reader does
 * not know it refuses (null) rather than guess at: attributes, declarations, comments, processing
 * instructions, DOCTYPE, entity or character references, self-closing tags, mixed content, two CDATA
 * sections in one value, a name given twice at one level (which of two AppIds would count?), and anything
 * after the root. Whitespace between elements is ignored (WeChat's own samples put newlines there); a
 * value's text is kept exactly. It runs in time linear in its input, which the route bounds (64 KiB).
 */

export type XmlValue = string | XmlFields;
export type XmlFields = ReadonlyMap<string, XmlValue>;

/** `<xml>` is depth 1; notify_third_fasteregister's `<info>` fields are at depth 3. */
const MAX_DEPTH = 3;
/** Element names as WeChat writes them: ASCII letters, digits and underscores. */
const NAME = /[A-Za-z_][A-Za-z0-9_]{0,63}/y;
const WHITESPACE = /[ \t\r\n]*/y;
const CDATA_OPEN = "<![CDATA[";
const CDATA_CLOSE = "]]>";

/** The fields of `<xml>…</xml>`, or null when `text` is not a message this reader can read exactly. */
export function readXml(text: string): XmlFields | null {
	const reader = new Reader(text);
	reader.skipWhitespace();
	const root = reader.element(1);
	reader.skipWhitespace();
	if (!root || root.name !== "xml" || !reader.atEnd() || typeof root.value === "string") return null;
	return root.value;
}

/** A text field of `fields`, or undefined when it is absent or holds elements. */
export function textField(fields: XmlFields, name: string): string | undefined {
	const value = fields.get(name);
	return typeof value === "string" ? value : undefined;
}

class Reader {
	readonly #text: string;
	#at = 0;

	constructor(text: string) {
		this.#text = text;
	}

	atEnd(): boolean {
		return this.#at === this.#text.length;
	}

	skipWhitespace(): void {
		WHITESPACE.lastIndex = this.#at;
		WHITESPACE.exec(this.#text);
		this.#at = WHITESPACE.lastIndex;
	}

	/** `<Name>value</Name>` at the cursor; null on anything else. */
	element(depth: number): { name: string; value: XmlValue } | null {
		if (depth > MAX_DEPTH || !this.#take("<")) return null;
		const name = this.#name();
		if (!name || !this.#take(">")) return null;
		const value = this.#value(depth);
		if (value === null || !this.#take(`</${name}>`)) return null;
		return { name, value };
	}

	/** What an element holds: one CDATA section, plain text, or elements (whitespace around them ignored). */
	#value(depth: number): XmlValue | null {
		if (this.#text.startsWith(CDATA_OPEN, this.#at)) {
			const start = this.#at + CDATA_OPEN.length;
			const end = this.#text.indexOf(CDATA_CLOSE, start);
			if (end < 0) return null;
			this.#at = end + CDATA_CLOSE.length;
			return this.#text.slice(start, end);
		}
		const start = this.#at;
		this.skipWhitespace();
		if (this.#text.startsWith("<", this.#at) && !this.#text.startsWith("</", this.#at)) return this.#children(depth);
		this.#at = start;
		const end = this.#text.indexOf("<", start);
		if (end < 0) return null;
		const text = this.#text.slice(start, end);
		// `&` starts an entity or character reference, which this reader does not decode; `>` in text is legal
		// XML but never WeChat's, and refusing it keeps `]]>` out of plain text.
		if (/[&>]/.test(text)) return null;
		this.#at = end;
		return text;
	}

	#children(depth: number): XmlFields | null {
		const fields = new Map<string, XmlValue>();
		while (!this.#text.startsWith("</", this.#at)) {
			const child = this.element(depth + 1);
			if (!child || fields.has(child.name)) return null;
			fields.set(child.name, child.value);
			this.skipWhitespace();
			if (this.atEnd()) return null;
		}
		return fields;
	}

	#name(): string | null {
		NAME.lastIndex = this.#at;
		const match = NAME.exec(this.#text);
		if (!match) return null;
		this.#at = NAME.lastIndex;
		return match[0];
	}

	#take(literal: string): boolean {
		if (!this.#text.startsWith(literal, this.#at)) return false;
		this.#at += literal.length;
		return true;
	}
}
