// @ts-check
/**
 * The simulator's callback crypto (sim/callback-crypto.js, Node's crypto) against the same vectors the
 * broker's WebCrypto implementation is tested with (test/worker/callback-crypto.test.ts): pushes the
 * simulator encrypts are what WeChat would send.
 */
import { describe, expect, it } from "vitest";
import * as wecom from "@wecom/crypto";
import { decrypt, encrypt, RANDOM_STYLES, randomPrefix, sealPush, signature, xmlMessage } from "../../sim/callback-crypto.js";

const V1 = {
  key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", token: "pamtest", appid: "wxb11529c136998cb6",
  encrypted: "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
};
const WECOM_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const V2_ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";

describe("the simulator's callback crypto", () => {
  it("reproduces V1 and its msg_signature, and V2's echostr and signature", () => {
    expect(encrypt(V1.key, "我是中文abcd123", V1.appid, Buffer.from("aaaabbbbccccdddd"))).toBe(V1.encrypted);
    expect(signature(V1.token, "1409304348", "xxxxxx", V1.encrypted)).toBe("82c962d39941aa48552f90ef55aa323dc620cc10");
    expect(decrypt(WECOM_KEY, V2_ECHOSTR)).toMatchObject({ message: "5927782489442352469", receiverId: "wx49f0ab532d5d035a" });
    expect(signature("123456", "1411443780", "437374425", V2_ECHOSTR)).toBe("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96");
  });

  it("makes random prefixes of all three styles senders use, 16 bytes each", () => {
    for (const style of RANDOM_STYLES) {
      const prefix = randomPrefix(style);
      expect(prefix.length).toBe(16);
      const { message, random } = decrypt(V1.key, encrypt(V1.key, "<xml/>", V1.appid, prefix));
      expect([message, random.equals(prefix)]).toEqual(["<xml/>", true]);
    }
    expect(/^[0-9]{16}$/.test(randomPrefix("digits").toString("latin1"))).toBe(true);
  });

  it("pads to whole 32-byte blocks: a 64-byte plaintext becomes 96 bytes", () => {
    const message = "a".repeat(64 - 20 - V1.appid.length);
    expect(Buffer.from(encrypt(V1.key, message, V1.appid), "base64").length).toBe(96);
  });

  it("seals a push as WeChat sends it: signature and msg_signature in the query, AppId and Encrypt in the body", () => {
    const push = sealPush({ token: V1.token, encodingAesKey: V1.key, componentAppid: V1.appid, message: xmlMessage({ A: "1" }), timestamp: "1700000000", nonce: "n1" });
    expect(push.query.get("msg_signature")).toBe(signature(V1.token, "1700000000", "n1", push.encrypted));
    expect(push.query.get("signature")).toBe(signature(V1.token, "1700000000", "n1"));
    expect(push.query.get("encrypt_type")).toBe("aes");
    expect(push.body).toBe(`<xml><AppId><![CDATA[${V1.appid}]]></AppId><Encrypt><![CDATA[${push.encrypted}]]></Encrypt></xml>`);
    expect(decrypt(V1.key, push.encrypted)).toMatchObject({ message: "<xml><A><![CDATA[1]]></A></xml>", receiverId: V1.appid });
  });

  it("agrees with @wecom/crypto both ways, for every random-prefix style, and on V2", () => {
    expect(wecom.decrypt(WECOM_KEY, V2_ECHOSTR)).toMatchObject({ message: "5927782489442352469", id: "wx49f0ab532d5d035a" });
    for (const style of RANDOM_STYLES) {
      const prefix = randomPrefix(style);
      const message = xmlMessage({ SuiteId: "wwsuite", InfoType: "suite_ticket", TimeStamp: 1700000000, SuiteTicket: "t".repeat(style.length * 7) });
      const ours = encrypt(WECOM_KEY, message, "wwsuite", prefix);
      expect(ours).toBe(wecom.encrypt(WECOM_KEY, message, "wwsuite", prefix));
      expect(wecom.decrypt(WECOM_KEY, ours)).toMatchObject({ message, id: "wwsuite" });
      expect(decrypt(WECOM_KEY, wecom.encrypt(WECOM_KEY, message, "wwsuite"))).toMatchObject({ message, receiverId: "wwsuite" });
      expect(signature("tok", "1", "n", ours)).toBe(wecom.getSignature("tok", "1", "n", ours));
    }
  });
});
