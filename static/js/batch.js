// A batch's takes, side by side (templates/batch.html): one Play button and one scrubber
// drive every video, so that the takes are compared at the same moment. Without
// JavaScript each video keeps its own controls.
//
// The longest video is the clock: on play all start from the scrubber's time together,
// and while they play any that drifts more than MAX_DRIFT_S from the clock is put back.
// A take that finishes while the page is open (site.js's live poll marks its badge
// final) gets its video here, joining the others at the clock's time.
const MAX_DRIFT_S = 0.1;

document.addEventListener("DOMContentLoaded", () => {
  const bar = document.querySelector("[data-sync]");
  if (!bar) return;
  const button = bar.querySelector("[data-sync-play]");
  const scrub = bar.querySelector("[data-sync-scrub]");
  const shown = bar.querySelector("[data-sync-time]");
  let playing = false;
  let scrubbing = false;

  const videos = () => [...document.querySelectorAll(".take video")];
  const known = (v) => Number.isFinite(v.duration) && v.duration > 0;
  // A time on the clock, on a video that may be shorter (it loops).
  const at = (v, t) => (known(v) ? t % v.duration : t);
  const clock = () => {
    const all = videos();
    return all.reduce((a, v) => (known(v) && (!known(a) || v.duration > a.duration) ? v : a), all[0]);
  };
  const show = (t) => { shown.textContent = `${t.toFixed(2)} s`; };

  function longest() {
    const lengths = videos().filter(known).map((v) => v.duration);
    if (lengths.length) scrub.max = String(Math.max(...lengths));
  }

  function adopt(video) {
    video.controls = false;
    video.loop = true;
    video.muted = true;
    video.addEventListener("loadedmetadata", longest);
    bar.hidden = false;
    longest();
  }

  const seeked = (v) => (v.seeking
    ? new Promise((done) => v.addEventListener("seeked", done, { once: true }))
    : Promise.resolve());

  function seekAll(t) {
    for (const v of videos()) v.currentTime = at(v, t);
    show(t);
  }

  async function playAll() {
    playing = true;
    button.textContent = "Pause all";
    const all = videos();
    const t = Number(scrub.value);
    for (const v of all) {
      v.pause();
      v.currentTime = at(v, t);
    }
    await Promise.all(all.map(seeked));
    if (!playing) return;
    await Promise.all(all.map((v) => v.play().catch(() => {})));
    requestAnimationFrame(follow);
  }

  function pauseAll() {
    playing = false;
    button.textContent = "Play all";
    const lead = clock();
    const t = lead ? lead.currentTime : Number(scrub.value);
    for (const v of videos()) v.pause();
    seekAll(t);
    scrub.value = String(t);
  }

  // While playing: the scrubber follows the clock, and every video stays with it.
  function follow() {
    if (!playing) return;
    const lead = clock();
    if (lead) {
      const t = lead.currentTime;
      for (const v of videos()) {
        if (v === lead || v.seeking) continue;
        const target = at(v, t);
        let drift = Math.abs(v.currentTime - target);
        if (known(v)) drift = Math.min(drift, v.duration - drift);  // across the loop
        if (drift > MAX_DRIFT_S) v.currentTime = target;
        if (v.paused) v.play().catch(() => {});
      }
      if (!scrubbing) {
        scrub.value = String(t);
        show(t);
      }
    }
    requestAnimationFrame(follow);
  }

  button.addEventListener("click", () => (playing ? pauseAll() : playAll()));
  scrub.addEventListener("pointerdown", () => { scrubbing = true; });
  scrub.addEventListener("input", () => seekAll(Number(scrub.value)));
  scrub.addEventListener("change", () => { scrubbing = false; });

  for (const v of videos()) adopt(v);

  // Takes that finish while the page is open: their video, in step with the others.
  const observer = new MutationObserver((changes) => {
    for (const change of changes) {
      const badge = change.target;
      if (!badge.classList.contains("completed")) continue;
      const take = badge.closest(".take");
      const frame = take && take.querySelector(".frame");
      if (!frame || frame.querySelector("video")) continue;
      const video = document.createElement("video");
      video.playsInline = true;
      video.preload = "auto";
      video.poster = take.dataset.poster;
      video.src = take.dataset.video;
      video.setAttribute("aria-label", take.dataset.label);
      frame.append(video);
      adopt(video);
      const lead = clock();
      video.currentTime = at(video, lead && lead !== video ? lead.currentTime : Number(scrub.value));
      if (playing) video.play().catch(() => {});
    }
  });
  for (const badge of document.querySelectorAll(".take [data-live]:not([data-final])")) {
    observer.observe(badge, { attributes: true, attributeFilter: ["data-final"] });
  }
});
