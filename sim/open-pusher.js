// @ts-check
/**
 * Delivers the open platform's pushes (open-pushes.js) to each component's event URL, and WeCom suites'
 * instruction callbacks (wecom-suite-pushes.js) to each suite's callback URL (within 1000 ms, WeCom's budget),
 * as WeChat does: POST
 * `event_url?signature=…&timestamp=…&nonce=…&encrypt_type=aes&msg_signature=…` with the XML envelope, and a
 * push counts as delivered only when the answer is exactly `success` within 5 s (D-trbl: anything else,
 * an HTML error page included, is a failure). WeChat does not retry a failed push; the next ticket comes
 * on schedule. The only I/O of the open platform; server.js runs it on a timer.
 */

/** WeChat's budget for the answer (D-trbl: "开发者5秒内没有返回"). */
export const PUSH_ANSWER_BUDGET_MS = 5_000;
/** WeCom's budget for an instruction callback's answer (W-90642: 1000 ms). */
export const SUITE_ANSWER_BUDGET_MS = 1_000;
/** How often the pusher looks for due pushes, in real ms; pushes are due in simulated time. */
export const PUSH_TICK_MS = 1_000;

/**
 * One round: every push due now, the open platform's and WeCom suites', delivered; resolves when all are answered.
 * @param {import("./wechat-sim.js").WeChatSim} sim
 * @param {typeof fetch} [send]
 */
export async function deliverDuePushes(sim, send = fetch) {
  await Promise.all([
    ...sim.pushesToDeliver().map(async ({ componentAppid, eventUrl, pushes }) => {
      // In order, one at a time: a later ticket must not overtake an earlier one on the way.
      for (const push of pushes) sim.recordPushDelivery(componentAppid, await deliver(send, eventUrl, push, PUSH_ANSWER_BUDGET_MS));
    }),
    ...sim.suitePushesToDeliver().map(async ({ suiteId, callbackUrl, pushes }) => {
      for (const push of pushes) sim.recordSuitePushDelivery(suiteId, await deliver(send, callbackUrl, push, SUITE_ANSWER_BUDGET_MS));
    }),
  ]);
}

/**
 * One push, answered exactly `success` within `budgetMs` or failed. The budget is a timer of its own raced
 * against the answer, not only an abort signal: Node's fetch leaves a body read pending forever when the
 * signal fires after the answer's headers came and before its body did (nodejs/node#56917), which stalled
 * every later push of the pusher (a receiver answering near its budget under load does just that).
 * @param {typeof fetch} send @param {string} eventUrl @param {{ query: string, body: string }} push @param {number} budgetMs
 * @returns {Promise<boolean>}
 */
async function deliver(send, eventUrl, push, budgetMs) {
  const url = `${eventUrl}${eventUrl.includes("?") ? "&" : "?"}${push.query}`;
  const controller = new AbortController();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(false);
    }, budgetMs);
  });
  const answered = (async () => {
    const res = await send(url, { method: "POST", headers: { "content-type": "text/xml" }, body: push.body, signal: controller.signal });
    return res.status === 200 && (await res.text()) === "success";
  })().catch(() => false);
  try {
    return /** @type {boolean} */ (await Promise.race([answered, late]));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `deliverDuePushes` every PUSH_TICK_MS until stopped; one round at a time.
 * @param {import("./wechat-sim.js").WeChatSim} sim
 * @returns {() => Promise<void>} stops it, after the round under way
 */
export function startPusher(sim) {
  /** @type {Promise<void>} */
  let round = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    round = deliverDuePushes(sim).catch((error) => console.error("wechat-sim: push round failed", error)).finally(() => {
      busy = false;
    });
  }, PUSH_TICK_MS);
  // The pusher alone never keeps a process alive.
  timer.unref();
  return async () => {
    clearInterval(timer);
    await round;
  };
}
