// The /verify page (templates/verify.html): a video dropped on the zone, or chosen, is sent
// to the page's own /verify/check, with the upload's progress; the answer (an HTML fragment
// the server renders, generations/dashboard/verify.py) replaces the result section. The
// upload goes through XMLHttpRequest because fetch() cannot report upload progress. Without
// JavaScript the form posts as it is and the page comes back with the answer.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("verify-form");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const zone = document.getElementById("drop-zone");
  const submit = document.getElementById("verify-submit");
  const box = document.getElementById("verify-progress");
  const bar = box.querySelector("progress");
  const text = document.getElementById("verify-progress-text");
  const maxMb = Number(form.dataset.maxMb);
  zone.classList.add("live");

  function showResult(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.querySelector("#verify-result");
    const old = document.getElementById("verify-result");
    if (fresh && old) old.replaceWith(fresh);
  }

  function showError(message) {
    const section = document.getElementById("verify-result");
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    section.replaceChildren(p);
  }

  function done() {
    box.hidden = true;
    submit.disabled = false;
    form.removeAttribute("aria-busy");
  }

  function check() {
    const file = input.files[0];
    if (!file) {
      showError("Choose a video file to check.");
      return;
    }
    if (file.size > maxMb * 1024 * 1024) {
      showError(`This file is too large: the check takes videos of up to ${maxMb} MB.`);
      return;
    }
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("HX-Request", "true");
    request.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      const percent = Math.round((event.loaded / event.total) * 100);
      bar.value = percent;
      text.textContent = `Uploading ${file.name}: ${percent}%`;
    });
    request.upload.addEventListener("load", () => {
      bar.removeAttribute("value");  // indeterminate while the server reads the video
      text.textContent = "Checking the video for Content Credentials and the watermark…";
    });
    request.addEventListener("load", () => {
      done();
      const type = request.getResponseHeader("Content-Type") || "";
      if (type.startsWith("text/html")) {
        showResult(request.responseText);
      } else if (request.status === 413) {
        showError(`This file is too large: the check takes videos of up to ${maxMb} MB.`);
      } else if (request.status === 429) {
        showError("Too many checks from your address. Try again in a minute.");
      } else if (request.status === 403) {
        showError("The page has expired: reload it and try again.");
      } else {
        showError(`The check failed: the server answered ${request.status}.`);
      }
    });
    request.addEventListener("error", () => {
      done();
      showError("The upload failed: the connection was lost. Try again.");
    });
    box.hidden = false;
    bar.value = 0;
    text.textContent = `Uploading ${file.name}…`;
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    request.send(new FormData(form));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    check();
  });
  input.addEventListener("change", () => { if (input.files.length) check(); });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "dragend"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    check();
  });
});
