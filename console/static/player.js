// A small HLS player for the fragmented MP4 openkvs serves, on Media Source
// Extensions: it reads the master and media playlists, including low-latency
// HLS (EXT-X-PART, EXT-X-PRELOAD-HINT, blocking reloads with _HLS_msn and
// _HLS_part), appends each track's init segment and then whole fragments or
// parts to a SourceBuffer, and stays near the live edge. openkvs places
// every fragment at its timestamp since the Unix epoch, so currentTime is
// the wall-clock second of the picture on screen.
"use strict";

// liveTarget is how far behind the newest buffered media live playback
// aims to be, in seconds: two or three parts of about 200 ms.
const liveTarget = 0.5;
// ahead and behind bound the buffer around currentTime, in seconds.
const ahead = 20, behind = 30;

// attrs parses an attribute list: KEY=VALUE,KEY="VALUE" (RFC 8216 §4.2).
function attrs(s) {
  const out = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  let m;
  while ((m = re.exec(s))) out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
  return out;
}

function fragmentNumber(uri) {
  return new URL(uri).searchParams.get("FragmentNumber");
}

// parseMaster returns the codecs of the tracks and the URLs of their playlists.
export function parseMaster(text, base) {
  const lines = text.split("\n").map((l) => l.trim());
  const out = { codecs: [], playlists: [] };
  let audio = null;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith("#EXT-X-MEDIA:")) {
      const a = attrs(l.slice(13));
      if (a.TYPE === "AUDIO" && a.URI) audio = new URL(a.URI, base).href;
    } else if (l.startsWith("#EXT-X-STREAM-INF:")) {
      out.codecs = (attrs(l.slice(18)).CODECS || "").split(",").filter(Boolean);
      out.playlists.push(new URL(lines[i + 1], base).href);
    }
  }
  if (audio) out.playlists.push(audio);
  return out;
}

// parseMedia returns a media playlist's segments, each with its media
// sequence number, fragment number, parts and whether it is complete.
export function parseMedia(text, base) {
  const pl = { segments: [], canBlock: false, ended: false, target: 1, partTarget: 0 };
  let msn = 0, init = null, date = null, parts = [], disc = false;
  for (const raw of text.split("\n")) {
    const l = raw.trim();
    if (!l) continue;
    if (l.startsWith("#EXT-X-MEDIA-SEQUENCE:")) msn = Number(l.slice(22));
    else if (l.startsWith("#EXT-X-TARGETDURATION:")) pl.target = Number(l.slice(22));
    else if (l.startsWith("#EXT-X-SERVER-CONTROL:")) pl.canBlock = attrs(l.slice(22))["CAN-BLOCK-RELOAD"] === "YES";
    else if (l.startsWith("#EXT-X-PART-INF:")) pl.partTarget = Number(attrs(l.slice(16))["PART-TARGET"]);
    else if (l.startsWith("#EXT-X-MAP:")) init = new URL(attrs(l.slice(11)).URI, base).href;
    else if (l.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) date = Date.parse(l.slice(25));
    else if (l === "#EXT-X-DISCONTINUITY") disc = true;
    else if (l === "#EXT-X-ENDLIST") pl.ended = true;
    else if (l.startsWith("#EXT-X-PART:")) {
      const a = attrs(l.slice(12));
      parts.push({ uri: new URL(a.URI, base).href, duration: Number(a.DURATION), independent: a.INDEPENDENT === "YES" });
    } else if (l.startsWith("#EXTINF:")) {
      pl.segments.push({ msn, init, date, disc, parts, complete: true, duration: parseFloat(l.slice(8)) });
      parts = [];
      date = null;
      disc = false;
    } else if (!l.startsWith("#")) {
      const s = pl.segments[pl.segments.length - 1];
      s.uri = new URL(l, base).href;
      s.number = fragmentNumber(s.uri);
      msn++;
    }
  }
  if (parts.length) {
    // The fragment being ingested: its parts so far.
    pl.segments.push({ msn, init, date, disc, parts, complete: false, duration: 0, number: fragmentNumber(parts[0].uri) });
  }
  return pl;
}

// fetchOK GETs url as text or bytes. A session's request rates are
// limited (ClientLimitExceededException): such an answer is retried a
// little later, a few times.
async function fetchOK(url, as, signal, tries = 8) {
  const r = await fetch(url, { signal, cache: "no-store" });
  if (r.status === 400 && tries > 1 && r.headers.get("x-amzn-ErrorType")?.startsWith("ClientLimitExceeded")) {
    await new Promise((ok) => setTimeout(ok, 250));
    return fetchOK(url, as, signal, tries - 1);
  }
  if (!r.ok) {
    let msg = `HTTP ${r.status}`;
    try { const j = await r.json(); msg = `${j.__type || ""}: ${j.Message || j.message || ""}`; } catch { /* not JSON */ }
    const e = new Error(msg);
    e.status = r.status;
    throw e;
  }
  return as === "text" ? r.text() : r.arrayBuffer();
}

// Track loads one track's playlist into its SourceBuffer.
class Track {
  constructor(player, url, sb) {
    this.p = player;
    this.url = url;
    this.sb = sb;
    this.init = null; // the init segment appended last
    this.pos = null;  // next to load: {number, part}, number null for "after prev"
    this.prev = null; // the fragment loaded last, whole or all its parts
    this.signal = player.abort.signal; // this session's: a new one stops these loops
  }

  async append(buf) {
    const sb = this.sb;
    const t = this.p.video.currentTime;
    if (sb.buffered.length && sb.buffered.start(0) < t - behind) {
      sb.remove(0, t - behind / 2);
      await new Promise((r) => sb.addEventListener("updateend", r, { once: true }));
    }
    sb.appendBuffer(buf);
    await new Promise((resolve, reject) => {
      sb.addEventListener("updateend", resolve, { once: true });
      sb.addEventListener("error", () => reject(new Error("the browser could not append the media")), { once: true });
    });
  }

  async load(init, uri) {
    const signal = this.signal;
    if (init && init !== this.init) {
      await this.append(await fetchOK(init, "buf", signal));
      this.init = init;
    }
    await this.append(await fetchOK(uri, "buf", signal));
    this.p.loaded();
  }

  playlist(block) {
    let u = this.url;
    if (block) u += `&_HLS_msn=${block.msn}&_HLS_part=${block.part}`;
    return fetchOK(u, "text", this.signal).then((t) => parseMedia(t, this.url));
  }

  // next says what to do with the live playlist pl: {seg, part} to load
  // (part -1 for the whole fragment), or {block} to wait for.
  next(pl) {
    const segs = pl.segments;
    if (!this.pos) {
      // Start at the newest fragment with media: its first part is a key frame.
      const seg = segs.filter((s) => s.complete || s.parts.length).pop();
      if (!seg) return { block: null };
      this.pos = { number: seg.number, part: 0 };
    }
    if (this.pos.number === null) {
      const j = segs.findIndex((s) => s.number === this.prev.number);
      if (j < 0) return this.resync(pl);
      if (j + 1 === segs.length) return { block: { msn: segs[j].msn + 1, part: 0 } };
      this.pos = { number: segs[j + 1].number, part: 0 };
    }
    const seg = segs.find((s) => s.number === this.pos.number);
    // Gone: the producer abandoned it; the gap is skipped.
    if (!seg) return this.resync(pl);
    if (this.pos.part < seg.parts.length) return { seg, part: this.pos.part };
    if (!seg.complete) return { block: { msn: seg.msn, part: this.pos.part } };
    if (this.pos.part === 0) return { seg, part: -1 };
    this.prev = seg;
    this.pos = { number: null, part: 0 };
    return this.next(pl);
  }

  resync(pl) {
    this.pos = null;
    return this.next(pl);
  }

  async runLive() {
    let pl = await this.playlist(null);
    while (!this.signal.aborted) {
      const n = this.next(pl);
      if (n.seg) {
        const uri = n.part < 0 ? n.seg.uri : n.seg.parts[n.part].uri;
        await this.load(n.seg.init, uri);
        if (n.part < 0) {
          this.prev = n.seg;
          this.pos = { number: null, part: 0 };
        } else {
          this.pos.part++;
        }
        continue;
      }
      if (pl.ended) return;
      if (pl.canBlock && n.block) {
        pl = await this.playlist(n.block);
      } else {
        await this.p.sleep(pl.target * 500);
        pl = await this.playlist(null);
      }
    }
  }

  async runArchive(startMs) {
    const pl = await this.playlist(null);
    this.segments = pl.segments;
    this.seekTo(startMs);
    for (;;) {
      if (this.signal.aborted) return;
      const now = this.p.started ? this.p.video.currentTime : startMs / 1000;
      const seg = this.segments[this.index];
      if (!seg || (seg.date !== null && seg.date / 1000 > now + ahead)) {
        if (!seg && pl.ended && this.index >= this.segments.length) this.p.trackEnded(this);
        await this.p.sleep(250);
        continue;
      }
      this.index++;
      await this.load(seg.init, seg.uri);
    }
  }

  // seekTo moves archive loading to the fragment holding ms.
  seekTo(ms) {
    let i = this.segments.findIndex((s) => s.date !== null && s.date + s.duration * 1000 > ms);
    if (i < 0) i = this.segments.length - 1;
    this.index = Math.max(0, i);
  }
}

// Player plays one session at a time in a <video>.
export class Player {
  constructor(video, onState) {
    this.video = video;
    this.onState = onState || (() => {});
  }

  sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
  }

  // live plays a LIVE session's master playlist URL near its live edge.
  live(master) {
    return this.start(master, null);
  }

  // archive plays an ON_DEMAND session from ms since the epoch.
  archive(master, ms) {
    return this.start(master, ms);
  }

  async start(master, startMs) {
    this.stop();
    this.isLive = startMs === null;
    this.startMs = startMs;
    this.started = false;
    this.ended = 0;
    const abort = (this.abort = new AbortController());
    const v = this.video;
    if (!window.MediaSource) {
      // Safari on iPhone: no MSE, but HLS of its own.
      if (!v.canPlayType("application/vnd.apple.mpegurl")) throw new Error("This browser plays neither Media Source Extensions nor HLS.");
      v.src = master;
      v.play().catch(() => {});
      return;
    }
    const m = parseMaster(await fetchOK(master, "text", abort.signal), master);
    const ms = new MediaSource();
    this.ms = ms;
    v.src = URL.createObjectURL(ms);
    await new Promise((r) => ms.addEventListener("sourceopen", r, { once: true }));
    if (abort.signal.aborted) return;
    const tracks = m.playlists.map((url, i) => {
      const codec = m.codecs[i];
      const type = `${/^mp4a/.test(codec) ? "audio" : "video"}/mp4; codecs="${codec}"`;
      if (!MediaSource.isTypeSupported(type)) throw new Error(`This browser cannot play ${codec}.`);
      return new Track(this, url, ms.addSourceBuffer(type));
    });
    this.tracks = tracks;
    this.timer = setInterval(() => this.tick(), 200);
    const runs = tracks.map((t) => (this.isLive ? t.runLive() : t.runArchive(startMs)));
    try {
      await Promise.all(runs);
    } catch (e) {
      if (!abort.signal.aborted) {
        this.onState({ error: e.message });
        throw e;
      }
    }
  }

  // loaded runs after each append: start playing once there is media.
  loaded() {
    const v = this.video, b = v.buffered;
    if (this.started || !b.length) return;
    const last = b.length - 1;
    if (this.isLive) {
      v.currentTime = Math.max(b.start(last), b.end(last) - liveTarget);
    } else {
      const t = this.startMs / 1000;
      let i = 0;
      while (i < last && b.end(i) <= t) i++;
      if (b.end(i) <= t) return;
      v.currentTime = Math.max(b.start(i), t);
    }
    this.started = true;
    v.play().catch(() => {});
  }

  trackEnded() {
    if (++this.ended === this.tracks.length && this.ms.readyState === "open") {
      this.tracks.every((t) => !t.sb.updating) && this.ms.endOfStream();
    }
  }

  // tick jumps gaps, keeps live playback near the edge and reports state.
  tick() {
    const v = this.video, b = v.buffered, t = v.currentTime;
    if (!this.started || !b.length) return;
    let inRange = false;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= t + 0.05 && t < b.end(i) - 0.05) inRange = true;
    }
    if (!inRange) {
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > t) {
          v.currentTime = b.start(i) + 0.01;
          break;
        }
      }
    }
    if (this.isLive) {
      const lag = b.end(b.length - 1) - v.currentTime;
      if (lag > liveTarget + 1.5) v.currentTime = b.end(b.length - 1) - liveTarget;
      else v.playbackRate = lag > liveTarget + 0.3 ? 1.1 : 1;
    }
    this.onState({ live: this.isLive, time: v.currentTime * 1000, behind: Date.now() - v.currentTime * 1000 });
  }

  stop() {
    if (this.abort) this.abort.abort();
    clearInterval(this.timer);
    this.tracks = [];
    const v = this.video;
    if (v.src) {
      v.pause();
      URL.revokeObjectURL(v.src);
      v.removeAttribute("src");
      v.load();
    }
  }
}
