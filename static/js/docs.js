// The API docs: a "Copy" button on every code block (the page works without it).
document.addEventListener("DOMContentLoaded", () => {
  for (const block of document.querySelectorAll("article.docs pre")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy this example");
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(block.querySelector("code")?.textContent ?? block.textContent);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    const wrap = document.createElement("div");
    wrap.className = "code";
    block.replaceWith(wrap);
    wrap.append(button, block);
  }
});
