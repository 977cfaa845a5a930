// The dashboard in a real browser: Debian's Chromium, driven by playwright-core.
//   node dashboard.mjs BASE_URL SCREENSHOT_DIR DEAD_LETTER_CALL_ID
// Run by tests/tests/local/ui.rs against a `faas up` it started; exits non-zero on the first
// thing a user would not see.
import { check, launch } from "./browser.mjs";

const [base, shots, deadLetter] = process.argv.slice(2);
if (!base || !shots || !deadLetter) {
  console.error("usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR DEAD_LETTER_CALL_ID");
  process.exit(2);
}

const browser = await launch();
const problems = [];
try {
  const page = await browser.newPage();
  // A CSP violation or a script error is a broken page even when the text looks right.
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) problems.push("console: " + msg.text());
  });
  page.on("pageerror", (err) => problems.push("page error: " + err.message));
  // Failed loads, except the wait for a just-started run's record (404 until it is written)
  // and the refusal this script asks for (a run without a required option).
  let refusalExpected = false;
  page.on("response", (r) => {
    const refused = refusalExpected && r.status() === 400 && r.url().includes("/runs?detach=true");
    if (r.status() >= 400 && !refused && !(r.status() === 404 && r.url().includes("/system/runs/"))) {
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
  const neverRun = await page.textContent('tr[data-function="hello"] td.last-run');
  check(neverRun.includes("never"), "hello's last run before any: " + neverRun);
  await page.screenshot({ path: shots + "/1-functions.png", fullPage: true });

  // Into a function, Run now with a payload.
  await page.click('a[href="/ui/functions/hello"]');
  await page.waitForURL(/\/ui\/functions\/hello$/);
  await page.waitForSelector("text=Last hour");
  // Charts say what they plot: a time axis and a labelled scale.
  const ticks = await page.$$eval("svg.spark text.tick", (ts) => ts.map((t) => t.textContent));
  for (const tick of ["-60 min", "now", "/min", "1 ms", "1 s", "60 s"]) {
    check(ticks.some((t) => t.includes(tick)), `chart label ${tick} missing: ${ticks}`);
  }
  // Cold starts: loading hello compiled it; the phase's time is shown.
  const compile = await page.textContent('table.cold-starts tr[data-phase="compile"]');
  check(/compile\s*[\d.]+ (µs|ms|s)/.test(compile), "hello's compile phase: " + compile);
  await page.screenshot({ path: shots + "/2-function.png", fullPage: true });

  // Suspend the schedule from the page: shown as an operator's override, then resumed.
  const nightly = 'tr[data-schedule="nightly"]';
  await page.click(`${nightly} button[data-action="suspend"]`);
  await page.waitForFunction(
    (row) => document.querySelector(row)?.textContent.includes("suspended by an operator"),
    nightly,
  );
  const suspended = await (await fetch(base + "/system/scheduler")).json();
  check(suspended.schedules.some((x) => x.schedule === "nightly" && x.suspend && x.suspendedBy === "operator"),
    "the scheduler does not hold the suspension: " + JSON.stringify(suspended));
  await page.screenshot({ path: shots + "/2b-suspended.png", fullPage: true });
  await page.click(`${nightly} button[data-action="resume"]`);
  await page.waitForFunction(
    (row) => {
      const text = document.querySelector(row)?.textContent || "";
      return !text.includes("suspended") && /CES?T/.test(text);
    },
    nightly,
  );
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
  const started = await page.textContent("dl");
  check(/Started\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(started), "run times without their zone: " + started);
  await page.screenshot({ path: shots + "/3-run.png", fullPage: true });

  // Run it again from its page: a new run, followed the same way.
  await page.click('button[data-run="hello"]');
  await page.waitForURL((url) => url.href !== runUrl && /\/ui\/runs\/hello\.manual\./.test(url.href));
  await page.waitForFunction(() => document.getElementById("phase")?.textContent === "Succeeded", null, { timeout: 30000 });
  const againUrl = page.url();

  // The functions page shows the last run of the scheduled function.
  await page.goto(base + "/ui/");
  await page.waitForFunction(
    () => document.querySelector('tr[data-function="hello"] td.last-run')?.textContent.includes("Succeeded"),
  );
  const lastRun = await page.textContent('tr[data-function="hello"] td.last-run');
  check(lastRun.includes("UTC"), "last run time without its zone: " + lastRun);

  // The run is in the history, and the filters narrow it.
  await page.goto(base + "/ui/runs?function=hello&phase=Succeeded");
  const id = decodeURIComponent(runUrl.split("/ui/runs/")[1]);
  await page.waitForSelector(`tr[data-run-id="${id}"]`);
  const heads = await page.$$eval("thead th", (ths) => ths.map((th) => th.textContent));
  check(heads.includes("Duration") && heads.includes("Attempt"), "runs columns: " + heads);
  const again = decodeURIComponent(againUrl.split("/ui/runs/")[1]);
  const row = await page.textContent(`tr[data-run-id="${again}"]`);
  check(/ UTC/.test(row) && / s/.test(await page.textContent(`tr[data-run-id="${again}"] td.duration`)),
    "run row without zone or duration: " + row);
  check((await page.textContent(`tr[data-run-id="${again}"] td.attempt`)).trim() === "1", "attempt column: " + row);
  await page.goto(base + "/ui/runs?function=echo-cgi");
  check((await page.$(`tr[data-run-id="${id}"]`)) === null, "the function filter let another function's run through");
  await page.screenshot({ path: shots + "/4-runs.png", fullPage: true });

  // A job with options: one input per option, of its type; a secret's shows nothing.
  await page.goto(base + "/ui/functions/report");
  check((await page.getAttribute("#option-days", "type")) === "number", "days is not a number input");
  // Nothing is pre-filled (what is sent overrides a schedule's values): defaults are hints.
  check((await page.$eval("#option-region", (s) => s.value)) === "", "region is pre-filled");
  check((await page.$eval("#option-region", (s) => s.options[0].textContent)) === "(default: eu)",
    "region's default is not shown as a hint");
  check((await page.getAttribute("#option-token", "type")) === "password", "the secret option is not hidden");
  // Without its required option the run is refused, saying which, and nothing runs.
  refusalExpected = true;
  await page.click('button[data-run="report"]');
  await page.waitForFunction(() => document.getElementById("action-error")?.textContent.includes("option days"));
  refusalExpected = false;
  await page.fill("#option-days", "4");
  await page.selectOption("#option-region", "us");
  await page.fill("#option-token", "t0p-secret");
  await page.click('button[data-run="report"]');
  await page.waitForURL(/\/ui\/runs\/report\.manual\./);
  // The log shows lines while the run is still going, then all of it.
  await page.waitForFunction(() => document.getElementById("runlog")?.textContent.includes("line 2"), null, { timeout: 30000 });
  const whileRunning = await page.textContent("#phase");
  check(whileRunning === "Running", "the log was not live (phase " + whileRunning + ")");
  await page.waitForFunction(
    () => document.getElementById("phase")?.textContent === "Succeeded" &&
      document.getElementById("runlog")?.textContent.includes("done days=4 region=us token=10"),
    null,
    { timeout: 30000 },
  );
  const details = await page.textContent("dl");
  check(details.includes("Exit code") && details.includes("Option days") && details.includes("********"),
    "the run's exit code and options (secret redacted): " + details);
  check(!(await page.content()).includes("t0p-secret"), "the secret option's value is on the page");
  await page.screenshot({ path: shots + "/5-job-log.png", fullPage: true });

  // A dead letter: its request shown as text (the body is markup), replayed with a click.
  await page.goto(base + "/ui/async");
  const letter = `tr[data-call-id="${deadLetter}"]`;
  await page.waitForSelector(letter);
  const request = await page.textContent(letter + " td.request");
  check(request.includes("POST /orders") && request.includes("<b>order 7</b>"),
    "the dead letter's request is not shown as text: " + request);
  check((await page.$(letter + " td.request b")) === null, "the dead letter's body was rendered as markup");
  await page.screenshot({ path: shots + "/6-dead-letter.png", fullPage: true });
  await page.click(letter + ' button[data-dead-letter="replay"]');
  await page.waitForSelector(letter, { state: "detached", timeout: 10000 });
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("dashboard: ok");
