// The dashboard in a real browser: Debian's Chromium, driven by playwright-core.
//   node dashboard.mjs BASE_URL SCREENSHOT_DIR
// Run by tests/tests/local/ui.rs against a `faas up` it started; exits non-zero on the first
// thing a user would not see.
import { chromium } from "playwright-core";

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error("usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR");
  process.exit(2);
}

function check(condition, what) {
  if (!condition) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const problems = [];
try {
  const page = await browser.newPage();
  // A CSP violation or a script error is a broken page even when the text looks right.
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) problems.push("console: " + msg.text());
  });
  page.on("pageerror", (err) => problems.push("page error: " + err.message));
  // Failed loads, except the wait for a just-started run's record (404 until it is written).
  page.on("response", (r) => {
    if (r.status() >= 400 && !(r.status() === 404 && r.url().includes("/system/runs/"))) {
      problems.push(`${r.status()} for ${r.url()}`);
    }
  });

  // Functions: the examples, with their state and triggers.
  await page.goto(base + "/ui/");
  await page.waitForSelector('tr[data-function="hello"]');
  await page.waitForSelector('tr[data-function="echo-cgi"]');
  const hello = await page.textContent('tr[data-function="hello"]');
  check(hello.includes("Ready"), "hello is not shown Ready: " + hello);
  check(hello.includes("0 3 * * *") && hello.includes("next"), "hello's schedule and next fire time missing: " + hello);
  await page.screenshot({ path: shots + "/1-functions.png", fullPage: true });

  // Into a function, Run now with a payload.
  await page.click('a[href="/ui/functions/hello"]');
  await page.waitForURL(/\/ui\/functions\/hello$/);
  await page.waitForSelector("text=Last hour");
  await page.screenshot({ path: shots + "/2-function.png", fullPage: true });
  await page.fill("#payload", "from the browser");
  await page.click('button[data-run="hello"]:not([data-schedule])');
  await page.waitForURL(/\/ui\/runs\/hello\.manual\./);

  // The run page updates itself until the run has succeeded; its output is readable.
  await page.waitForFunction(
    () => document.getElementById("phase")?.textContent === "Succeeded",
    null,
    { timeout: 30000 },
  );
  const output = await page.textContent("#output");
  check(output.includes("Hello from faas: POST"), "run output: " + output);
  const runUrl = page.url();
  await page.screenshot({ path: shots + "/3-run.png", fullPage: true });

  // The run is in the history, and the filters narrow it.
  await page.goto(base + "/ui/runs?function=hello&phase=Succeeded");
  const id = decodeURIComponent(runUrl.split("/ui/runs/")[1]);
  await page.waitForSelector(`tr[data-run-id="${id}"]`);
  await page.goto(base + "/ui/runs?function=echo-cgi");
  check((await page.$(`tr[data-run-id="${id}"]`)) === null, "the function filter let another function's run through");
  await page.screenshot({ path: shots + "/4-runs.png", fullPage: true });
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("dashboard: ok");
