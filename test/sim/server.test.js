// @ts-check
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startSimulator } from "../../sim/server.js";
import { classicToken, control, useSimulator } from "./helpers.js";

const APP = { appid: "wxserver00000001", secret: "server-secret" };
const CORP_APP = { corpid: "wwserver00000001", agentid: 1000002, secret: "server-corp-secret" };

describe("startSimulator", () => {
  const h = useSimulator([APP]);

  it("serves on 127.0.0.1 with the apps it was given", async () => {
    expect(h.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(h.url.endsWith(`:${h.simulator.port}`)).toBe(true);
    expect((await classicToken(h.url, APP)).access_token).toBeTypeOf("string");
  });

  it("answers 413 to a body over 64 KiB", async () => {
    const response = await fetch(`${h.url}/cgi-bin/stable_token`, { method: "POST", body: "x".repeat(64 * 1024 + 1) });
    expect(response.status).toBe(413);
    await response.text();
  });

  it("accepts a body of exactly 64 KiB", async () => {
    const response = await fetch(`${h.url}/cgi-bin/stable_token`, { method: "POST", body: " ".repeat(64 * 1024) });
    expect(response.status).toBe(200);
    expect(JSON.parse(await response.text()).errcode).toBe(47001);
  });

  it("refuses to start with an invalid app", async () => {
    await expect(startSimulator({ apps: [{ appid: "wxbad" }] })).rejects.toThrow(/secret/);
  });

  it("follows the real clock by default", async () => {
    const simulator = await startSimulator();
    try {
      const before = Date.now();
      const { body } = await control(simulator.url, "GET", "clock");
      expect(body.now_ms).toBeGreaterThanOrEqual(before);
      expect(body.now_ms).toBeLessThanOrEqual(Date.now());
    } finally {
      await simulator.close();
    }
  });
});

describe("npm run sim (sim/main.js)", () => {
  it("prints its URL, serves the configured apps and exits cleanly on SIGTERM", async () => {
    const main = fileURLToPath(new URL("../../sim/main.js", import.meta.url));
    const child = spawn(process.execPath, [main, "--port", "0"], {
      env: { ...process.env, WXSIM_APPS: JSON.stringify([APP]), WXSIM_WECOM_APPS: JSON.stringify([CORP_APP]) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      // The async iterator buffers lines that arrive while the test is busy elsewhere.
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const first = (await lines.next()).value;
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(first)?.[1];
      expect(url).toBeDefined();
      const token = (await classicToken(/** @type {string} */ (url), APP)).access_token;
      const minted = (await lines.next()).value;
      expect(minted).toContain(token.slice(0, 8));
      expect(minted).not.toContain(token.slice(0, 9));
      const wecom = await fetch(`${url}/qyapi/cgi-bin/gettoken?corpid=${CORP_APP.corpid}&corpsecret=${CORP_APP.secret}`);
      expect(JSON.parse(await wecom.text()).errcode).toBe(0);
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      expect(code).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("registers the demo app when WXSIM_APPS is unset", async () => {
    const main = fileURLToPath(new URL("../../sim/main.js", import.meta.url));
    /** @type {NodeJS.ProcessEnv} */
    const env = { ...process.env, WXSIM_PORT: "0" };
    delete env.WXSIM_APPS;
    const child = spawn(process.execPath, [main], { env, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const [first] = /** @type {[string]} */ (await once(createInterface({ input: child.stdout }), "line"));
      const url = /** @type {string} */ (/(http:\/\/127\.0\.0\.1:\d+)/.exec(first)?.[1]);
      const body = await classicToken(url, { appid: "wxdemo0000000001", secret: "demo-secret-not-real" });
      expect(body.expires_in).toBe(7200);
      child.kill("SIGINT");
      expect((await once(child, "exit"))[0]).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
