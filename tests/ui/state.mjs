// The state a function is in, as the dashboard shows it: a real browser (Debian's Chromium,
// playwright-core) on a `faas up` whose `hello` is Degraded (a failed update), `consumer`
// Degraded (its SQS trigger in Error) and `crashy` Not ready.
//   node state.mjs BASE_URL
// Run by tests/tests/local/status.rs; exits non-zero on the first thing a user would not see.
import { check, launch } from "./browser.mjs";

const [base] = process.argv.slice(2);
if (!base) {
  console.error("usage: node state.mjs BASE_URL");
  process.exit(2);
}

const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(base + "/ui/");
  for (const [name, state, reason] of [
    ["hello", "Degraded", "the last update failed"],
    ["consumer", "Degraded", "SQS trigger"],
    ["crashy", "Not ready", "exited with status 3"],
  ]) {
    const row = `tr[data-function="${name}"]`;
    await page.waitForSelector(`${row} [data-state="${state}"]`, { timeout: 10000 });
    const text = await page.textContent(row);
    check(text.includes(reason), `${name}: no reason "${reason}" in: ${text}`);
  }
  // The function's own page shows the same state and reason.
  await page.goto(base + "/ui/functions/consumer");
  await page.waitForSelector('[data-state="Degraded"]', { timeout: 10000 });
  const body = await page.textContent("body");
  check(body.includes("SQS trigger"), "the function page hides the reason: " + body);
} finally {
  await browser.close();
}
console.log("state: ok");
