// A finished sequence (templates/sequence.html): under the stitched video, a bar with one
// segment per shot, from its marker (where it starts) to the next. A click seeks the video
// to that shot; while it plays, the shot on screen is highlighted, on the bar and in the
// list of shots. Without JavaScript the bar stays hidden and the list links each shot.
function sequenceTimeline() {
  const bar = document.querySelector("[data-timeline]");
  const video = document.querySelector("video[data-sequence-video]");
  if (!bar || !video || bar.dataset.ready) return;
  bar.dataset.ready = "1";
  const segments = [...bar.querySelectorAll(".segment")];
  const rows = [...document.querySelectorAll(".shot-row")];
  const length = () => (Number.isFinite(video.duration) && video.duration > 0
    ? video.duration : Number(bar.dataset.duration) || 1);

  function layout() {
    const whole = length();
    for (const segment of segments) {
      const start = Number(segment.dataset.start);
      const end = Math.min(Number(segment.dataset.end), whole);
      segment.style.left = `${(100 * start) / whole}%`;
      segment.style.width = `${(100 * Math.max(0, end - start)) / whole}%`;
    }
  }

  let current = -1;
  function highlight() {
    const t = video.currentTime;
    let found = segments.findIndex((s) => t >= Number(s.dataset.start) && t < Number(s.dataset.end));
    if (found < 0 && segments.length && t >= Number(segments[segments.length - 1].dataset.start)) {
      found = segments.length - 1;
    }
    if (found === current) return;
    current = found;
    segments.forEach((segment, i) => {
      segment.classList.toggle("current", i === found);
      const button = segment.querySelector("button");
      if (i === found) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    });
    rows.forEach((row, i) => row.classList.toggle("current", i === found));
  }

  for (const segment of segments) {
    segment.querySelector("button").addEventListener("click", () => {
      // Just past the marker, so that the frame shown is the shot's own.
      video.currentTime = Math.min(Number(segment.dataset.start) + 0.01, length());
      highlight();
    });
  }
  video.addEventListener("loadedmetadata", layout);
  video.addEventListener("timeupdate", highlight);
  video.addEventListener("seeked", highlight);
  layout();
  highlight();
  bar.hidden = false;
}

document.addEventListener("DOMContentLoaded", sequenceTimeline);
// The status box is swapped by htmx until the sequence is final: the video arrives then.
document.addEventListener("htmx:afterSwap", sequenceTimeline);
