// The efficiency supervision page: yellow and red cards arriving live (/ws/efficiency), the figures by
// department, item, window or staff with a drill-down to each case and its timeline (with the window
// camera's recording), correction notices, complaints, the appraisal and the monthly bulletins.
// Every state shown is what the server answered; nothing is assumed to have worked.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("liandong.efficiency.token");
let me = null;
let socket = null, retry = 1000;
const cards = new Map();  // id -> open card
let openCase = null;
let figuresTimer = null;

async function api(method, path, body) {
  const options = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (response.status === 401) { loggedOut(); throw new Error(t("请重新登录", "log in again")); }
  if (!response.ok) {
    const e = data?.error ?? {};
    throw new Error(e.field ? `${e.field}: ${e.message}` : e.message || response.statusText);
  }
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function cell(row, text, className) { row.appendChild(el("td", text ?? "", className)); }
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function rate(value) { return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`; }
function days(value) { return value === null || value === undefined ? "—" : value.toFixed(1); }

function actionButton(parent, label, action) {
  const b = el("button", label, "secondary");
  b.addEventListener("click", async () => {
    try { await action(); } catch (error) { alert(error.message); }
  });
  parent.appendChild(b);
  return b;
}

// What a card's escalation sent, and what became of each message (from the outbox's stored outcome).
const ROLES = { contact: ["联系人", "contact"], leader: ["负责人", "leader"], centre: ["中心值班长", "centre"] };
const SENT = { pending: ["发送中", "sending"], sent: ["已送达", "sent"], failed: ["发送失败", "failed"] };
async function showNotices(item, cardId) {
  const found = await api("GET", `/api/efficiency/cards/${cardId}/notices`);
  const list = el("ol", undefined, "notices");
  for (const n of found.notices) {
    list.appendChild(el("li", `${t(...ROLES[n.role])} ${n.recipient} · ${n.channel} · ${t(...SENT[n.status])}`
      + (n.last_error ? ` (${n.last_error})` : "")));
  }
  if (!found.notices.length) list.appendChild(el("li", t("尚未通知", "nobody told yet")));
  item.querySelector("ol.notices")?.remove();
  item.appendChild(list);
}

// --- live cards ----------------------------------------------------------------------------------
const REASONS = { time: ["时限", "time limit"], complaint: ["投诉超期", "complaint late"],
  stage_skipped: ["环节缺失", "stage skipped"], out_of_order: ["环节顺序错误", "stages out of order"],
  not_accepted: ["未受理即办结", "completed without acceptance"], same_person: ["审核审批同一人", "same reviewer and approver"],
  fee_above_standard: ["超标准收费", "fee above standard"], documents_missing: ["材料不全即受理", "documents missing"],
  suspended_too_long: ["暂停超时", "suspended too long"] };

function cardText(card) {
  const reason = REASONS[card.reason] ?? [card.reason, card.reason];
  const subject = card.case_id ? `${card.department} ${card.reference ?? ""}` : `${card.department} ${t("投诉", "complaint")} #${card.complaint_id}`;
  return `${t(card.colour === "red" ? "红牌" : "黄牌", card.colour === "red" ? "Red" : "Yellow")} · ${t(...reason)} · ${subject}`
    + (card.window_label ? ` · ${card.window_label}` : "");
}

function drawCards() {
  const list = $("cards");
  list.replaceChildren();
  const ordered = [...cards.values()].sort((a, b) => b.id - a.id);
  for (const card of ordered) {
    const item = el("li", undefined, `card ${card.colour}${card.fresh ? " fresh" : ""}`);
    item.dataset.card = card.id;
    item.appendChild(el("span", cardText(card)));
    item.appendChild(el("time", when(card.opened_at)));
    if (card.detail) item.appendChild(el("small", card.detail));
    if (card.case_id) item.addEventListener("click", () => showCase(card.case_id));
    list.appendChild(item);
  }
  $("card-count").textContent = `${ordered.filter((c) => c.colour === "red").length} / ${ordered.length}`;
}

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/efficiency`);
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "hello", token })));
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "welcome") {
      retry = 1000;
      setLive(true);
      cards.clear();
      for (const card of message.cards) cards.set(card.id, card);
    } else if (message.type === "cards") {
      for (const card of message.opened) if (!card.closed_at) cards.set(card.id, { ...card, fresh: true });
      for (const card of message.closed) cards.delete(card.id);
      if (openCase && [...message.opened, ...message.closed].some((c) => c.case_id === openCase)) showCase(openCase);
      // A card means a case moved: the figures follow, at most every few seconds.
      clearTimeout(figuresTimer);
      figuresTimer = setTimeout(loadFigures, 3000);
    } else if (message.type === "error") {
      if (message.code === "unauthenticated") loggedOut();
      return;
    }
    drawCards();
  });
  socket.addEventListener("close", () => {
    setLive(false);
    if (!token) return;
    setTimeout(() => { if (token) connect(); }, retry);
    retry = Math.min(retry * 2, 15000);
  });
}

function setLive(up) {
  $("live").className = `live ${up ? "on" : "off"}`;
  $("live").textContent = up ? t("实时", "live") : t("未连接", "offline");
}

// --- figures and drill-down ----------------------------------------------------------------------
function monthBounds(month) {
  const [year, m] = month.split("-").map(Number);
  return [new Date(year, m - 1, 1), new Date(new Date(year, m, 1).getTime() - 1)];
}

function figuresRow(body, row, by) {
  const tr = body.insertRow();
  cell(tr, row.key); cell(tr, row.received); cell(tr, row.in_progress); cell(tr, row.completed);
  const onTime = el("td");
  onTime.appendChild(el("span", rate(row.on_time_rate)));
  if (row.on_time_rate !== null && row.on_time_rate !== undefined) {
    const bar = el("span", undefined, "bar");
    bar.style.width = `${Math.round(row.on_time_rate * 60)}px`;
    onTime.appendChild(bar);
  }
  tr.appendChild(onTime);
  cell(tr, `${days(row.average_days)} / ${days(row.p90_days)}`);
  cell(tr, row.red_cards, row.red_cards ? "red" : ""); cell(tr, row.yellow_cards, row.yellow_cards ? "yellow" : "");
  cell(tr, row.anomalies); cell(tr, `${row.complaints}${row.complaints_upheld ? ` (${row.complaints_upheld})` : ""}`);
  cell(tr, rate(row.satisfaction)); cell(tr, row.absence_minutes === null ? "—" : row.absence_minutes.toFixed(0));
  if (by) {
    tr.className = "drill";
    tr.addEventListener("click", () => showCases(by, row.key));
  }
}

async function loadFigures() {
  const form = new FormData($("figures-filter"));
  const [since, until] = monthBounds(form.get("month"));
  const by = form.get("by");
  $("figures-error").textContent = "";
  let data;
  try {
    data = await api("GET", `/api/efficiency/statistics?${new URLSearchParams({ since: since.toISOString(),
      until: until.toISOString(), by })}`);
  } catch (error) { $("figures-error").textContent = error.message; return; }
  const body = $("figures").tBodies[0];
  body.replaceChildren();
  for (const row of data.rows) figuresRow(body, row, by);
  const foot = $("figures").tFoot;
  foot.replaceChildren();
  figuresRow(foot, { key: t("合计", "Total"), ...data.totals, p90_days: null }, null);
  await loadAppraisal(form.get("month"));
}

async function showCases(by, key) {
  const query = new URLSearchParams({ state: "all", limit: "100" });
  const [department, rest] = key.split(" · ");
  if (by === "department") query.set("department", key);
  else if (by === "item") query.set("item", key);
  else if (by === "window") { query.set("department", department); query.set("window", rest ?? ""); }
  else query.set("department", department);
  const found = await api("GET", `/api/efficiency/cases?${query}`);
  $("cases-title").textContent = key;
  const body = $("cases").tBodies[0];
  body.replaceChildren();
  for (const c of found) {
    if (by === "staff" && c.staff !== rest) continue;
    const tr = body.insertRow();
    tr.className = "drill";
    cell(tr, c.reference); cell(tr, c.item_code); cell(tr, c.window_label); cell(tr, when(c.accepted_at));
    cell(tr, `${days(c.used_days)} / ${c.promised_days} / ${c.legal_days}`,
         c.used_days > c.legal_days ? "red" : c.open_cards ? "yellow" : "");
    cell(tr, c.completed_at ? t("办结", "completed") : c.suspended ? t("暂停", "suspended") : t("在办", "open"));
    tr.addEventListener("click", () => showCase(c.id));
  }
  $("cases-section").classList.remove("hidden");
}

// --- one case ------------------------------------------------------------------------------------
const STAGES = { accept: ["受理", "accept"], handle: ["承办", "handle"], review: ["审核", "review"],
  approve: ["审批", "approve"], complete: ["办结", "complete"] };
const STEPS = { issued: ["发出", "issued"], answered: ["部门答复", "answered"], accepted: ["认可", "accepted"],
  returned: ["退回", "returned"] };

async function play(link) {
  // A video element cannot send the bearer token: fetch the recording and play it from a blob.
  const response = await fetch(link, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) { alert((await response.json()).error.message); return; }
  const video = $("playback");
  if (video.src) URL.revokeObjectURL(video.src);
  video.src = URL.createObjectURL(await response.blob());
  video.classList.remove("hidden");
  video.play().catch(() => null);
}

async function showCase(id) {
  openCase = id;
  const c = await api("GET", `/api/efficiency/cases/${id}`);
  $("case-title").textContent = `${c.department} ${c.reference} · ${c.item_code} · ${c.window_label}`;
  $("case-clock").textContent = t(
    `已用 ${days(c.used_days)} / 承诺 ${c.promised_days} / 法定 ${c.legal_days} 个工作日${c.suspended ? "（暂停中）" : ""}`,
    `${days(c.used_days)} of ${c.promised_days} promised / ${c.legal_days} legal working days${c.suspended ? " (suspended)" : ""}`);
  const events = $("case-events");
  events.replaceChildren();
  for (const e of c.events) {
    const item = el("li", `${when(e.at)} · ${e.kind === "stage" ? t(...STAGES[e.stage]) : e.kind === "suspend"
      ? t("暂停（补正）", "suspended") : t("恢复", "resumed")} · ${e.actor}`);
    if (e.fee_yuan !== null) item.appendChild(el("small", ` ¥${e.fee_yuan}`));
    if (e.recording) actionButton(item, t("录像", "Recording"), () => play(e.recording));
    events.appendChild(item);
  }
  const list = $("case-cards");
  list.replaceChildren();
  const select = $("correction-form").elements.card_id;
  select.replaceChildren(el("option", t("（不针对某张牌）", "(no particular card)")));
  select.options[0].value = "";
  for (const card of c.cards) {
    const reason = REASONS[card.reason] ?? [card.reason, card.reason];
    const item = el("li", `${t(card.colour === "red" ? "红牌" : "黄牌", card.colour)} · ${t(...reason)} · ${card.detail}`
      + ` · ${when(card.opened_at)}${card.closed_at ? ` → ${t("已关闭", "closed")} (${card.closed_by})` : ""}`
      + (card.acknowledged_at ? ` · ${t("已确认", "acknowledged")} ${when(card.acknowledged_at)} ${card.acknowledged_by}` : ""),
      `card ${card.colour}${card.closed_at ? " closed" : ""}`);
    item.dataset.card = card.id;
    if (!card.closed_at && !card.acknowledged_at && me.departments.length) {
      actionButton(item, t("确认收到", "Acknowledge"), async () => {
        await api("POST", `/api/efficiency/cards/${card.id}/acknowledgement`);
        await showCase(id);
      });
    }
    if (!me.departments.length) actionButton(item, t("通知记录", "Notices"), () => showNotices(item, card.id));
    list.appendChild(item);
    if (!card.closed_at) {
      const option = el("option", `#${card.id} ${t(...reason)}`);
      option.value = card.id;
      select.appendChild(option);
    }
  }
  for (const a of c.anomalies) list.appendChild(el("li", `${t("异常", "anomaly")}: ${a.detail}`, "anomaly"));
  const corrections = $("case-corrections");
  corrections.replaceChildren();
  for (const n of c.corrections) {
    const item = el("li", `#${n.id} ${t(...STEPS[n.state])}`, `correction ${n.state}`);
    const steps = el("ol");
    for (const s of n.steps) steps.appendChild(el("li", `${when(s.at)} ${t(...STEPS[s.kind])} · ${s.actor}: ${s.body}`));
    item.appendChild(steps);
    if (n.state === "answered" && !me.departments.length) {
      for (const verdict of ["accepted", "returned"]) {
        actionButton(item, t(...STEPS[verdict]), async () => {
          const body = prompt(t("意见", "Remark")) || t(...STEPS[verdict]);
          await api("POST", `/api/efficiency/corrections/${n.id}/decision`, { verdict, body });
          await showCase(id);
        });
      }
    }
    corrections.appendChild(item);
  }
  $("correction-form").classList.toggle("hidden", me.departments.length > 0);
  const feedback = $("case-feedback");
  feedback.replaceChildren();
  const VERDICTS = { satisfied: ["满意", "satisfied"], basically: ["基本满意", "basically satisfied"], unsatisfied: ["不满意", "unsatisfied"] };
  for (const r of c.ratings) feedback.appendChild(el("li", `${when(r.at)} ${r.moment}: ${t(...VERDICTS[r.verdict])}`));
  for (const k of c.complaints) feedback.appendChild(el("li", `${t("投诉", "complaint")} #${k.id} · ${k.state}`));
  $("case-section").classList.remove("hidden");
}

$("correction-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { body: form.get("body") };
  if (form.get("card_id")) body.card_id = Number(form.get("card_id"));
  try {
    await api("POST", `/api/efficiency/cases/${openCase}/corrections`, body);
    $("correction-error").textContent = "";
    event.target.reset();
    await showCase(openCase);
  } catch (error) { $("correction-error").textContent = error.message; }
});

// --- complaints, appraisal, bulletins ------------------------------------------------------------
const COMPLAINT_STATES = { received: ["待分派", "received"], assigned: ["办理中", "assigned"],
  answered: ["已答复", "answered"], closed: ["已办结", "closed"] };

async function loadComplaints() {
  const body = $("complaints").tBodies[0];
  body.replaceChildren();
  for (const k of await api("GET", "/api/efficiency/complaints?open=true")) {
    const tr = body.insertRow();
    cell(tr, k.id); cell(tr, `${k.department} ${k.window_label}`); cell(tr, k.body, "details");
    cell(tr, when(k.due_at), !k.answered_at && new Date(k.due_at) < new Date() ? "red" : "");
    cell(tr, t(...COMPLAINT_STATES[k.state]) + (k.answer ? ` · ${k.answer}` : ""));
    const actions = el("td");
    if (!me.departments.length && ["received", "assigned"].includes(k.state)) {
      actionButton(actions, t("分派", "Assign"), async () => {
        const to = prompt(t("答复人", "Who answers"));
        if (to) { await api("POST", `/api/efficiency/complaints/${k.id}/assignment`, { to }); await loadComplaints(); }
      });
    }
    if (!me.departments.length && k.state === "answered") {
      for (const verdict of ["satisfied", "unsatisfied"]) {
        actionButton(actions, t(verdict === "satisfied" ? "满意办结" : "不满意办结", `Close: ${verdict}`), async () => {
          await api("POST", `/api/efficiency/complaints/${k.id}/closing`, { verdict });
          await loadComplaints();
        });
      }
    }
    tr.appendChild(actions);
  }
}

const PARTS = { on_time: ["按时", "on time"], satisfaction: ["满意", "satisfaction"], cards: ["红黄牌", "cards"],
  anomalies: ["异常", "anomalies"], complaints: ["投诉", "complaints"], presence: ["在岗", "presence"] };

async function loadAppraisal(month) {
  const data = await api("GET", `/api/efficiency/appraisal?month=${month}`);
  $("appraisal-month").textContent = data.month;
  const body = $("appraisal").tBodies[0];
  body.replaceChildren();
  data.scores.forEach((s, n) => {
    const tr = body.insertRow();
    cell(tr, n + 1); cell(tr, s.department); cell(tr, s.total.toFixed(2));
    cell(tr, s.parts.map((p) => `${t(...PARTS[p.name])} ${p.points}/${p.of} (${p.basis})`).join("；"), "details");
  });
}

async function download(path, name) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) { alert((await response.json()).error.message); return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function loadBulletins() {
  const list = $("bulletins");
  list.replaceChildren();
  for (const b of await api("GET", "/api/efficiency/bulletins")) {
    const item = el("li", `${b.month} · ${when(b.issued_at)} · ${b.issued_by} · SHA-256 ${b.pdf_sha256.slice(0, 16)}… `);
    actionButton(item, "PDF", () => download(`/api/efficiency/bulletins/${b.month}/pdf`, `liandong-bulletin-${b.month}.pdf`));
    actionButton(item, "HTML", () => download(`/api/efficiency/bulletins/${b.month}/html`, `liandong-bulletin-${b.month}.html`));
    list.appendChild(item);
  }
}

$("bulletin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("POST", "/api/efficiency/bulletins", { month: new FormData(event.target).get("month") });
    $("bulletin-error").textContent = "";
    await loadBulletins();
  } catch (error) { $("bulletin-error").textContent = error.message; }
});

// --- approval items --------------------------------------------------------------------------------
async function loadItems() {
  const body = $("items").tBodies[0];
  body.replaceChildren();
  const items = await api("GET", "/api/efficiency/items");
  $("item-count").textContent = items.length;
  for (const i of items) {
    const tr = el("tr");
    cell(tr, i.department); cell(tr, i.code); cell(tr, i.name); cell(tr, `${i.promised_days} / ${i.legal_days}`);
    cell(tr, i.stages.map((s) => t(...STAGES[s])).join("、")); cell(tr, i.fee_limit_yuan ? `¥${i.fee_limit_yuan}` : t("免费", "free"));
    body.appendChild(tr);
  }
}

$("items-import").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = event.target.elements.file.files[0];
  const kind = file.name.toLowerCase().endsWith(".xlsx")
    ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" : "text/csv";
  const response = await fetch("/api/efficiency/items/import", { method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": kind }, body: file });
  const data = await response.json();
  if (!response.ok) {
    $("items-error").textContent = `${data.error.field ?? ""}: ${data.error.message}`;
    $("items-imported").textContent = "";
    return;
  }
  $("items-error").textContent = "";
  $("items-imported").textContent = t(`已导入 ${data.items} 项（新增 ${data.created}，更新 ${data.replaced}）`,
    `${data.items} imported (${data.created} new, ${data.replaced} replaced)`);
  await loadItems();
});

// --- session -------------------------------------------------------------------------------------
function loggedOut() {
  token = null; me = null; sessionStorage.removeItem("liandong.efficiency.token");
  socket?.close();
  $("login-main").classList.remove("hidden"); $("board").classList.add("hidden");
}

async function start() {
  try { me = await api("GET", "/api/me"); } catch { loggedOut(); return; }
  if (!["administrator", "supervisor"].includes(me.role)) {
    loggedOut(); $("login-error").textContent = t("需要监察中心账号", "a supervisor's account is required");
    return;
  }
  me.departments = me.departments ?? [];
  $("who").textContent = `${me.display_name} (${me.role})`;
  $("login-main").classList.add("hidden"); $("board").classList.remove("hidden");
  const now = new Date();
  const thisMonth = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
  $("figures-filter").elements.month.value = thisMonth;
  const last = new Date(now.getFullYear(), now.getMonth() - 1, 1);
  $("bulletin-form").elements.month.value = `${last.getFullYear()}-${String(last.getMonth() + 1).padStart(2, "0")}`;
  connect();
  await Promise.all([loadFigures(), loadComplaints(), loadBulletins(), loadItems()]);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
  const data = await response.json();
  if (!response.ok) { $("login-error").textContent = data.error.message; return; }
  token = data.token; sessionStorage.setItem("liandong.efficiency.token", token);
  $("login-error").textContent = "";
  await start();
});

$("figures-filter").addEventListener("submit", (event) => { event.preventDefault(); loadFigures(); });
$("logout").addEventListener("click", async () => {
  if (token) await fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  loggedOut();
});
onLanguage(() => { if (me) { drawCards(); loadFigures(); loadComplaints(); } });

if (token) start();
