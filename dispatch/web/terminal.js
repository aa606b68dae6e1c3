// Sub-centre terminal: receives tickets over /ws/terminal, sounds the reminder tone until a person
// acknowledges, and sends feedback. Reconnects by itself and replays from the last sequence number
// it saw (kept in localStorage), keeping tickets by id so none is shown twice.
"use strict";
const $ = (id) => document.getElementById(id);
const tickets = new Map();  // id -> ticket
const cards = new Map();    // id -> its card element (kept, so its map is drawn once)
let token = sessionStorage.getItem("liandong.terminal.token");
let username = sessionStorage.getItem("liandong.terminal.user");
let socket = null, requestId = 0, base = null;

// What arrived, for people checking a terminal (and for tests): ticket ids in the order first seen.
const liandongTerminal = window.liandongTerminal = { arrivals: [], connects: 0 };

const STATES = { created: ["新", "new"], delivered: ["待确认", "waiting"], acknowledged: ["已确认 · 待反馈", "acknowledged · feedback due"],
                 closed: ["已反馈", "reported back"], rejected: ["已退回", "rejected"], cancelled: ["已撤销", "cancelled"] };
const waiting = (ticket) => ticket.state === "created" || ticket.state === "delivered";

async function arm() {
  const armed = await armAudio();
  $("sound").className = `conn ${armed ? "up" : "down"}`;
  $("sound").dataset.zh = armed ? "提醒音已启用" : "声音未启用";
  $("sound").dataset.en = armed ? "sound armed" : "sound off";
  $("sound").textContent = t($("sound").dataset.zh, $("sound").dataset.en);
  $("arming").classList.toggle("hidden", armed);
}

// The reminder repeats while any ticket waits for a person, at the gravest waiting ticket's tone.
let ringTimer = null;
function updateAlarm() {
  const pending = [...tickets.values()].filter(waiting);
  $("banner").classList.toggle("hidden", pending.length === 0);
  liandongAudio.ringing = pending.length > 0;
  clearTimeout(ringTimer);
  if (!pending.length) return;
  const gravest = pending.sort((a, b) => a.incident.severity - b.incident.severity)[0];
  playTone(gravest.alert.tone);
  ringTimer = setTimeout(updateAlarm, gravest.alert.repeat_s * 1000);
}

function seqKey() { return `liandong.terminal.${username}.last_seq`; }

function send(message, { answered = true } = {}) {
  const framed = answered ? { id: ++requestId, ...message } : message;
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(framed));
}

function see(ticket) {
  const isNew = !tickets.has(ticket.id);
  const wasWaiting = !isNew && waiting(tickets.get(ticket.id));
  tickets.set(ticket.id, ticket);
  if (isNew) liandongTerminal.arrivals.push(ticket.id);
  // A receipt waits for no answer (a repeat is harmless), so it carries no id and gets none.
  if (isNew && ticket.state === "created") send({ type: "received", ticket_id: ticket.id }, { answered: false });
  render();
  if (isNew || (wasWaiting && !waiting(ticket))) updateAlarm();
}

function render() {
  const open = [...tickets.values()].filter((x) => !["closed", "cancelled", "rejected"].includes(x.state))
    .sort((a, b) => a.incident.severity - b.incident.severity || a.id - b.id);
  for (const [id, node] of cards) if (!open.some((x) => x.id === id)) { node.remove(); cards.delete(id); }
  open.forEach((ticket, index) => {
    let node = cards.get(ticket.id);
    if (!node) { node = card(ticket); cards.set(ticket.id, node); }
    fill(node, ticket);
    const list = $("tickets");
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] ?? null);
    if (!node.map && base) node.map = miniMap(node.querySelector(".minimap"), ticket);
  });
  $("idle").classList.toggle("hidden", open.length > 0 || !token);
}

function card(ticket) {
  const node = $("ticket-template").content.firstElementChild.cloneNode(true);
  node.dataset.ticket = ticket.id;
  node.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = t(el.dataset.zh, el.dataset.en); });
  node.querySelector(".ack").addEventListener("click", () => send({ type: "ack", ticket_id: ticket.id }));
  node.querySelector(".reject").addEventListener("click", () => {
    const reason = prompt(t("退回原因", "Reason for rejecting"));
    if (reason) send({ type: "reject", ticket_id: ticket.id, reason });
  });
  const form = node.querySelector(".feedback");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const people = data.get("people_affected");
    send({ type: "feedback", ticket_id: ticket.id, outcome: data.get("outcome"),
           people_affected: people === "" ? null : Number(people),
           resources_used: data.get("resources_used"), notes: data.get("notes") });
  });
  return node;
}

function fill(node, ticket) {
  const i = ticket.incident;
  node.classList.toggle("unacknowledged", waiting(ticket));
  const heading = node.querySelector("h3");
  heading.innerHTML = `<span class="sev${i.severity}"></span> `;
  heading.firstChild.textContent = t(`[${i.severity_level} ${i.severity_label}]`, `[level ${i.severity_level}]`);
  heading.append(`${t(i.type_name, i.type_name_en || i.type_name)} · ${t("处警单", "ticket")} #${ticket.id}`);
  node.querySelector(".detail").textContent = i.description || t("（无描述）", "(no description)");
  node.querySelector(".where").textContent =
    `${i.address || ""} (${i.location.lon.toFixed(5)}, ${i.location.lat.toFixed(5)})` +
    (ticket.outside_jurisdiction ? ` · ${t("辖区外", "outside your jurisdiction")}` : "") +
    (i.caller_phone ? ` · ${t("报警人", "caller")} ${i.caller_name} ${i.caller_phone}` : "");
  node.querySelector(".tasks").textContent = ticket.tasks?.length ? `${t("任务", "Tasks")}: ${ticket.tasks.join("；")}` : "";
  const state = node.querySelector(".state");
  state.textContent = t(...(STATES[ticket.state] ?? [ticket.state, ticket.state]));
  state.className = `state ${ticket.state}`;
  node.querySelector(".ack").classList.toggle("hidden", !waiting(ticket));
  node.querySelector(".feedback").classList.toggle("hidden", ticket.state !== "acknowledged");
}

function miniMap(element, ticket) {
  const { lat, lon } = ticket.incident.location;
  const { map } = baseMap(element, base, { view: [lat, lon, 13], zoomControl: false, attributionControl: false });
  severityMarker(lat, lon, ticket.incident.severity, 10).addTo(map);
  return map;
}

// Feedback overdue: the ticket was acknowledged but nobody reported back yet.
function remind(ticket) {
  playTone("chime");
  const error = cards.get(ticket.id)?.querySelector(".error");
  if (error) error.textContent = t("请尽快反馈处置结果", "feedback is overdue");
}

// --- connection: always visible; reconnects and replays what it missed ---------------------------
let retry = 500, lostAt = null, lostTimer = null;
function setConnection(up) {
  $("conn").className = `conn ${up ? "up" : "down"}`;
  $("conn").textContent = up ? t("已连接", "online") : t("连接中断 · 重连中", "offline, reconnecting");
  lostAt = up ? null : (lostAt ?? Date.now());
  clearInterval(lostTimer);
  $("offline").classList.toggle("hidden", up || !token);
  if (up) return;
  const show = () => {
    const seconds = Math.round((Date.now() - lostAt) / 1000);
    $("offline").textContent = t(`与指挥中心的连接中断 ${seconds} 秒，正在重连；恢复后补收期间的处警单`,
                                 `Connection to the command centre lost ${seconds} s ago; reconnecting, missed tickets follow`);
  };
  show();
  lostTimer = setInterval(show, 1000);
}

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/terminal`);
  socket.onopen = () => {
    const last = localStorage.getItem(seqKey());
    socket.send(JSON.stringify({ type: "hello", token, last_seq: last === null ? null : Number(last) }));
  };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "welcome") {
      retry = 500;
      liandongTerminal.connects += 1;
      setConnection(true);
      $("subcentre").textContent = data.subcentre?.name ?? "";
      if (data.tickets) { localStorage.setItem(seqKey(), data.seq); data.tickets.forEach(see); }
      terminalCalls?.load(data.user.subcentre_id).catch(() => null);
    } else if (data.type === "ticket") {
      localStorage.setItem(seqKey(), data.seq);
      see(data.ticket);
      if (data.event === "realert") updateAlarm();  // escalated: the louder tone at once
      if (data.event === "reminder") remind(data.ticket);
    } else if (data.type === "notice") {  // another event for this sub-centre: a call ringing, ending
      localStorage.setItem(seqKey(), data.seq);
      terminalCalls?.notice(data);
    } else if (data.type === "error") {
      if (data.code === "unauthenticated" || data.code === "forbidden") { logOut(); return; }
      const where = data.ticket_id ? cards.get(data.ticket_id) : null;
      (where ? [where.querySelector(".error")] : document.querySelectorAll(".ticket .error"))
        .forEach((e) => { e.textContent = `${data.field ?? ""} ${data.message}`; });
    }
  };
  socket.onclose = () => {
    setConnection(false);
    if (token) { setTimeout(connect, retry); retry = Math.min(retry * 2, 5000); }
  };
}

async function loadMap() {
  const response = await fetch("/api/map", { headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) { base = await response.json(); render(); }
}

function logOut() {
  token = null; sessionStorage.removeItem("liandong.terminal.token");
  $("login").classList.remove("hidden");
  setConnection(false);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  arm();  // this click is the gesture browsers require before audio
  const form = new FormData(event.target);
  const response = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
  const data = await response.json();
  if (!response.ok) { $("login-error").textContent = data.error.message; return; }
  if (data.user.role !== "operator") { $("login-error").textContent = t("需要处警单位账号", "an operator account is required"); return; }
  token = data.token; username = data.user.username;
  sessionStorage.setItem("liandong.terminal.token", token);
  sessionStorage.setItem("liandong.terminal.user", username);
  $("login").classList.add("hidden");
  loadMap();
  connect();
});
$("arm").addEventListener("click", arm);
onLanguage(() => {
  for (const [id, node] of cards) fill(node, tickets.get(id));
  if (socket) setConnection(socket.readyState === WebSocket.OPEN);
});

if (token) { $("login").classList.add("hidden"); $("arming").classList.remove("hidden"); loadMap(); connect(); }

// Log out: the server ends the session (its sockets close everywhere), then the page forgets the token.
$("logout").addEventListener("click", async () => {
  if (token) await fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  logOut();
});
