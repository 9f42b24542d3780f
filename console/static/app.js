// The openkvs console: a streams page and a page per stream, routed by the
// URL's fragment (#/ and #/stream/NAME), built from the public KVS APIs.
"use strict";

import { APIError, call, callBlob, credentials, dataEndpoint, listAll, setCredentials, status } from "./api.js";
import { Player } from "./player.js";

const main = document.getElementById("main");
const dialog = document.getElementById("dialog");

// h builds an element: h("a", {href: "#"}, "text", child...). Text is
// always set as text, never parsed as HTML.
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// when shows ms since the epoch in the viewer's time zone, UTC on hover.
function when(ms, withDate = true) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  const text = withDate ? d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : d.toLocaleTimeString();
  return h("time", { datetime: d.toISOString(), title: d.toISOString().replace("T", " ").replace("Z", " UTC") }, text);
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function bitrate(bps) {
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

function retention(hours) {
  if (!hours) return "none (live only)";
  return hours % 24 === 0 ? `${hours / 24} d` : `${hours} h`;
}

let toastTimer;
function toast(msg, isError) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.className = "toast show" + (isError ? " error" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = "toast"; }, 5000);
}

// ask shows a modal dialog with a form; it resolves with the form's data on
// submit, null on cancel.
function ask(title, fields, submitLabel, danger) {
  dialog.replaceChildren();
  const form = h("form", { method: "dialog" },
    h("h2", { id: "dialog-title" }, title),
    ...fields,
    h("p", { class: "error", role: "alert" }),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: danger ? "danger" : "primary", value: "ok" }, submitLabel),
      h("button", { type: "button", onclick: () => dialog.close("") }, "Cancel")));
  dialog.append(form);
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? new FormData(form) : null), { once: true });
  });
}

// Page lifetime: timers and players of the page shown, stopped on leaving it.
let cleanups = [];
function onLeave(f) { cleanups.push(f); }
function every(ms, f) {
  const id = setInterval(() => { if (!document.hidden) f(); }, ms);
  onLeave(() => clearInterval(id));
}

async function route() {
  cleanups.forEach((f) => f());
  cleanups = [];
  renderWho();
  const m = location.hash.match(/^#\/stream\/(.+)$/);
  try {
    if (m) await streamPage(decodeURIComponent(m[1]));
    else await streamsPage();
  } catch (e) {
    failed(e);
  }
}

function failed(e) {
  if (e instanceof APIError && e.needsLogin) return loginPage(credentials() ? e.message : "");
  main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, `${e.type ? e.type + ": " : ""}${e.message}`));
}

function renderWho() {
  const who = document.getElementById("who");
  const c = credentials();
  who.replaceChildren(...(c ? [h("span", {}, c.accessKeyId),
    h("button", { type: "button", onclick: () => { setCredentials(null); route(); } }, "Sign out")] : []));
}

// loginPage asks for an access key: the server runs with --credentials.
function loginPage(error) {
  document.title = "Sign in · openkvs";
  const c = credentials() || {};
  const form = h("form", { class: "card", id: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("p", { class: "muted" }, "This server asks for a signed request. Enter an access key of its credentials file; it is kept only in this tab."),
    h("label", {}, "Access key ID", h("input", { name: "key", required: true, autocomplete: "username", value: c.accessKeyId || "" })),
    h("label", {}, "Secret access key", h("input", { name: "secret", type: "password", required: true, autocomplete: "current-password" })),
    h("label", {}, "Region", h("input", { name: "region", required: true, value: c.region || "us-east-1" })),
    h("p", { class: "error", role: "alert", id: "login-error" }, error || ""),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    setCredentials({ accessKeyId: d.get("key").trim(), secretAccessKey: d.get("secret"), region: d.get("region").trim() });
    try {
      await call("/listStreams", { MaxResults: 1 });
      route();
    } catch (e) {
      setCredentials(null);
      form.querySelector("#login-error").textContent = e.message;
    }
  });
  main.replaceChildren(form);
  form.querySelector("input").focus();
}

// ---- Streams page ----

async function streamsPage() {
  document.title = "Streams · openkvs";
  const { items: list } = await listAll("/listStreams", { MaxResults: 1000 }, "StreamInfoList");
  const body = h("tbody");
  const table = h("table", { class: "streams" },
    h("caption", { class: "muted" }, ""),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, h("span", { class: "hide-phone" }, "Live")),
      h("th", { scope: "col" }, "Stream"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Media type"),
      h("th", { scope: "col" }, "Retention"), h("th", { scope: "col" }, "Archive"), h("th", { scope: "col" }, "Producer"),
      h("th", { scope: "col" }, h("span", { class: "hide-phone" }, "Actions")))),
    body);
  const create = h("form", { class: "row card", id: "create", "aria-label": "Create a stream" },
    h("label", {}, "Name", h("input", { name: "name", required: true, pattern: "[a-zA-Z0-9_.\\-]+", maxlength: 256 })),
    h("label", {}, "Retention (hours, 0 for none)", h("input", { name: "hours", type: "number", min: 0, value: 24 })),
    h("label", {}, "Media type", h("input", { name: "media", placeholder: "video/h264", value: "video/h264" })),
    h("button", { type: "submit", class: "primary" }, "Create stream"));
  create.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = new FormData(create);
    try {
      await call("/createStream", { StreamName: d.get("name"), DataRetentionInHours: Number(d.get("hours")), MediaType: d.get("media") || undefined });
      toast(`Stream ${d.get("name")} created.`);
      route();
    } catch (e) { toast(e.message, true); }
  });
  main.replaceChildren(h("h1", {}, "Streams"), create, h("h2", {}, `${list.length} stream${list.length === 1 ? "" : "s"}`),
    list.length ? table : h("p", { class: "muted" }, "No streams yet. Create one above, or send media with a KVS producer."));
  const rows = new Map();
  for (const s of list) {
    const r = streamRow(s);
    rows.set(s.StreamName, r);
    body.append(r.tr);
  }
  const refreshStatus = async () => {
    try {
      const st = await status();
      const active = new Map(st.Streams.map((s) => [s.StreamName, s]));
      for (const [name, r] of rows) r.setStatus(active.get(name));
    } catch (e) { if (!(e instanceof APIError && e.status === 403)) toast(e.message, true); }
  };
  await refreshStatus();
  every(3000, refreshStatus);
  // The archive and thumbnails cost ListFragments and GetImages calls:
  // one stream at a time, and rarely.
  const refreshArchive = async () => {
    for (const r of rows.values()) await r.refreshArchive();
  };
  refreshArchive();
  every(30000, refreshArchive);
  every(10000, () => { for (const r of rows.values()) if (r.live) r.refreshThumb(); });
  // Streams made or deleted elsewhere: the page is drawn again.
  every(15000, async () => {
    const now = (await listAll("/listStreams", { MaxResults: 1000 }, "StreamInfoList")).items.map((s) => s.StreamName);
    if (now.join("\n") !== [...rows.keys()].join("\n")) route();
  });
}

function streamRow(s) {
  const name = s.StreamName;
  const img = h("img", { class: "thumb", alt: `Latest picture of ${name}` });
  const producer = h("td", { "data-label": "Producer", class: "producer" }, "—");
  const archive = h("td", { "data-label": "Archive", class: "archive" }, s.DataRetentionInHours ? "…" : "not kept");
  const tr = h("tr", { "data-stream": name },
    h("td", { class: "t" }, h("a", { href: `#/stream/${encodeURIComponent(name)}`, tabindex: -1, "aria-hidden": "true" }, img)),
    h("td", {}, h("a", { href: `#/stream/${encodeURIComponent(name)}`, class: "name" }, name)),
    h("td", { "data-label": "Status" }, s.Status),
    h("td", { "data-label": "Media type" }, s.MediaType || "—"),
    h("td", { "data-label": "Retention" }, retention(s.DataRetentionInHours)),
    archive, producer,
    h("td", {}, h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => changeRetention(s), "aria-label": `Change retention of ${name}` }, "Retention"),
      h("button", { type: "button", class: "danger", onclick: () => deleteStream(s), "aria-label": `Delete ${name}` }, "Delete"))));
  let newest = null;
  const r = {
    tr, live: false,
    setStatus(st) {
      const p = st && st.Producer;
      r.live = !!p;
      producer.replaceChildren(h("span", { class: "dot" + (p ? " on" : "") }), p ? "Connected" : "None",
        p && p.BitrateBps ? h("br") : null, p && p.BitrateBps ? bitrate(p.BitrateBps) : null);
      // The newest picture: the last moment of the newest fragment.
      if (p && p.NewestFragment) newest = Date.parse(p.NewestFragment.ServerTimestamp) + p.NewestFragment.DurationMs - 1;
    },
    async refreshArchive() {
      if (!s.DataRetentionInHours) return;
      try {
        const ep = await dataEndpoint(name, "LIST_FRAGMENTS");
        const { items, more } = await listAll("/listFragments", { StreamName: name, MaxResults: 1000 }, "Fragments", ep, 5);
        if (!items.length) { archive.replaceChildren("empty"); return; }
        const size = items.reduce((a, f) => a + f.FragmentSizeInBytes, 0);
        const last = items[items.length - 1];
        if (!more) newest = Math.max(newest || 0, Math.round(last.ServerTimestamp * 1000) + last.FragmentLengthInMilliseconds - 1);
        archive.replaceChildren(`${items.length}${more ? "+" : ""} fragments, ${bytes(size)}${more ? "+" : ""}`, h("br"),
          when(items[0].ServerTimestamp * 1000), " – ", more ? "…" : when(last.ServerTimestamp * 1000 + last.FragmentLengthInMilliseconds));
        if (!img.src) await r.refreshThumb();
      } catch (e) { archive.replaceChildren(h("span", { class: "error" }, e.type || e.message)); }
    },
    async refreshThumb() {
      if (newest === null || !s.DataRetentionInHours) return;
      // The producer status names a fragment as soon as it is received,
      // a moment before it is archived: the picture a second earlier
      // stands in until it is.
      const src = await thumbnail(name, newest, 320, 1000);
      if (src) img.src = src;
    },
  };
  return r;
}

// thumbnail returns a data: URL of the stream's picture at ms (GetImages),
// or, failing that, of the one back ms earlier.
async function thumbnail(name, ms, width = 320, back = 0) {
  try {
    const ep = await dataEndpoint(name, "GET_IMAGES");
    const out = await call("/getImages", { StreamName: name, ImageSelectorType: "SERVER_TIMESTAMP", StartTimestamp: (ms - back) / 1000,
      EndTimestamp: (ms + 1) / 1000, SamplingInterval: back || 3000, Format: "JPEG", WidthPixels: width, MaxResults: 2 }, ep);
    const im = (out.Images || []).findLast((i) => i.ImageContent);
    return im ? "data:image/jpeg;base64," + im.ImageContent : null;
  } catch {
    return null; // no picture is no reason to bother the viewer
  }
}

async function changeRetention(s) {
  const d = await ask(`Retention of ${s.StreamName}`, [
    h("label", {}, "Hours to keep media (0 keeps none)", h("input", { name: "hours", type: "number", min: 0, value: s.DataRetentionInHours, required: true }))],
  "Save");
  if (!d) return;
  const want = Number(d.get("hours")), cur = s.DataRetentionInHours;
  if (want === cur) return;
  try {
    const fresh = (await call("/describeStream", { StreamName: s.StreamName })).StreamInfo;
    await call("/updateDataRetention", { StreamName: s.StreamName, CurrentVersion: fresh.Version,
      Operation: want > cur ? "INCREASE_DATA_RETENTION" : "DECREASE_DATA_RETENTION", DataRetentionChangeInHours: Math.abs(want - cur) });
    toast(`Retention of ${s.StreamName} is now ${retention(want)}.`);
    route();
  } catch (e) { toast(e.message, true); }
}

async function deleteStream(s) {
  const d = await ask(`Delete ${s.StreamName}?`, [
    h("p", {}, "The stream and all its archived media will be deleted. This cannot be undone."),
    h("label", {}, `Type ${s.StreamName} to confirm`, h("input", { name: "confirm", required: true, pattern: s.StreamName.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&"), autocomplete: "off" }))],
  "Delete", true);
  if (!d) return;
  try {
    await call("/deleteStream", { StreamARN: s.StreamARN, CurrentVersion: s.Version });
    toast(`Stream ${s.StreamName} deleted.`);
    if (location.hash.startsWith("#/stream/")) location.hash = "#/";
    else route();
  } catch (e) { toast(e.message, true); }
}

// ---- Stream page ----

// windows are the spans of archive the timeline can show.
const windows = [["10 min", 10 * 60e3], ["1 h", 3600e3], ["6 h", 6 * 3600e3], ["24 h", 24 * 3600e3]];

async function streamPage(name) {
  document.title = `${name} · openkvs`;
  const info = (await call("/describeStream", { StreamName: name })).StreamInfo;
  const video = h("video", { muted: true, playsinline: true, controls: true, "aria-label": `Video of ${name}` });
  video.muted = true;
  const state = h("p", { class: "muted", id: "play-state", "aria-live": "polite" }, "");
  const player = new Player(video, (st) => {
    if (st.error) state.replaceChildren(h("span", { class: "error" }, st.error));
    else if (st.live) state.replaceChildren(h("span", { class: "dot on" }), `Live · ${(st.behind / 1000).toFixed(1)} s behind · `, when(st.time, false));
    else state.replaceChildren("Archive · ", when(st.time));
    tl.setHead(st.time);
  });
  onLeave(() => player.stop());
  const liveButton = h("button", { type: "button", class: "primary", onclick: () => goLive() }, "Live");
  const producer = h("dd", {}, "—");
  const tags = h("ul", { class: "tags", "aria-label": "Tags" });
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Status"), h("dd", {}, info.Status),
    h("dt", {}, "Producer"), producer,
    h("dt", {}, "Media type"), h("dd", {}, info.MediaType || "—"),
    h("dt", {}, "Retention"), h("dd", {}, retention(info.DataRetentionInHours)),
    h("dt", {}, "Created"), h("dd", {}, when(info.CreationTime * 1000)),
    h("dt", {}, "Version"), h("dd", {}, info.Version),
    h("dt", {}, "ARN"), h("dd", { class: "fragno" }, info.StreamARN),
    h("dt", {}, "Tags"), h("dd", {}, tags));
  const tl = timeline(name, (ms) => playArchive(ms), (from, to) => setClip(from, to));
  const clipFrom = h("input", { type: "datetime-local", step: 1, name: "from", id: "clip-from", required: true });
  const clipTo = h("input", { type: "datetime-local", step: 1, name: "to", id: "clip-to", required: true });
  const clipForm = h("form", { class: "row", id: "clip", "aria-label": "Download a clip" },
    h("label", {}, "From", clipFrom), h("label", {}, "To", clipTo),
    h("button", { type: "submit", class: "primary" }, "Download MP4"),
    h("span", { class: "muted" }, "Select a range on the timeline, or enter it. A clip holds at most 200 fragments."));
  clipForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const from = new Date(clipFrom.value).getTime(), to = new Date(clipTo.value).getTime();
    try {
      const ep = await dataEndpoint(name, "GET_CLIP");
      const blob = await callBlob("/getClip", { StreamName: name, ClipFragmentSelector: { FragmentSelectorType: "SERVER_TIMESTAMP",
        TimestampRange: { StartTimestamp: from / 1000, EndTimestamp: to / 1000 } } }, ep);
      const a = h("a", { href: URL.createObjectURL(blob), download: `${name}-${new Date(from).toISOString().replace(/[:.]/g, "-")}.mp4` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      toast(`Clip of ${bytes(blob.size)} downloaded.`);
    } catch (e) { toast(e.message, true); }
  });
  function setClip(from, to) {
    const local = (ms) => { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3); return d.toISOString().slice(0, 19); };
    clipFrom.value = local(from);
    clipTo.value = local(to);
  }
  const fragments = h("tbody");
  const fragCount = h("span", { class: "muted" });
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← Streams")),
    h("h1", {}, name),
    h("div", { class: "player" },
      h("section", { "aria-label": "Player" }, video, h("div", { class: "row" }, liveButton, state)),
      h("section", { class: "card", "aria-label": "Details" }, facts,
        h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => changeRetention(info) }, "Change retention"),
          h("button", { type: "button", class: "danger", onclick: () => deleteStream(info) }, "Delete stream")))),
    h("h2", { id: "timeline-title" }, "Archive"),
    h("div", { class: "row", role: "group", "aria-label": "Time span" }, windows.map(([label, ms]) =>
      h("button", { type: "button", "aria-pressed": String(ms === tl.span), onclick: (ev) => {
        ev.target.parentElement.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === ev.target)));
        tl.setSpan(ms);
      } }, label))),
    tl.el, clipForm,
    h("h2", {}, "Fragments ", fragCount),
    h("div", { class: "card" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Fragment number"), h("th", { scope: "col" }, "Server time"),
        h("th", { scope: "col", class: "hide-phone" }, "Producer time"), h("th", { scope: "col", class: "num" }, "Duration"),
        h("th", { scope: "col", class: "num" }, "Size"))),
      fragments)));
  tl.onFragments = (list, more) => {
    fragCount.textContent = `(${list.length}${more ? "+" : ""} in the span, newest first)`;
    fragments.replaceChildren(...list.slice(-200).reverse().map((f) => h("tr", {},
      h("td", { class: "fragno" }, f.FragmentNumber), h("td", {}, when(f.ServerTimestamp * 1000)),
      h("td", { class: "hide-phone" }, when(f.ProducerTimestamp * 1000)),
      h("td", { class: "num" }, `${(f.FragmentLengthInMilliseconds / 1000).toFixed(2)} s`), h("td", { class: "num" }, bytes(f.FragmentSizeInBytes)))));
  };
  call("/listTagsForStream", { StreamName: name }).then((out) => {
    const entries = Object.entries(out.Tags || {});
    tags.replaceChildren(...(entries.length ? entries.map(([k, v]) => h("li", {}, `${k} = ${v}`)) : [h("li", {}, "none")]));
  }).catch((e) => tags.replaceChildren(h("li", { class: "error" }, e.type || e.message)));
  const refreshProducer = async () => {
    try {
      const p = (await status(name)).Producer;
      producer.replaceChildren(h("span", { class: "dot" + (p ? " on" : "") }), p ? `Connected since ` : "None",
        p ? when(Date.parse(p.ConnectedSince)) : "", p && p.BitrateBps ? ` · ${bitrate(p.BitrateBps)}` : "");
    } catch (e) { producer.replaceChildren(e.type || e.message); }
  };
  refreshProducer();
  every(3000, refreshProducer);
  every(5000, () => tl.refresh());
  await tl.refresh();

  async function session(mode, selector) {
    const ep = await dataEndpoint(name, "GET_HLS_STREAMING_SESSION_URL");
    const out = await call("/getHLSStreamingSessionURL", { StreamName: name, PlaybackMode: mode, ContainerFormat: "FRAGMENTED_MP4",
      DisplayFragmentTimestamp: "ALWAYS", HLSFragmentSelector: selector, MaxMediaPlaylistFragmentResults: mode === "ON_DEMAND" ? 5000 : undefined }, ep);
    return out.HLSStreamingSessionURL;
  }
  async function goLive() {
    liveButton.setAttribute("aria-pressed", "true");
    state.textContent = "Connecting…";
    try {
      await player.live(await session("LIVE", { FragmentSelectorType: "SERVER_TIMESTAMP" }));
    } catch (e) { if (e.name !== "AbortError") state.replaceChildren(h("span", { class: "error" }, e.message)); }
  }
  async function playArchive(ms) {
    liveButton.setAttribute("aria-pressed", "false");
    // The session starts at the fragment holding ms; the player seeks to ms.
    const f = tl.fragmentAt(ms);
    const start = f ? f.ServerTimestamp * 1000 : ms;
    state.replaceChildren("Archive · loading ", when(ms));
    try {
      await player.archive(await session("ON_DEMAND", { FragmentSelectorType: "SERVER_TIMESTAMP",
        TimestampRange: { StartTimestamp: start / 1000, EndTimestamp: Math.min(Date.now(), start + 3 * 3600e3) / 1000 } }), ms);
    } catch (e) { if (e.name !== "AbortError") state.replaceChildren(h("span", { class: "error" }, e.message)); }
  }
  if (tl.hasRecent()) goLive();
  else state.textContent = "No producer is sending now. Pick a moment on the timeline to play the archive.";
}

// timeline is the archive's bar over the last span: spans of fragments
// (gaps left empty), thumbnails, the play head; a click plays from that
// moment, a drag selects a range for a clip. Arrow keys move a cursor,
// Enter plays from it, Shift+arrows extend a selection.
function timeline(name, onPlay, onSelect) {
  const thumbs = h("div", { class: "thumbs" });
  const track = h("div", { class: "track" });
  const sel = h("div", { class: "selection", hidden: true });
  const head = h("div", { class: "head", hidden: true });
  const cursor = h("div", { class: "cursor", hidden: true });
  const el = h("div", { class: "timeline", id: "timeline", tabindex: 0, role: "slider", "aria-labelledby": "timeline-title",
    "aria-describedby": "timeline-help" }, thumbs, track, sel, head, cursor);
  const axisFrom = h("span"), axisTo = h("span");
  const wrap = h("div", {}, el, h("div", { class: "axis" }, axisFrom, axisTo),
    h("p", { class: "muted", id: "timeline-help" }, "Click to play from a moment; drag to select a clip. Keys: arrows move, Enter plays, Shift+arrows select."));
  const t = {
    el: wrap, span: 3600e3, from: 0, to: 0, list: [], more: false, onFragments: () => {}, cursorMs: null, selFrom: null, selTo: null, headMs: null,
    thumbsAt: 0,
    setSpan(ms) { t.span = ms; t.thumbsAt = 0; t.refresh(); },
    x(ms) { return ((ms - t.from) / (t.to - t.from)) * 100; },
    at(clientX) {
      const r = el.getBoundingClientRect();
      return t.from + Math.min(1, Math.max(0, (clientX - r.left) / r.width)) * (t.to - t.from);
    },
    fragmentAt(ms) {
      return t.list.find((f) => f.ServerTimestamp * 1000 <= ms && ms < f.ServerTimestamp * 1000 + f.FragmentLengthInMilliseconds) ||
        t.list.find((f) => f.ServerTimestamp * 1000 >= ms);
    },
    hasRecent() {
      const f = t.list[t.list.length - 1];
      return !!f && Date.now() - (f.ServerTimestamp * 1000 + f.FragmentLengthInMilliseconds) < 30000;
    },
    async refresh() {
      t.to = Date.now();
      t.from = t.to - t.span;
      el.dataset.from = t.from;
      el.dataset.to = t.to;
      el.setAttribute("aria-valuemin", 0);
      el.setAttribute("aria-valuemax", 100);
      axisFrom.replaceChildren(when(t.from));
      axisTo.replaceChildren("now");
      try {
        const ep = await dataEndpoint(name, "LIST_FRAGMENTS");
        const { items, more } = await listAll("/listFragments", { StreamName: name, MaxResults: 1000, FragmentSelector: {
          FragmentSelectorType: "SERVER_TIMESTAMP", TimestampRange: { StartTimestamp: t.from / 1000, EndTimestamp: t.to / 1000 } } }, "Fragments", ep, 5);
        t.list = items;
        t.more = more;
      } catch (e) {
        if (e.type !== "ClientLimitExceededException") toast(e.message, true);
        return;
      }
      // Fragments closer than half a second are one span: the rest is a gap.
      const spans = [];
      for (const f of t.list) {
        const s = f.ServerTimestamp * 1000, e = s + f.FragmentLengthInMilliseconds;
        const last = spans[spans.length - 1];
        if (last && s - last[1] < 500) last[1] = Math.max(last[1], e);
        else spans.push([s, e]);
      }
      track.replaceChildren(...spans.map(([s, e]) => {
        const d = h("div", { class: "span", title: `${new Date(s).toLocaleString()} – ${new Date(e).toLocaleString()}` });
        d.style.left = `${Math.max(0, t.x(s))}%`;
        d.style.width = `${Math.max(0.2, t.x(e) - Math.max(0, t.x(s)))}%`;
        return d;
      }));
      t.onFragments(t.list, t.more);
      if (Date.now() - t.thumbsAt > 60000) t.thumbnails();
      t.draw();
    },
    // thumbnails puts up to 8 pictures over the span where it has media.
    async thumbnails() {
      t.thumbsAt = Date.now();
      const n = 8, imgs = [];
      for (let i = 0; i < n; i++) {
        const ms = t.from + ((i + 0.5) / n) * (t.to - t.from);
        const f = t.fragmentAt(ms);
        if (!f || f.ServerTimestamp * 1000 > ms + (t.to - t.from) / n / 2) continue;
        // In a gap, the middle of the fragment after it: a producer's first
        // fragment may open with audio before its first picture.
        const start = f.ServerTimestamp * 1000;
        const src = await thumbnail(name, start <= ms ? ms : start + f.FragmentLengthInMilliseconds / 2, 160);
        if (!src) continue;
        const img = h("img", { src, alt: "" });
        img.style.left = `${t.x(ms)}%`;
        imgs.push(img);
        thumbs.replaceChildren(...imgs);
      }
    },
    setHead(ms) { t.headMs = ms; t.draw(); },
    draw() {
      const place = (node, ms) => {
        node.hidden = ms === null || ms === undefined || ms < t.from || ms > t.to;
        if (!node.hidden) node.style.left = `${t.x(ms)}%`;
      };
      place(head, t.headMs);
      place(cursor, t.cursorMs);
      if (t.cursorMs !== null) el.dataset.cursor = Math.round(t.cursorMs);
      if (t.selFrom !== null && t.selTo !== null && t.selFrom !== t.selTo) {
        const a = Math.min(t.selFrom, t.selTo), b = Math.max(t.selFrom, t.selTo);
        sel.hidden = false;
        sel.style.left = `${t.x(a)}%`;
        sel.style.width = `${t.x(b) - t.x(a)}%`;
      } else sel.hidden = true;
      const v = t.cursorMs ?? t.headMs;
      if (v) {
        el.setAttribute("aria-valuenow", Math.round(t.x(v)));
        el.setAttribute("aria-valuetext", new Date(v).toLocaleString());
      }
    },
  };
  let down = null;
  el.addEventListener("pointerdown", (ev) => {
    el.setPointerCapture(ev.pointerId);
    down = { x: ev.clientX, ms: t.at(ev.clientX) };
    t.selFrom = t.selTo = null;
  });
  el.addEventListener("pointermove", (ev) => {
    if (!down || Math.abs(ev.clientX - down.x) < 4) return;
    t.selFrom = down.ms;
    t.selTo = t.at(ev.clientX);
    t.draw();
  });
  el.addEventListener("pointerup", (ev) => {
    if (!down) return;
    const start = down;
    down = null;
    if (Math.abs(ev.clientX - start.x) < 4) {
      t.selFrom = t.selTo = null;
      t.cursorMs = start.ms;
      t.draw();
      onPlay(start.ms);
      return;
    }
    t.selTo = t.at(ev.clientX);
    t.draw();
    onSelect(Math.min(t.selFrom, t.selTo), Math.max(t.selFrom, t.selTo));
  });
  el.addEventListener("keydown", (ev) => {
    const step = (t.to - t.from) / 100;
    if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      const from = t.cursorMs ?? t.headMs ?? t.to - step;
      const next = Math.min(t.to, Math.max(t.from, from + (ev.key === "ArrowLeft" ? -step : step)));
      if (ev.shiftKey) {
        if (t.selFrom === null) t.selFrom = from;
        t.selTo = next;
        onSelect(Math.min(t.selFrom, t.selTo), Math.max(t.selFrom, t.selTo));
      } else t.selFrom = t.selTo = null;
      t.cursorMs = next;
      t.draw();
      ev.preventDefault();
    } else if (ev.key === "Enter" && t.cursorMs !== null) {
      onPlay(t.cursorMs);
      ev.preventDefault();
    }
  });
  return t;
}

window.addEventListener("hashchange", route);
route();
