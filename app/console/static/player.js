// qthumb's console player: a <video> with a seek bar that previews the task's sprite tiles
// (or, when it made none, the storyboard by URL: /v1/storyboard.vtt).
// It reads thumbnails.vtt as players do (cue times, image URL relative to the VTT, #xywh).
(function () {
  "use strict";
  const root = document.querySelector(".player");
  if (!root) return;
  const video = root.querySelector("video");
  const seek = root.querySelector(".seek");
  const play = root.querySelector(".play");
  const clock = root.querySelector(".clock");
  const preview = root.querySelector(".preview");
  const image = root.querySelector(".preview-image");
  const label = root.querySelector(".preview-time");
  let cues = [];

  function clockText(t) {
    const s = Math.max(0, Math.floor(t));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function parseTime(text) {
    const parts = text.split(":").map(Number);
    return parts.reduce((total, part) => total * 60 + part, 0);
  }
  function parseVtt(text, base) {
    const found = [];
    for (const block of text.replace(/\r\n/g, "\n").split("\n\n")) {
      const lines = block.trim().split("\n");
      const timing = lines.findIndex((l) => l.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [start, end] = lines[timing].split("-->").map((s) => parseTime(s.trim()));
      const target = lines[timing + 1].trim();
      const [file, hash] = target.split("#xywh=");
      const xywh = hash ? hash.split(",").map(Number) : null;
      found.push({ start, end, url: new URL(file, base).href, xywh });
    }
    return found;
  }
  function duration() {
    return isFinite(video.duration) && video.duration > 0 ? video.duration : Number(seek.max) || 0;
  }
  function cueAt(t) {
    return cues.find((c) => t >= c.start && t < c.end) || (cues.length && t >= cues[cues.length - 1].start ? cues[cues.length - 1] : null);
  }
  function show(t, x) {
    const cue = cueAt(t);
    if (!cue) { preview.hidden = true; return; }
    image.style.backgroundImage = 'url("' + cue.url + '")';
    if (cue.xywh) {
      const [cx, cy, w, h] = cue.xywh;
      image.style.width = w + "px";
      image.style.height = h + "px";
      image.style.backgroundPosition = -cx + "px " + -cy + "px";
    } else {
      image.style.width = "160px"; image.style.height = "90px";
      image.style.backgroundSize = "contain"; image.style.backgroundPosition = "center";
    }
    label.textContent = clockText(t);
    preview.style.left = x + "px";
    preview.hidden = false;
    preview.dataset.time = String(t);
    preview.dataset.cue = cue.url + (cue.xywh ? "#xywh=" + cue.xywh.join(",") : "");
  }
  seek.addEventListener("mousemove", (event) => {
    const box = seek.getBoundingClientRect();
    const x = Math.min(Math.max(event.clientX - box.left, 0), box.width);
    show((x / box.width) * duration(), x);
  });
  seek.addEventListener("mouseleave", () => { preview.hidden = true; });
  seek.addEventListener("input", () => {
    video.currentTime = Number(seek.value);
    const box = seek.getBoundingClientRect();
    show(Number(seek.value), (Number(seek.value) / (duration() || 1)) * box.width);
  });
  seek.addEventListener("blur", () => { preview.hidden = true; });
  play.addEventListener("click", () => { video.paused ? video.play() : video.pause(); });
  video.addEventListener("play", () => { play.textContent = "❚❚"; play.setAttribute("aria-label", "Pause"); });
  video.addEventListener("pause", () => { play.textContent = "▶"; play.setAttribute("aria-label", "Play"); });
  video.addEventListener("loadedmetadata", () => { seek.max = String(duration()); });
  video.addEventListener("timeupdate", () => {
    seek.value = String(video.currentTime);
    seek.setAttribute("aria-valuetext", clockText(video.currentTime));
    clock.textContent = clockText(video.currentTime) + " / " + clockText(duration());
  });
  const vtt = root.dataset.vtt;
  if (vtt) {
    fetch(vtt).then((r) => r.text()).then((text) => {
      cues = parseVtt(text, new URL(vtt, location.href).href);
      root.dataset.cues = String(cues.length);
    });
  } else {
    root.dataset.cues = "0";
  }
})();
