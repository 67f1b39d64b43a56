// Swagger UI over this server's own schema (vendored; no CDN).
window.addEventListener("load", function () {
  // No deep links: with them, each operation's path is a link inside the button that opens
  // it (a control nested in a control, which screen readers cannot reach).
  window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: false });
  // Swagger UI's server picker has no label of its own.
  new MutationObserver(function () {
    const servers = document.getElementById("servers");
    if (servers && !servers.hasAttribute("aria-label")) servers.setAttribute("aria-label", "Server");
  }).observe(document.getElementById("swagger-ui"), { childList: true, subtree: true });
});
