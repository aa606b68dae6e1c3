// Sub-centre terminal: receives tickets over /ws/terminal, sounds the reminder tone until a person
// acknowledges, and sends feedback. Reconnects by itself and replays from the last sequence number
// it saw (kept in localStorage), keeping tickets by id so none is shown twice.
"use strict";
const $ = (id) => document.getElementById(id);
const tickets = new Map();
let token = sessionStorage.getItem("liandong.terminal.token");
let username = sessionStorage.getItem("liandong.terminal.user");
let socket = null;
let requestId = 0;

// Audio state is exposed for people debugging a silent terminal and for browser tests.
const audio = window.liandongAudio = { context: null, armed: false, ringing: false, tonesPlayed: 0, lastTone: null };

function arm() {
  audio.context = audio.context ?? new AudioContext();
  audio.context.resume().then(() => {
    audio.armed = audio.context.state === "running";
    $("sound").className = `conn ${audio.armed ? "up" : "down"}`;
    $("sound").textContent = audio.armed ? "提醒音已启用 sound armed" : "声音未启用 sound off";
    $("arming").classList.toggle("hidden", audio.armed);
  });
}

// Three tones, synthesised so the page needs no sound files: siren (sweep), urgent (beeps), chime.
function playTone(tone) {
  const ctx = audio.context;
  if (!ctx || ctx.state !== "running") return;
  const gain = ctx.createGain();
  gain.connect(ctx.destination);
  const now = ctx.currentTime;
  const beep = (freq, start, length, type = "square") => {
    const osc = ctx.createOscillator();
    osc.type = type; osc.frequency.setValueAtTime(freq, now + start);
    osc.connect(gain); osc.start(now + start); osc.stop(now + start + length);
    return osc;
  };
  gain.gain.setValueAtTime(0.25, now);
  if (tone === "siren") {
    const osc = beep(600, 0, 1.2, "sawtooth");
    osc.frequency.linearRampToValueAtTime(1200, now + 0.6);
    osc.frequency.linearRampToValueAtTime(600, now + 1.2);
  } else if (tone === "urgent") {
    [0, 0.25, 0.5].forEach((t) => beep(880, t, 0.15));
  } else {
    beep(660, 0, 0.3, "sine"); beep(990, 0.3, 0.5, "sine");
  }
  audio.tonesPlayed += 1;
  audio.lastTone = tone;
}

// The reminder repeats while any ticket waits for a person, at the shortest repeat any asks for.
let ringTimer = null;
function updateAlarm() {
  const waiting = [...tickets.values()].filter((t) => t.state === "created" || t.state === "delivered");
  $("banner").classList.toggle("hidden", waiting.length === 0);
  audio.ringing = waiting.length > 0;
  clearTimeout(ringTimer);
  if (!waiting.length) return;
  const loudest = waiting.sort((a, b) => a.incident.severity - b.incident.severity)[0];
  playTone(loudest.alert.tone);
  ringTimer = setTimeout(updateAlarm, loudest.alert.repeat_s * 1000);
}

function seqKey() { return `liandong.terminal.${username}.last_seq`; }

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ id: ++requestId, ...message }));
}

function see(ticket) {
  const isNew = !tickets.has(ticket.id);
  tickets.set(ticket.id, ticket);
  if (isNew && ticket.state === "created") send({ type: "received", ticket_id: ticket.id });
  render();
  if (isNew) updateAlarm();
  else if (!["created", "delivered"].includes(ticket.state)) updateAlarm();
}

function render() {
  const list = $("tickets");
  const order = [...tickets.values()].filter((t) => !["closed", "cancelled", "rejected"].includes(t.state))
    .sort((a, b) => a.incident.severity - b.incident.severity || a.id - b.id);
  list.replaceChildren(...order.map(card));
}

function card(ticket) {
  const node = $("ticket-template").content.firstElementChild.cloneNode(true);
  const i = ticket.incident;
  const waiting = ticket.state === "created" || ticket.state === "delivered";
  node.dataset.ticket = ticket.id;
  node.classList.toggle("unacknowledged", waiting);
  node.querySelector("h3").innerHTML = `<span class="sev${i.severity}">[${i.severity_level} ${i.severity_label}]</span> `;
  node.querySelector("h3").append(`${i.type_name} · 处警单 #${ticket.id}`);
  node.querySelector(".detail").textContent = i.description || "（无描述 no description）";
  node.querySelector(".where").textContent =
    `${i.address || ""} (${i.location.lon.toFixed(5)}, ${i.location.lat.toFixed(5)})${ticket.outside_jurisdiction ? " · 辖区外 outside jurisdiction" : ""}` +
    (i.caller_phone ? ` · 报警人 ${i.caller_name} ${i.caller_phone}` : "");
  node.querySelector(".state").textContent = ticket.state;
  node.querySelector(".state").className = `state ${ticket.state}`;
  const ack = node.querySelector(".ack");
  ack.classList.toggle("hidden", !waiting);
  ack.addEventListener("click", () => send({ type: "ack", ticket_id: ticket.id }));
  node.querySelector(".reject").addEventListener("click", () => {
    const reason = prompt("退回原因 Reason for rejecting");
    if (reason) send({ type: "reject", ticket_id: ticket.id, reason });
  });
  const form = node.querySelector(".feedback");
  form.classList.toggle("hidden", ticket.state !== "acknowledged");
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

// Feedback overdue: the ticket was acknowledged but nobody reported back yet.
function remind(ticket) {
  playTone("chime");
  const card = document.querySelector(`[data-ticket="${ticket.id}"] .error`);
  if (card) card.textContent = "请尽快反馈处置结果 · feedback is overdue";
}

let retry = 500;
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
      $("conn").className = "conn up"; $("conn").textContent = "已连接 online";
      $("subcentre").textContent = data.subcentre?.name ?? "";
      if (data.tickets) { localStorage.setItem(seqKey(), data.seq); data.tickets.forEach(see); }
    } else if (data.type === "ticket") {
      localStorage.setItem(seqKey(), data.seq);
      see(data.ticket);
      if (data.event === "realert") updateAlarm();  // escalated: the louder tone at once
      if (data.event === "reminder") remind(data.ticket);
    } else if (data.type === "error") {
      if (data.code === "unauthenticated") { logOut(); return; }
      document.querySelectorAll(".ticket .error").forEach((e) => { e.textContent = `${data.field ?? ""} ${data.message}`; });
    }
  };
  socket.onclose = () => {
    $("conn").className = "conn down"; $("conn").textContent = "连接中断 · 重连中 offline, reconnecting";
    if (token) { setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); }
  };
}

function logOut() {
  token = null; sessionStorage.removeItem("liandong.terminal.token");
  $("login").classList.remove("hidden");
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  arm();  // this click is the gesture browsers require before audio
  const form = new FormData(event.target);
  const response = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
  const data = await response.json();
  if (!response.ok) { $("login-error").textContent = data.error.message; return; }
  if (data.user.role !== "operator") { $("login-error").textContent = "需要处警单位账号 an operator account is required"; return; }
  token = data.token; username = data.user.username;
  sessionStorage.setItem("liandong.terminal.token", token);
  sessionStorage.setItem("liandong.terminal.user", username);
  $("login").classList.add("hidden");
  connect();
});
$("arm").addEventListener("click", arm);

if (token) { $("login").classList.add("hidden"); $("arming").classList.remove("hidden"); connect(); }
