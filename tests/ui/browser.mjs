// What every dashboard check shares: Debian's Chromium through playwright-core (no browser
// download), headless and offline, and the one way a check fails.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export function check(condition, what) {
  if (!condition) throw new Error(what);
}
