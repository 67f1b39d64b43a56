// Every page: the header's team menu switches as soon as a team is chosen (without
// JavaScript, its Switch button does the same).
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.team-switch")) {
    form.classList.add("live");
    form.querySelector("select").addEventListener("change", () => form.requestSubmit());
  }
});

// Copy buttons: <button data-copy="ID" hidden> copies the text of element ID. Hidden until
// this script shows it, so a page without JavaScript offers no button that cannot work.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      await navigator.clipboard.writeText(source.value ?? source.href ?? source.textContent);
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }
});

// A region that scrolls sideways (a wide table or code block on a phone) takes keyboard
// focus, so it can be scrolled without a mouse; one that fits is no extra tab stop.
function focusScrollers() {
  for (const region of document.querySelectorAll("main pre, main table")) {
    if (region.scrollWidth > region.clientWidth + 1) {
      region.tabIndex = 0;
    } else if (region.getAttribute("tabindex") === "0") {
      region.removeAttribute("tabindex");
    }
  }
}
document.addEventListener("DOMContentLoaded", focusScrollers);
window.addEventListener("resize", focusScrollers);

// Destructive actions ask first, in the page's <dialog> (generations/dashboard/confirm.py:
// without JavaScript the server asks the same question on a page of its own).
document.addEventListener("DOMContentLoaded", () => {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  const question = dialog.querySelector("#confirm-dialog-question");
  const yes = dialog.querySelector("button[value=yes]");
  let pending = null;
  for (const form of document.querySelectorAll("form.confirmable")) {
    form.addEventListener("submit", (event) => {
      if (form.querySelector("input[name=confirm]")) return;
      event.preventDefault();
      pending = form;
      question.textContent = form.dataset.confirm;
      yes.textContent = form.dataset.confirmButton;
      dialog.showModal();
    });
  }
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "yes" && pending) {
      const confirmed = document.createElement("input");
      confirmed.type = "hidden";
      confirmed.name = "confirm";
      confirmed.value = "yes";
      pending.append(confirmed);
      pending.submit();
    }
    pending = null;
    dialog.returnValue = "";
  });
});

// Live status: every badge with data-live that is not final is refreshed from one small
// JSON poll (generations/dashboard/live.py) every 2 s while the tab is visible; the poll
// stops once all are final. The tab's title shows the progress, and a browser notification
// (if the person allowed them) says when a video is done.
const LIVE_POLL_MS = 2000;  // while something runs
const LIVE_WAIT_MS = 5000;  // while everything only waits in the queue
let liveTimer = null;
const baseTitle = document.title;

function liveDetail(state) {
  const eta = state.eta_s != null ? `, about ${state.eta_s} s left` : "";
  if (state.final) return "";
  if (state.position != null) {
    return state.position === 0 ? `next up${eta}` : `${state.position} ahead${eta}`;
  }
  return `${state.progress}% · ${state.elapsed_s} s${eta}`;
}

function liveTitle(states) {
  const running = states.filter((s) => !s.final);
  if (running.length) {
    const top = Math.max(...running.map((s) => s.progress));
    document.title = `(${top}%) ${baseTitle}`;
  } else if (states.length) {
    document.title = `✓ ${baseTitle}`;
  }
}

async function livePoll() {
  liveTimer = null;
  const pending = [...document.querySelectorAll("[data-live]:not([data-final])")];
  if (!pending.length) return;
  if (document.hidden) {
    document.addEventListener("visibilitychange", livePoll, { once: true });
    return;
  }
  const ids = [...new Set(pending.map((badge) => badge.dataset.live))].slice(0, 64);  // the live endpoint answers 64 at most (a batch's largest)
  try {
    const response = await fetch(`/api/dashboard/live?ids=${ids.join(",")}`, {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    if (response.ok) {
      const found = (await response.json()).generations;
      for (const badge of pending) {
        const state = found[badge.dataset.live];
        if (!state) continue;
        badge.className = `badge ${state.status}`;
        badge.textContent = state.label;
        for (const detail of document.querySelectorAll(`[data-live-detail="${badge.dataset.live}"]`)) {
          detail.textContent = liveDetail(state);
        }
        if (state.final) {
          badge.dataset.final = "";
          if (window.Notification && Notification.permission === "granted") {
            new Notification(`Video ${state.label.toLowerCase()}`, { body: badge.dataset.prompt || "" });
          }
        }
      }
      const states = Object.values(found);
      liveTitle(states);
      const running = states.some((s) => !s.final && s.position == null);
      liveTimer = setTimeout(livePoll, running ? LIVE_POLL_MS : LIVE_WAIT_MS);
      return;
    }
  } catch (error) {
    // Offline for a moment: try again at the next tick.
  }
  liveTimer = setTimeout(livePoll, LIVE_POLL_MS);
}

function liveStart() {
  if (liveTimer === null) liveTimer = setTimeout(livePoll, LIVE_POLL_MS);
}
document.addEventListener("DOMContentLoaded", liveStart);
document.addEventListener("videogen:live", liveStart);

// "Notify me" buttons ask the browser for permission once.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-notify]")) {
    if (!window.Notification || Notification.permission !== "default") continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = true;
    });
  }
});

// A generation's page: its status box is swapped by htmx every second until final; the
// tab's title follows it.
document.addEventListener("htmx:afterSwap", () => {
  const box = document.getElementById("status");
  if (!box || !box.dataset.status) return;
  const final = ["completed", "failed", "canceled"].includes(box.dataset.status);
  document.title = final ? `✓ ${baseTitle}` : `(${box.dataset.progress}%) ${baseTitle}`;
  if (final && window.Notification && Notification.permission === "granted") {
    new Notification(`Video ${box.dataset.status}`, { body: box.dataset.prompt || "" });
  }
});
