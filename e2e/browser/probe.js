// What the browser tests read of a page, every interval: where its <video>
// is and what it shows. player.html loads it and sets window.probe with
// the playing date its player knows; the driver adds it to every other
// page (the console), whose own player places media at its server
// timestamp since the epoch, so that currentTime is the playing date.
"use strict";

window.probeErrors = [];

// note records what a page's player did, for a test that fails to print;
// each probe takes the notes made since the one before.
window.probeNotes = [];
window.note = (s) => window.probeNotes.push(`${(performance.now() / 1000).toFixed(3)} ${s}`);

// lumaVariance draws the current picture small and returns the variance of
// its luma: near 0 for a blank (black, grey or single-colour) picture.
window.lumaVariance = (video) => {
  if (!video || video.readyState < 2 || video.videoWidth === 0) return 0;
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 36;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, 64, 36);
  const px = ctx.getImageData(0, 0, 64, 36).data;
  let sum = 0, sq = 0;
  const n = px.length / 4;
  for (let i = 0; i < px.length; i += 4) {
    const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    sum += y;
    sq += y * y;
  }
  return sq / n - (sum / n) * (sum / n);
};

// probeVideo reads video; playingDate is the wall-clock ms of the picture
// on screen, or null.
window.probeVideo = (video, playingDate) => {
  if (!video) return { now: Date.now(), errors: window.probeErrors };
  const q = video.getVideoPlaybackQuality();
  const errors = window.probeErrors.slice();
  if (video.error && !errors.some((e) => e.startsWith("video:"))) errors.push(`video: ${video.error.message}`);
  return {
    now: Date.now(),
    currentTime: video.currentTime,
    readyState: video.readyState,
    width: video.videoWidth,
    frames: q.totalVideoFrames,
    dropped: q.droppedVideoFrames,
    variance: window.lumaVariance(video),
    playingDate,
    errors,
    buffered: Array.from({ length: video.buffered.length }, (_, i) => `${video.buffered.start(i).toFixed(3)}-${video.buffered.end(i).toFixed(3)}`).join(" "),
    notes: window.probeNotes.splice(0),
  };
};

window.probe = () => {
  const v = document.querySelector("video");
  return window.probeVideo(v, v && v.currentTime > 1e9 ? Math.round(v.currentTime * 1000) : null);
};
