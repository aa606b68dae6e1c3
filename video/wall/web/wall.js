// Monitoring wall: tiles of the window cameras from /ws/wall (low-resolution JPEG, about one a
// second), a layout of 1, 4, 9 or 16, groups by department, a tour through the groups, and the
// supervision alerts: a new alert pops its camera onto the wall. A click focuses a tile in full
// motion from /ws/focus: fragmented MP4 into Media Source Extensions, or faster JPEG without MSE.
"use strict";

const $ = (id) => document.getElementById(id);
const ENGLISH_KINDS = { absent: "Staff absent", offline: "Offline", covered: "Covered / dark", defocused: "Defocused",
                        frozen: "Frozen", moved: "View moved", storage: "Storage nearly full" };
const TOUR_S = 10;
const STALE_MS = 5000;

// A wall the console opened (cameras near an incident) is handed the console's session.
let token = sessionStorage.getItem("liandong.wall.token") ?? sessionStorage.getItem("liandong.console.token");
let socket = null, retry = 1000;
let cameras = [], kinds = {}, alerts = [];
let layout = Number(localStorage.getItem("liandong.wall.layout") || 4);
let group = "", page = 0, tourTimer = null;
const pinned = [];            // cameras popped onto the wall by an active alert, newest first
const seenAlerts = new Set(); // alert ids already announced
const tiles = new Map();      // camera id -> tile element
let shown = [];

// ?cameras=3,4: just these cameras (the console's "cameras near this incident"), until "show all".
let chosen = (new URLSearchParams(location.search).get("cameras") ?? "").split(",").map(Number).filter((id) => id > 0);
if (chosen.length) layout = [1, 4, 9, 16].find((n) => n >= chosen.length) ?? 16;

onLanguage(() => {
  renderGroups();
  renderAlerts();
  setConnection(socket !== null && socket.readyState === WebSocket.OPEN);
});

function setConnection(up) {
  $("conn").className = "conn " + (up ? "up" : "down");
  $("conn").textContent = up ? t("已连接", "connected") : t("未连接", "offline");
}

function departments() { return [...new Set(cameras.map((c) => c.department))].sort(); }

function renderGroups() {
  const select = $("group");
  select.replaceChildren(new Option(t("全部部门", "All departments"), ""),
                         ...departments().map((d) => new Option(d, d)));
  select.value = group;
}

function visible() {
  const inGroup = cameras.filter((c) => (!group || c.department === group) && (!chosen.length || chosen.includes(c.id)));
  const pages = Math.max(1, Math.ceil(inGroup.length / layout));
  page %= pages;
  const base = inGroup.slice(page * layout, page * layout + layout).map((c) => c.id);
  const first = pinned.filter((id) => cameras.some((c) => c.id === id));
  return [...first, ...base.filter((id) => !first.includes(id))].slice(0, layout);
}

function render() {
  const ids = visible();
  const grid = $("grid");
  const side = Math.sqrt(layout);
  grid.style.gridTemplateColumns = `repeat(${side}, 1fr)`;
  grid.style.gridTemplateRows = `repeat(${side}, 1fr)`;
  const cells = [];
  for (let i = 0; i < layout; i++) {
    const id = ids[i];
    if (id === undefined) { const empty = document.createElement("div"); empty.className = "tile empty"; cells.push(empty); continue; }
    cells.push(tileFor(id));
  }
  grid.replaceChildren(...cells);
  document.querySelectorAll("#controls [data-layout]").forEach((b) =>
    b.setAttribute("aria-pressed", String(Number(b.dataset.layout) === layout)));
  markAlerting();
  if (JSON.stringify(ids) !== JSON.stringify(shown)) {
    shown = ids;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "show", cameras: ids }));
  }
}

function tileFor(id) {
  if (tiles.has(id)) return tiles.get(id);
  const camera = cameras.find((c) => c.id === id);
  const tile = document.createElement("div");
  tile.className = "tile stale";
  tile.dataset.camera = String(id);
  tile.dataset.frames = "0";
  const img = document.createElement("img");
  img.alt = camera.name;
  const label = document.createElement("div");
  label.className = "label";
  label.innerHTML = "<span></span><span></span>";
  label.children[0].textContent = camera.name;
  label.children[1].textContent = camera.department + " · " + t("窗口", "window ") + camera.window;
  const noSignal = document.createElement("div");
  noSignal.className = "no-signal";
  noSignal.dataset.zh = "无画面"; noSignal.dataset.en = "No picture";
  noSignal.textContent = t(noSignal.dataset.zh, noSignal.dataset.en);
  tile.append(img, noSignal, label);
  tile.addEventListener("click", () => openFocus(id));
  tiles.set(id, tile);
  return tile;
}

function showTile(id, at, jpeg) {
  const tile = tiles.get(id);
  if (!tile) return;
  const img = tile.querySelector("img");
  const old = img.src;
  img.src = URL.createObjectURL(new Blob([jpeg], { type: "image/jpeg" }));
  if (old) URL.revokeObjectURL(old);
  tile.dataset.frames = String(Number(tile.dataset.frames) + 1);
  tile.dataset.latencyMs = String(Math.round(Date.now() - at));
  tile.dataset.seen = String(Date.now());
  tile.classList.remove("stale");
}

setInterval(() => {
  const now = Date.now();
  tiles.forEach((tile) => tile.classList.toggle("stale", now - Number(tile.dataset.seen || 0) > STALE_MS));
}, 1000);

function activeAlerts() { return alerts.filter((a) => a.cleared_at === null && a.camera_id !== null); }

function markAlerting() {
  const alerting = new Set(activeAlerts().map((a) => a.camera_id));
  tiles.forEach((tile, id) => tile.classList.toggle("alerting", alerting.has(id)));
}

function takeAlerts(list) {
  alerts = list;
  const active = activeAlerts();
  const fresh = active.filter((a) => !seenAlerts.has(a.id));
  list.forEach((a) => seenAlerts.add(a.id));
  // A camera stays popped while its alert lasts; the newest alert's camera goes first.
  for (let i = pinned.length - 1; i >= 0; i--) if (!active.some((a) => a.camera_id === pinned[i])) pinned.splice(i, 1);
  fresh.sort((a, b) => String(b.opened_at).localeCompare(String(a.opened_at)) || b.id - a.id);  // newest first
  for (const a of [...fresh].reverse()) {  // the oldest pinned first, so the newest ends on top
    const at = pinned.indexOf(a.camera_id);
    if (at >= 0) pinned.splice(at, 1);
    pinned.unshift(a.camera_id);
  }
  if (fresh.length) popup(fresh[0]);  // the newest alert names itself
  renderAlerts();
  render();
}

function kindLabel(kind) { return i18n.lang === "en" ? (ENGLISH_KINDS[kind] || kind) : (kinds[kind] || kind); }

function popup(alert) {
  const box = $("popup");
  box.textContent = `${kindLabel(alert.kind)} · ${alert.camera_name || ""}`;
  box.classList.remove("hidden");
  clearTimeout(popup.timer);
  popup.timer = setTimeout(() => box.classList.add("hidden"), 8000);
}

function renderAlerts() {
  const list = $("alert-list");
  $("alert-count").textContent = `(${alerts.length})`;
  list.replaceChildren(...alerts.map((a) => {
    const node = $("alert-template").content.firstElementChild.cloneNode(true);
    node.dataset.alert = String(a.id);
    node.classList.toggle("cleared", a.cleared_at !== null);
    const picture = node.querySelector("img");
    if (a.snapshot_url) {
      fetch(a.snapshot_url, { headers: { Authorization: `Bearer ${token}` } })
        .then((r) => (r.ok ? r.blob() : null)).then((b) => { if (b) picture.src = URL.createObjectURL(b); });
    } else {  // an offline camera sent no picture: say so rather than show a broken image
      const none = document.createElement("div");
      none.className = "no-snapshot";
      none.textContent = t("无截图", "no picture");
      picture.replaceWith(none);
    }
    node.querySelector(".what").textContent = kindLabel(a.kind) + (a.cleared_at ? t(" · 已恢复", " · cleared") : "");
    node.querySelector(".camera").textContent = a.camera_name ? `${a.camera_name} (${a.department})` : t("系统", "system");
    node.querySelector(".when").textContent = new Date(a.opened_at).toLocaleString(i18n.lang === "en" ? "en-GB" : "zh-CN") +
      (a.acknowledged_by ? t(" · 已确认 ", " · acknowledged by ") + a.acknowledged_by : "");
    node.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = t(el.dataset.zh, el.dataset.en); });
    node.querySelector(".ack").disabled = a.acknowledged_at !== null;
    node.querySelector(".ack").addEventListener("click", () => act(a.id, "acknowledge"));
    node.querySelector(".close").addEventListener("click", () => act(a.id, "close"));
    if (a.camera_id !== null) node.firstElementChild.addEventListener("click", () => openFocus(a.camera_id));
    return node;
  }));
}

async function act(id, action) {
  const response = await fetch(`/api/supervision/alerts/${id}/${action}`, {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: "{}" });
  if (!response.ok) popup({ kind: (await response.json()).error.message, camera_name: "" });
}

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/wall`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => { retry = 1000; socket.send(JSON.stringify({ type: "hello", token })); };
  socket.onmessage = (message) => {
    if (message.data instanceof ArrayBuffer) {
      const view = new DataView(message.data);
      showTile(view.getUint32(0), view.getFloat64(4), message.data.slice(12));
      return;
    }
    const data = JSON.parse(message.data);
    if (data.type === "welcome") {
      cameras = data.cameras; kinds = data.kinds; shown = [];
      setConnection(true); renderGroups(); takeAlerts(data.alerts);
    } else if (data.type === "alerts") {
      takeAlerts(data.alerts);
    } else if (data.type === "error" && (data.code === "unauthenticated" || data.code === "forbidden")) {
      logOut();
    }
  };
  socket.onclose = () => {
    setConnection(false);
    if (token) { setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); }
  };
}

// --- focused full-motion view -------------------------------------------------------------------

let focusSocket = null, focusCamera = null;

function openFocus(id, mode) {
  closeFocus();
  focusCamera = id;
  const camera = cameras.find((c) => c.id === id);
  $("focus-title").textContent = `${camera.name} · ${camera.department}`;
  $("focus").classList.remove("hidden");
  mode = mode || ("MediaSource" in window ? "mse" : "jpeg");
  $("focus-mode").textContent = mode === "mse" ? "H.264 · MSE" : "JPEG";
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/focus`);
  ws.binaryType = "arraybuffer";
  focusSocket = ws;
  loadTimeline();
  timeline.timer = setInterval(loadTimeline, 30_000);
  let sink = null;
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token, camera: id, mode }));
  ws.onmessage = (message) => {
    if (typeof message.data === "string") {
      const data = JSON.parse(message.data);
      if (data.type !== "codec") return;
      if (data.mime === "image/jpeg") sink = jpegSink();
      else if (window.MediaSource && MediaSource.isTypeSupported(data.mime)) {
        sink = mseSink(data.mime);
        $("focus-sound").classList.toggle("hidden", !data.mime.includes("mp4a")); // the camera has sound
      }
      else { openFocus(id, "jpeg"); }
      return;
    }
    if (sink) sink(message.data);
  };
}

function jpegSink() {
  const img = $("focus-image");
  img.classList.remove("hidden");
  $("focus-mode").textContent = "JPEG";
  return (data) => {
    const old = img.src;
    img.src = URL.createObjectURL(new Blob([data], { type: "image/jpeg" }));
    if (old) URL.revokeObjectURL(old);
    img.dataset.frames = String(Number(img.dataset.frames || 0) + 1);
  };
}

function mseSink(mime) {
  const video = $("focus-video");
  video.classList.remove("hidden");
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  const pending = [];
  let buffer = null;
  const feed = () => {
    if (!buffer || buffer.updating || !pending.length) return;
    buffer.appendBuffer(pending.shift());
  };
  source.addEventListener("sourceopen", () => {
    buffer = source.addSourceBuffer(mime);
    buffer.addEventListener("updateend", () => {
      const ranges = video.buffered;
      if (ranges.length) {
        const end = ranges.end(ranges.length - 1);
        // Stay at the live edge, for an hour as for a minute: far behind, jump; a little, catch up.
        const behind = end - video.currentTime;
        if (behind > 0.6) video.currentTime = end - 0.15;
        video.playbackRate = behind > 0.3 ? 1.1 : 1.0;
        video.dataset.behindMs = String(Math.round(behind * 1000));
        if (video.currentTime - ranges.start(0) > 30 && !buffer.updating) { buffer.remove(0, video.currentTime - 10); return; }
      }
      feed();
    });
    feed();
  });
  return (data) => { pending.push(data); feed(); video.play().catch(() => {}); };
}

// --- recording timeline -------------------------------------------------------------------------
// The focused camera's last hours as stored: recorded spans, and the gaps with the recorder's reason
// for each. A click plays two minutes of the recording from that moment; gaps inside them are named
// on screen (the file joins the two sides, so the picture's clock would jump with nothing said).

const PLAY_S = 120;
const timeline = { hours: 1, since: null, until: null, data: null, timer: null };

function clockOf(at) {
  return new Date(at).toLocaleTimeString(i18n.lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

function authorized(path) { return fetch(path, { headers: { Authorization: `Bearer ${token}` } }); }

async function loadTimeline() {
  const id = focusCamera;
  if (id === null) return;
  const until = new Date(), since = new Date(until.getTime() - timeline.hours * 3600e3);
  const query = new URLSearchParams({ since: since.toISOString(), until: until.toISOString() });
  const response = await authorized(`/api/cameras/${id}/recordings?${query}`);
  if (focusCamera !== id) return;
  const data = await response.json();
  if (!response.ok) { $("timeline-summary").textContent = data.error.message; return; }
  Object.assign(timeline, { since, until, data });
  drawTimeline();
}

function drawTimeline() {
  const { since, until, data } = timeline;
  if (!data) return;
  const whole = until - since;
  const part = (kind, start, end, title) => {
    const node = document.createElement("div");
    const from = Math.max(0, new Date(start) - since), to = Math.min(whole, new Date(end ?? until) - since);
    node.className = kind;
    node.style.left = `${(from / whole) * 100}%`;  // CSSOM, which the page's style policy allows
    node.style.width = `${Math.max(0.15, ((to - from) / whole) * 100)}%`;
    node.title = title;
    node.dataset.start = start; node.dataset.end = end ?? "";
    return node;
  };
  $("track").replaceChildren(
    ...data.recorded.map((r) => part("recorded", r.started_at, r.ended_at, `${clockOf(r.started_at)}–${clockOf(r.ended_at)}`)),
    ...data.gaps.map((g) => {
      const node = part("gap", g.started_at, g.ended_at,
                        `${t("未录制", "Not recorded")} ${clockOf(g.started_at)}–${clockOf(g.ended_at)} · ${g.reason}`);
      node.dataset.reason = g.reason;
      return node;
    }));
  $("track").title = t("点击回放该时刻起两分钟", "Click to play two minutes from that moment");
  $("track-since").textContent = clockOf(since);
  $("track-until").textContent = clockOf(until);
  $("timeline-summary").textContent = t(`${data.recorded.length} 段录像 · ${data.gaps.length} 处未录制`,
                                        `${data.recorded.length} recorded · ${data.gaps.length} not recorded`);
}

async function playFrom(at) {
  const id = focusCamera;
  const until = new Date(Math.min(at.getTime() + PLAY_S * 1000, Date.now()));
  const query = new URLSearchParams({ since: at.toISOString(), until: until.toISOString() });
  const response = await authorized(`/api/cameras/${id}/playback?${query}`);
  if (focusCamera !== id) return;
  const info = $("playback-info");
  info.classList.remove("hidden", "gapped");
  if (!response.ok) { info.textContent = (await response.json()).error.message; return; }
  const gaps = (response.headers.get("Recording-Gaps") ?? "none").split(",").filter((g) => g && g !== "none");
  const video = $("playback-video");
  if (video.src) URL.revokeObjectURL(video.src);
  video.src = URL.createObjectURL(await response.blob());
  video.dataset.gaps = gaps.join(",");
  video.classList.remove("hidden");
  $("focus-video").classList.add("hidden");
  $("focus-image").classList.add("hidden");
  $("back-to-live").classList.remove("hidden");
  let text = `${t("回放", "Playback")} ${clockOf(at)}–${clockOf(until)}`;
  if (gaps.length) {
    info.classList.add("gapped");
    text += ` · ${t("其中未录制", "not recorded within")}: ` + gaps.map((g) => g.split("/").map(clockOf).join("–")).join(", ")
      + t("（画面时间在此跳过）", " (the picture's clock jumps there)");
  }
  info.textContent = text;
  video.play().catch(() => {});
}

function stopPlayback() {
  const video = $("playback-video");
  video.pause();
  if (video.src) { URL.revokeObjectURL(video.src); video.removeAttribute("src"); video.load(); }
  video.classList.add("hidden");
  $("playback-info").classList.add("hidden");
  $("back-to-live").classList.add("hidden");
}

$("track").addEventListener("click", (event) => {
  if (!timeline.data) return;
  const box = $("track").getBoundingClientRect();
  const share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  playFrom(new Date(timeline.since.getTime() + share * (timeline.until - timeline.since)));
});
document.querySelectorAll("#timeline [data-hours]").forEach((button) => button.addEventListener("click", () => {
  timeline.hours = Number(button.dataset.hours);
  document.querySelectorAll("#timeline [data-hours]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
  loadTimeline();
}));
$("back-to-live").addEventListener("click", () => { if (focusCamera !== null) openFocus(focusCamera); });
onLanguage(drawTimeline);

// Sound only by the supervisor's own click (browsers allow nothing else, and a wall must not blare):
// every focused view opens muted. Once on, the sound passes through an analyser on its way to the
// speakers, so what is heard is measured (window.liandongFocusAudio), not assumed.
const focusAudio = (window.liandongFocusAudio = { heard: 0, peak: 0 });
let soundGraph = null;

function measureSound(video) {
  if (!soundGraph) {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaElementSource(video).connect(analyser);
    analyser.connect(context.destination);
    const samples = new Float32Array(analyser.fftSize);
    setInterval(() => {
      if (video.muted || video.paused) return;
      analyser.getFloatTimeDomainData(samples);
      let peak = 0;
      for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
      focusAudio.peak = Math.max(focusAudio.peak, peak);
      if (peak > 0.05) focusAudio.heard += 1;
    }, 100);
    soundGraph = context;
  }
  soundGraph.resume();
}

function setSound(on) {
  const video = $("focus-video"), button = $("focus-sound");
  if (on) measureSound(video);
  video.muted = !on;
  button.setAttribute("aria-pressed", String(on));
  button.dataset.zh = on ? "静音" : "开启声音";
  button.dataset.en = on ? "Mute" : "Sound on";
  button.textContent = t(button.dataset.zh, button.dataset.en);
  if (on) video.play().catch(() => {});
}
$("focus-sound").addEventListener("click", () => setSound($("focus-video").muted));

function closeFocus() {
  if (focusSocket) { focusSocket.onclose = null; focusSocket.close(); focusSocket = null; }
  clearInterval(timeline.timer);
  Object.assign(timeline, { data: null, timer: null });
  stopPlayback();
  $("track").replaceChildren();
  $("timeline-summary").textContent = "";
  setSound(false);
  $("focus-sound").classList.add("hidden");
  const video = $("focus-video");
  if (video.src) { URL.revokeObjectURL(video.src); video.removeAttribute("src"); video.load(); }
  video.classList.add("hidden");
  $("focus-image").classList.add("hidden");
  $("focus-image").removeAttribute("src");
  $("focus").classList.add("hidden");
  focusCamera = null;
}

$("focus-close").addEventListener("click", closeFocus);
$("mark-empty").addEventListener("click", async () => {
  if (focusCamera === null) return;
  const response = await fetch(`/api/cameras/${focusCamera}/empty-seat`, {
    method: "POST", headers: { Authorization: `Bearer ${token}` } });
  popup({ kind: response.ok ? t("已记录空座画面", "Empty seat recorded") : (await response.json()).error.message, camera_name: "" });
});
document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeFocus(); });

// --- controls -------------------------------------------------------------------------------------

document.querySelectorAll("#controls [data-layout]").forEach((b) => b.addEventListener("click", () => {
  layout = Number(b.dataset.layout); page = 0;
  localStorage.setItem("liandong.wall.layout", String(layout));
  render();
}));
$("group").addEventListener("change", () => { group = $("group").value; page = 0; render(); });
$("tour").addEventListener("click", () => {
  const on = tourTimer === null;
  $("tour").setAttribute("aria-pressed", String(on));
  if (!on) { clearInterval(tourTimer); tourTimer = null; return; }
  tourTimer = setInterval(() => {
    // Through the pages of this group, then on to the next group.
    const inGroup = cameras.filter((c) => !group || c.department === group).length;
    if ((page + 1) * layout < inGroup) { page += 1; } else {
      const groups = departments();
      group = groups[(groups.indexOf(group) + 1) % groups.length] || "";
      page = 0; $("group").value = group;
    }
    render();
  }, TOUR_S * 1000);
});
$("show-all").addEventListener("click", () => {
  chosen = []; page = 0;
  $("show-all").classList.add("hidden");
  history.replaceState(null, "", "/wall");
  render();
});

function logOut() {
  token = null; sessionStorage.removeItem("liandong.wall.token");
  $("login-main").classList.remove("hidden"); $("layout").classList.add("hidden");
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
  const data = await response.json();
  if (!response.ok) { $("login-error").textContent = data.error.message; return; }
  if (!["supervisor", "dispatcher"].includes(data.user.role)) {
    $("login-error").textContent = t("需要监控中心账号", "a supervisor's account is required"); return;
  }
  token = data.token; sessionStorage.setItem("liandong.wall.token", token);
  start();
});

function start() {
  $("login-main").classList.add("hidden"); $("layout").classList.remove("hidden");
  $("show-all").classList.toggle("hidden", !chosen.length);
  connect();
}

if (token) start();

// Log out: the server ends the session (its sockets close everywhere), then the page forgets the token.
$("logout").addEventListener("click", async () => {
  if (token) await fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  logOut();
});
