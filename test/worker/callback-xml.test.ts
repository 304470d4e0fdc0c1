/**
 * The strict reader of callback XML (src/wechat/callback-xml.ts): WeChat's own shapes read exactly, and
 * everything else refused (null), never guessed at.
 */
import { describe, expect, it } from "vitest";
import { readXml, textField, type XmlFields } from "../../src/wechat/callback-xml";

const plain = (fields: XmlFields | null): unknown => fields && Object.fromEntries([...fields].map(([k, v]) => [k, typeof v === "string" ? v : plain(v)]));

describe("what it reads", () => {
	it("reads a component_verify_ticket push: CDATA and bare numbers", () => {
		const xml = "<xml><AppId><![CDATA[wx3b1d2c4a5e6f7081]]></AppId><CreateTime>1413192605</CreateTime>"
			+ "<InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@a<b>&c]]></ComponentVerifyTicket></xml>";
		const fields = readXml(xml);
		expect(plain(fields)).toEqual({
			AppId: "wx3b1d2c4a5e6f7081", CreateTime: "1413192605", InfoType: "component_verify_ticket", ComponentVerifyTicket: "ticket@@@a<b>&c",
		});
		expect(textField(fields!, "CreateTime")).toBe("1413192605");
		expect(textField(fields!, "Missing")).toBeUndefined();
	});

	it("reads an envelope with newlines between its elements, and empty values", () => {
		const xml = "\n<xml>\n<ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<Encrypt><![CDATA[abc=]]></Encrypt>\n<AgentID><![CDATA[]]></AgentID>\n<Empty></Empty>\n</xml>\n";
		expect(plain(readXml(xml))).toEqual({ ToUserName: "wx49f0ab532d5d035a", Encrypt: "abc=", AgentID: "", Empty: "" });
	});

	it("keeps a value's own whitespace", () => {
		expect(plain(readXml("<xml><A> x </A><B><![CDATA[ y\n]]></B></xml>"))).toEqual({ A: " x ", B: " y\n" });
	});

	it("reads nested fields (notify_third_fasteregister's info) as fields, not as text", () => {
		const xml = "<xml><InfoType><![CDATA[notify_third_fasteregister]]></InfoType><status>0</status>"
			+ "<info><name><![CDATA[公司]]></name><code_type>1</code_type></info></xml>";
		const fields = readXml(xml)!;
		expect(plain(fields)).toEqual({ InfoType: "notify_third_fasteregister", status: "0", info: { name: "公司", code_type: "1" } });
		expect(textField(fields, "info")).toBeUndefined();
	});
});

describe("what it refuses", () => {
	it.each([
		["an empty string", ""],
		["an empty root", "<xml></xml>"],
		["another root", "<root><A>1</A></root>"],
		["a root with text", "<xml>text</xml>"],
		["an XML declaration", "<?xml version=\"1.0\"?><xml><A>1</A></xml>"],
		["a DOCTYPE", "<!DOCTYPE xml [<!ENTITY e \"x\">]><xml><A>&e;</A></xml>"],
		["a comment", "<xml><!-- c --><A>1</A></xml>"],
		["a processing instruction", "<xml><?pi x?><A>1</A></xml>"],
		["an attribute", "<xml><A id=\"1\">1</A></xml>"],
		["a self-closing element", "<xml><A/></xml>"],
		["an entity reference", "<xml><A>a&amp;b</A></xml>"],
		["a character reference", "<xml><A>&#65;</A></xml>"],
		["a stray >", "<xml><A>a>b</A></xml>"],
		["mixed content", "<xml><A>text<B>1</B></A></xml>"],
		["text after the children", "<xml><A>1</A>tail</xml>"],
		["two CDATA sections in one value", "<xml><A><![CDATA[a]]><![CDATA[b]]></A></xml>"],
		["CDATA followed by text", "<xml><A><![CDATA[a]]>b</A></xml>"],
		["an unterminated CDATA section", "<xml><A><![CDATA[a</A></xml>"],
		["a name given twice (which AppId would count?)", "<xml><AppId>wxa</AppId><AppId>wxb</AppId></xml>"],
		["a name given twice in a nested element", "<xml><info><a>1</a><a>2</a></info></xml>"],
		["a mismatched closing tag", "<xml><A>1</B></xml>"],
		["an unclosed element", "<xml><A>1</A>"],
		["an unclosed root at the end of input", "<xml><A>1</A"],
		["a second root", "<xml><A>1</A></xml><xml><A>2</A></xml>"],
		["anything after the root", "<xml><A>1</A></xml>x"],
		["nesting deeper than three levels", "<xml><a><b><c>1</c></b></a></xml>"],
		["a name with characters WeChat never uses", "<xml><a-b>1</a-b></xml>"],
		["a namespaced name", "<xml><x:A>1</x:A></xml>"],
		["a name too long to be WeChat's", `<xml><${"A".repeat(65)}>1</${"A".repeat(65)}></xml>`],
		["whitespace inside a tag", "<xml><A >1</A ></xml>"],
	])("refuses %s", (_what, xml) => {
		expect(readXml(xml)).toBeNull();
	});

	it("reads a long message in one pass (64 KiB of fields)", () => {
		const body = Array.from({ length: 2_000 }, (_, i) => `<F${i}><![CDATA[${"v".repeat(20)}]]></F${i}>`).join("");
		expect(readXml(`<xml>${body}</xml>`)?.size).toBe(2_000);
	});
});
