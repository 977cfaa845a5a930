// The dashboard's only script. The server renders every page; this re-renders the live part
// every 2 seconds and sends the actions (Run now / Run again, Cancel, Suspend / Resume a
// schedule, Replay / Delete a dead letter) to the management API.
"use strict";

const REFRESH_MS = 2000;

// Every state-changing management request carries this header: an HTML form cannot send it,
// and another site's script cannot either (it needs a CORS preflight the server never grants).
const ACTION_HEADERS = { "X-Faas-Request": "1" };

async function refresh() {
  const live = document.getElementById("live");
  if (!live || document.hidden) return;
  const reply = await fetch(location.href, { headers: { "X-Faas-Fragment": "1" } });
  if (!reply.ok) return;
  live.innerHTML = await reply.text();
  const stamp = document.getElementById("updated");
  if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
}

setInterval(() => refresh().catch(() => {}), REFRESH_MS);

// A run page's whole log: read piece by piece from the offset reached, appended as text
// (never as HTML), followed while the run goes on.
async function followLog() {
  const pre = document.getElementById("runlog");
  if (!pre) return;
  const url = "/system/runs/" + encodeURIComponent(pre.dataset.log) + "/log?offset=";
  let offset = 0;
  for (;;) {
    const reply = await fetch(url + offset);
    if (!reply.ok) {
      pre.append("(no log: " + reply.statusText + ")");
      return;
    }
    const piece = await reply.json();
    if (piece.text) pre.append(piece.text);
    const advanced = piece.next > offset;
    offset = piece.next;
    if (piece.done && !advanced) return;
    if (!advanced) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

followLog().catch(() => {});

function say(text) {
  const box = document.getElementById("action-error");
  if (box) box.textContent = text;
}

document.addEventListener("click", async (event) => {
  const run = event.target.closest("[data-run]");
  if (run) {
    event.preventDefault();
    const fn = run.dataset.run;
    const schedule = run.dataset.schedule;
    const payload = document.getElementById("payload");
    let url = "/system/functions/" + encodeURIComponent(fn) + "/runs?detach=true";
    if (schedule) url += "&schedule=" + encodeURIComponent(schedule);
    // The options typed in the form (empty: not given, so the schedule's or the default).
    for (const input of document.querySelectorAll("[data-option]")) {
      if (input.value !== "") {
        url += "&option=" + encodeURIComponent(input.dataset.option + "=" + input.value);
      }
    }
    run.disabled = true;
    try {
      const reply = await fetch(url, {
        method: "POST",
        headers: ACTION_HEADERS,
        body: payload ? payload.value : "",
      });
      const body = await reply.json();
      if (!reply.ok) return say(body.error || reply.statusText);
      const id = encodeURIComponent(body.metadata.name);
      // A detached run is recorded a moment after it is accepted: open its page once it is.
      for (let i = 0; i < 50; i++) {
        if ((await fetch("/system/runs/" + id)).ok) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      location.href = "/ui/runs/" + id;
    } catch (e) {
      say(String(e));
    } finally {
      run.disabled = false;
    }
    return;
  }
  const suspend = event.target.closest("[data-suspend]");
  if (suspend) {
    event.preventDefault();
    const url = "/system/functions/" + encodeURIComponent(suspend.dataset.suspend) +
      "/schedules/" + encodeURIComponent(suspend.dataset.schedule) + "/" + suspend.dataset.action;
    suspend.disabled = true;
    try {
      const reply = await fetch(url, { method: "POST", headers: ACTION_HEADERS });
      if (!reply.ok) say((await reply.json()).error || reply.statusText);
    } finally {
      suspend.disabled = false;
    }
    refresh().catch(() => {});
    return;
  }
  // A dead letter (or all of them): replayed as a new call, or deleted.
  const letter = event.target.closest("[data-dead-letter]");
  if (letter) {
    event.preventDefault();
    const id = letter.dataset.callId;
    const query = id ? "?callId=" + encodeURIComponent(id) : "";
    letter.disabled = true;
    try {
      const reply = await fetch("/system/async/dead-letters/" + letter.dataset.deadLetter + query, {
        method: "POST",
        headers: ACTION_HEADERS,
      });
      if (!reply.ok) say((await reply.json()).error || reply.statusText);
    } finally {
      letter.disabled = false;
    }
    refresh().catch(() => {});
    return;
  }
  const cancel = event.target.closest("[data-cancel]");
  if (cancel) {
    event.preventDefault();
    const reply = await fetch("/system/runs/" + encodeURIComponent(cancel.dataset.cancel) + "/cancel", {
      method: "POST",
      headers: ACTION_HEADERS,
    });
    if (!reply.ok) say((await reply.json()).error || reply.statusText);
    refresh().catch(() => {});
  }
});
