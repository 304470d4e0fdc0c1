// @ts-check
import { describe, expect, it } from "vitest";
import { cardSignature, jsapiSignature, signedUrl } from "../../sim/jssdk-signature.js";

// The official vectors (WECHAT-API.md, JS-SDK appendix 1 and the card documentation).
const TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
const NONCE = "Wm3WZYTPz0wzccnW";
const TIMESTAMP = "1414587457";

describe("JS-SDK signatures", () => {
  it("signs wx.config like the official vector with a query string", () => {
    expect(jsapiSignature({ ticket: TICKET, nonceStr: NONCE, timestamp: TIMESTAMP, url: "http://mp.weixin.qq.com?params=value" })).toBe(
      "0f9de62fce790f9a083d5c99e95740ceb90c27ed",
    );
  });

  it("signs wx.config like the official vector without a query string", () => {
    expect(jsapiSignature({ ticket: TICKET, nonceStr: NONCE, timestamp: TIMESTAMP, url: "http://mp.weixin.qq.com" })).toBe(
      "f4d90daf4b3bca3078ab155816175ba34c443a7b",
    );
  });

  it("signs a card's cardExt like the official vector, whatever the order of the values", () => {
    const values = ["ojZ8YtyVyr30HheH3CM73y7h4jJE", "1404896688", "pjZ8Yt1XGILfi-FUsewpnnolGgZk", "1434008071", undefined, "123"];
    expect(cardSignature(values)).toBe("f137ab68b7f8112d20ee528ab6074564e2796250");
    expect(cardSignature([...values].reverse())).toBe("f137ab68b7f8112d20ee528ab6074564e2796250");
    expect(cardSignature([...values, ""])).toBe("f137ab68b7f8112d20ee528ab6074564e2796250");
  });

  it("drops the #fragment of the page URL and nothing else", () => {
    expect(signedUrl("https://shop.example/p?a=1#/cart?b=2")).toBe("https://shop.example/p?a=1");
    expect(signedUrl("https://shop.example/p?a=%20")).toBe("https://shop.example/p?a=%20");
  });
});
