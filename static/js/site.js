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
