// The generate form, made quicker with JavaScript; without it every field still works.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[action$='/generate']");
  if (!form) return;
  const prompt = form.querySelector("#id_prompt");

  // Example prompts fill the prompt field.
  const examples = form.querySelector(".examples");
  examples.hidden = false;
  for (const button of examples.querySelectorAll("button.example")) {
    button.addEventListener("click", () => {
      prompt.value = button.textContent;
      prompt.focus();
    });
  }

  // Seed: one click back to a random seed.
  const seed = form.querySelector("#id_seed");
  const random = form.querySelector("#seed-random");
  random.hidden = false;
  random.addEventListener("click", () => { seed.value = "-1"; });

  // The audio prompt only matters with audio on.
  const audio = form.querySelector("#id_add_audio");
  const audioPrompt = form.querySelector("#audio-prompt");
  const showAudio = () => { audioPrompt.hidden = !audio.checked; };
  audio.addEventListener("change", showAudio);
  showAudio();

  // The image and the end frame: each a file (chosen, or dropped on the field) or a URL,
  // never both; a preview of the file, and a button to clear it.
  imagePicker(form.querySelector("#id_image"), form.querySelector("#id_image_url"), "image");
  imagePicker(form.querySelector("#id_end_image"), form.querySelector("#id_end_image_url"),
              "end frame");

  // The end frame is taken by some models only (data-end-frame on their option): say so
  // when one is given for another (the server refuses it too, naming the field).
  const model = form.querySelector("#id_model");
  const endFile = form.querySelector("#id_end_image");
  const endUrl = form.querySelector("#id_end_image_url");
  const unsupported = form.querySelector("#end-frame-unsupported");
  const checkEndFrame = () => {
    const option = model.selectedOptions[0];
    const given = (endFile.files && endFile.files.length > 0) || endUrl.value.trim() !== "";
    unsupported.hidden = !given || !option || option.hasAttribute("data-end-frame");
  };
  for (const field of [model, endFile, endUrl]) {
    field.addEventListener("change", checkEndFrame);
    field.addEventListener("input", checkEndFrame);
  }
  checkEndFrame();

  // The estimate (credits, US dollars, time) follows the form: asked again, shortly after
  // the model, duration, resolution, aspect ratio, audio or image change (the model's
  // fields are swapped in by htmx, so the form listens for all of them).
  const estimate = form.querySelector("#estimate");
  let asked = 0;
  let timer = null;
  const refreshEstimate = async () => {
    const params = new URLSearchParams();
    for (const name of ["model", "duration", "resolution", "aspect_ratio"]) {
      const field = form.elements.namedItem(name);
      if (field && field.value) params.set(name, field.value);
    }
    if (audio.checked) params.set("add_audio", "on");
    const image = form.querySelector("#id_image");
    const imageUrl = form.querySelector("#id_image_url");
    if ((image.files && image.files.length) || imageUrl.value.trim()) params.set("image", "on");
    const mine = ++asked;
    try {
      const response = await fetch(`${estimate.dataset.url}?${params}`,
                                   { credentials: "same-origin" });
      const body = await response.json();
      if (mine !== asked) return;  // a later change already asked again
      estimate.textContent = response.ok ? body.text : "";
    } catch (error) {
      // Offline: the last estimate stays.
    }
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(refreshEstimate, 150); };
  form.addEventListener("change", soon);
  form.addEventListener("input", (event) => {
    if (["id_image_url", "id_duration"].includes(event.target.id)) soon();
  });
  document.body.addEventListener("htmx:afterSwap", soon);

  // Generate without leaving the page: each submit adds a card to the queue strip, with its
  // live status; the form keeps its values for the next take. Several takes at once go to
  // their batch's page. Anything but a created
  // generation (a refused field, a limit) is submitted the ordinary way, to show why.
  const queue = document.getElementById("queue");
  const cards = queue.querySelector(".queue-cards");
  let sending = false;
  form.addEventListener("submit", async (event) => {
    if (form.dataset.plain === "1") return;
    event.preventDefault();
    if (sending) return;
    sending = true;
    const button = form.querySelector("button.primary");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 201) {
        const made = await response.json();
        if (made.url) {
          // Several takes: a batch, shown on its own page.
          window.location.assign(made.url);
          return;
        }
        cards.insertAdjacentHTML("afterbegin", made.card);
        queue.hidden = false;
        document.dispatchEvent(new Event("videogen:live"));
        return;
      }
    } catch (error) {
      // The network failed: the plain submit below shows the browser's own error.
    } finally {
      sending = false;
      button.disabled = false;
    }
    form.dataset.plain = "1";
    form.requestSubmit();
  });
});

// One image field pair (a file input and a URL input side by side in a .row): a file
// (chosen, or dropped on the row) or a URL, never both; a preview of the file, and a
// button to clear it.
function imagePicker(file, url, what) {
  if (!file || !url) return;
  const zone = file.closest(".row");
  zone.classList.add("drop");
  const preview = document.createElement("div");
  preview.className = "image-preview";
  preview.hidden = true;
  const img = document.createElement("img");
  img.alt = `The chosen ${what}`;
  const clear = document.createElement("button");
  clear.type = "button";
  clear.textContent = `Clear ${what}`;
  preview.append(img, clear);
  zone.after(preview);
  let shown = null;
  const update = () => {
    if (shown) URL.revokeObjectURL(shown);
    shown = null;
    const chosen = file.files && file.files[0];
    if (chosen) {
      shown = URL.createObjectURL(chosen);
      img.src = shown;
    }
    preview.hidden = !chosen;
    url.disabled = Boolean(chosen);
    file.disabled = !chosen && url.value.trim() !== "";
  };
  file.addEventListener("change", update);
  url.addEventListener("input", update);
  clear.addEventListener("click", () => {
    file.value = "";
    update();
    file.dispatchEvent(new Event("change"));
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) {
      file.files = event.dataTransfer.files;
      url.value = "";
      update();
      file.dispatchEvent(new Event("change"));
    }
  });
  update();
}
