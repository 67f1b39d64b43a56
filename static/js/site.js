// Every page: the header's team menu switches as soon as a team is chosen (without
// JavaScript, its Switch button does the same).
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.team-switch")) {
    form.classList.add("live");
    form.querySelector("select").addEventListener("change", () => form.requestSubmit());
  }
});
