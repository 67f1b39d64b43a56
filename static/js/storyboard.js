// The storyboard (templates/storyboard.html): shot cards added, removed and moved in the
// page. Without JavaScript the same buttons post and the server edits the list
// (generations/dashboard/storyboard.py); here they edit it in place, and the cards are
// numbered again so that the shots post in the order shown (shots-0-..., shots-1-...).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.storyboard");
  if (!form) return;
  const list = form.querySelector("[data-shots]");
  const add = form.querySelector("[data-add-shot]");
  const total = form.querySelector("[data-total]");
  const model = form.querySelector("#id_model");
  const continueWarning = form.querySelector("#continue-unsupported");
  const min = Number(form.dataset.minShots);
  const max = Number(form.dataset.maxShots);
  const crossfade = Number(form.dataset.crossfade);
  const cards = () => [...list.querySelectorAll("[data-shot]")];
  const transition = () => {
    const checked = form.querySelector("input[name=transition]:checked");
    return checked ? checked.value : "cut";
  };
  const defaultDuration = () => {
    const fields = form.querySelector("#model-fields");
    return fields ? fields.dataset.defaultDuration : "";
  };

  // Each card's fields, labels and buttons carry its place in the list.
  function renumber() {
    const all = cards();
    const follows = transition() === "continue";
    all.forEach((card, i) => {
      for (const element of card.querySelectorAll("[name], [id], label[for]")) {
        for (const attribute of ["name", "id", "for"]) {
          const value = element.getAttribute(attribute);
          if (value) element.setAttribute(attribute, value.replace(/shots-\d+-/, `shots-${i}-`));
        }
      }
      card.querySelector(".shot-title").textContent = `Shot ${i + 1}`;
      for (const button of card.querySelectorAll("button[name=op]")) {
        const action = button.value.split("-")[0];
        button.value = `${action}-${i}`;
        // The button's own words first (what it shows is what it is called), then which.
        button.setAttribute("aria-label", `${button.textContent.trim()}: shot ${i + 1}`);
        button.disabled = (action === "up" && i === 0)
          || (action === "down" && i === all.length - 1)
          || (action === "remove" && all.length <= min);
      }
      // With `continue`, a shot after the first starts on the frame before: no image.
      const after = follows && i > 0;
      const image = card.querySelector(".shot-image");
      image.hidden = after;
      for (const input of image.querySelectorAll("input")) input.disabled = after;
      card.querySelector(".shot-follows").hidden = !after;
    });
    add.disabled = all.length >= max;
    showTotal();
  }

  function showTotal() {
    const all = cards();
    let seconds = all.reduce((sum, card) => sum + (Number(card.querySelector(".shot-duration").value) || 0), 0);
    if (transition() === "crossfade" && all.length > 1) seconds -= crossfade * (all.length - 1);
    total.textContent = `${all.length} shots, ${seconds > 0 ? seconds : 0} s in all`;
  }

  function checkContinue() {
    const option = model.selectedOptions[0];
    continueWarning.hidden = transition() !== "continue" || !option || option.hasAttribute("data-i2v");
  }

  // A new card: the first one's fields, emptied (its errors left behind).
  function newCard() {
    const card = cards()[0].cloneNode(true);
    for (const error of card.querySelectorAll(".error")) error.remove();
    for (const field of card.querySelectorAll("textarea, input")) field.value = "";
    card.querySelector(".shot-duration").value = defaultDuration();
    return card;
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[name=op]");
    if (!button) return;
    event.preventDefault();
    const card = button.closest("[data-shot]");
    const action = button.value.split("-")[0];
    if (action === "up" && card.previousElementSibling) {
      list.insertBefore(card, card.previousElementSibling);
    } else if (action === "down" && card.nextElementSibling) {
      list.insertBefore(card.nextElementSibling, card);
    } else if (action === "remove" && cards().length > min) {
      const next = card.nextElementSibling || card.previousElementSibling;
      card.remove();
      renumber();
      next.querySelector("textarea").focus();
      return;
    }
    renumber();
    if (!button.disabled) button.focus();
  });

  add.addEventListener("click", (event) => {
    event.preventDefault();
    if (cards().length >= max) return;
    const card = newCard();
    list.append(card);
    renumber();
    card.querySelector("textarea").focus();
  });

  form.addEventListener("change", (event) => {
    if (event.target.name === "transition") renumber();
    checkContinue();
  });
  form.addEventListener("input", (event) => {
    if (event.target.classList.contains("shot-duration")) showTotal();
  });
  renumber();
  checkContinue();
});
