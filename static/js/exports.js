// Exports (templates/_exports.html): a GIF, WebM or loop is made by a worker on first
// request, and its URL answers 202 (with Retry-After) until then. A click asks for it,
// says "preparing…" while it answers 202, and downloads it once it answers 200. Without
// JavaScript the link is followed as it is (the 202 says to ask again).
const EXPORT_WAIT_MS = 2000;  // between asks, unless Retry-After says otherwise
const EXPORT_GIVE_UP_MS = 10 * 60 * 1000;

async function exportWhenReady(link, state) {
  const started = Date.now();
  link.setAttribute("aria-busy", "true");
  state.textContent = `${link.textContent}: preparing…`;
  try {
    while (Date.now() - started < EXPORT_GIVE_UP_MS) {
      const response = await fetch(link.href, { credentials: "same-origin" });
      if (response.status === 200) {
        // Ready: the body is fetched again by the download itself, so stop reading it.
        if (response.body) response.body.cancel().catch(() => {});
        state.textContent = `${link.textContent}: ready.`;
        const save = document.createElement("a");
        save.href = link.href;
        save.download = "";
        document.body.append(save);
        save.click();
        save.remove();
        return;
      }
      if (response.status !== 202) {
        let why = `the server answered ${response.status}`;
        try {
          const body = await response.json();
          why = (body.error && body.error.message) || body.message || why;
        } catch (error) {
          // Not JSON: the status says enough.
        }
        state.textContent = `${link.textContent} failed: ${why}`;
        return;
      }
      const after = Number(response.headers.get("Retry-After"));
      const wait = Number.isFinite(after) && after > 0 ? after * 1000 : EXPORT_WAIT_MS;
      await new Promise((done) => setTimeout(done, wait));
    }
    state.textContent = `${link.textContent} is taking too long; try again later.`;
  } catch (error) {
    state.textContent = `${link.textContent}: the network failed; try again.`;
  } finally {
    link.removeAttribute("aria-busy");
  }
}

// Delegated: the links may arrive later, in a status box swapped in by htmx.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[data-export]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey) {
    return;
  }
  event.preventDefault();
  if (link.getAttribute("aria-busy") === "true") return;
  const state = link.closest(".exports").querySelector("[data-export-state]");
  exportWhenReady(link, state);
});
