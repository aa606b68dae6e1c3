// Command console: record incidents on the map, see which sub-centres will get tickets before
// dispatching, follow every ticket's stage against its plan limit, hear escalations, merge repeated
// reports, and read the decision support for the selected incident. State is loaded over HTTP and
// kept current by /ws/console events; nothing comes from anywhere but this server.
"use strict";
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem("liandong.console.token");
const incidents = new Map();    // id -> incident with its tickets
const subcentres = new Map();   // id -> {name, department, site}
const departments = new Map();  // code -> {name, name_en}
let types = { categories: [], severities: [] };
let cameras = [];
let selected = null;            // selected incident id
let map = null, layers = null, pick = null;
let skew = 0;                   // server clock minus this machine's, in ms (from the socket's welcome)
const now = () => Date.now() + skew;

const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const e = data?.error ?? { message: response.statusText };
    throw Object.assign(new Error(e.field ? `${e.field}: ${e.message}` : e.message), { code: e.code, status: response.status });
  }
  return data;
}

// --- words -------------------------------------------------------------------------------------
const SEVERITY_EN = { 1: "I · extraordinarily serious", 2: "II · serious", 3: "III · relatively serious", 4: "IV · general" };
const TICKET_STATES = { created: ["待送达", "sent"], delivered: ["已送达", "delivered"], acknowledged: ["已确认", "acknowledged"],
                        closed: ["已反馈", "reported back"], rejected: ["已退回", "rejected"], cancelled: ["已撤销", "cancelled"] };
const INCIDENT_STATES = { pending: ["待派", "pending"], open: ["处置中", "open"], closed: ["已结束", "closed"] };
const STAGES = { deliver: ["送达", "delivery"], acknowledge: ["确认", "acknowledgement"], feedback: ["反馈", "feedback"] };
// What an escalation step did on the terminal and in the store; whom it told is said from each message's
// stored outcome (noticeText), never assumed. The reasons name the messages each step queued.
const ESCALATION_TEXT = {
  "deliver:0": ["未送达终端", "not delivered to the terminal"],
  "acknowledge:0": ["超时未确认，终端再次提醒", "not acknowledged in time; the terminal re-alerts"],
  "acknowledge:1": ["仍未确认", "still not acknowledged"],
  "acknowledge:2": ["仍未确认，已派备用分中心", "still not acknowledged; backup sub-centre dispatched"],
  "feedback:0": ["超时未反馈，已提醒", "no feedback in time; the terminal was reminded"],
  "feedback:1": ["仍未反馈", "still no feedback"],
};
const ESCALATION_REASONS = { "deliver:0": ["undelivered"], "acknowledge:1": ["leader"], "acknowledge:2": ["supervisor"],
                             "feedback:1": ["supervisor"] };
const CHANNELS = { sms: ["短信", "SMS"], email: ["邮件", "e-mail"], webhook: ["Webhook", "webhook"] };
const MAX_ALARM_GROUPS = 4;  // incidents shown in the alarm bar; the rest are counted

// One message's stored outcome, in words: queued, retrying (and why), sent, or failed (and why).
function noticeText(n) {
  const how = word(CHANNELS[n.channel]) || n.channel;
  if (n.status === "sent") return t(`已${how}通知${n.recipient}`, `${how} sent to ${n.recipient}`);
  if (n.status === "failed") return t(`${how}通知${n.recipient}失败：${n.error}`, `${how} to ${n.recipient} FAILED: ${n.error}`);
  if (n.error) return t(`${how}通知${n.recipient}未成功，正在重试：${n.error}`, `${how} to ${n.recipient} not delivered yet, retrying: ${n.error}`);
  return t(`正在${how}通知${n.recipient}`, `sending ${how} to ${n.recipient}`);
}
const KINDS = { school: ["学校", "school"], hospital: ["医院", "hospital"], shelter: ["避难场所", "shelter"] };
const when = (iso) => new Date(iso).toLocaleString(i18n.lang === "en" ? "en-GB" : "zh-CN");
const word = (pair) => (pair ? t(pair[0], pair[1]) : "");
const typeName = (i) => t(i.type_name || i.type_code, i.type_name_en || i.type_code);
const severityName = (value) => {
  const s = types.severities.find((x) => x.value === value);
  return t(s ? `${s.level} ${s.label}` : value, SEVERITY_EN[value] ?? value);
};
const departmentName = (code) => { const d = departments.get(code); return d ? t(d.name, d.name_en) : code; };
const subcentreName = (id) => subcentres.get(id)?.name ?? `#${id}`;
const clock = (seconds) => {
  const s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}:${String(m).padStart(2, "0")}` : m}:${String(s % 60).padStart(2, "0")}`;
};
const metres = (m) => (m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`);

// --- start -------------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  armAudio();  // the click is the gesture browsers require before the alarm may sound
  const form = new FormData(event.target);
  try {
    const result = await api("POST", "/api/login", { username: form.get("username"), password: form.get("password") });
    token = result.token;
    sessionStorage.setItem("liandong.console.token", token);
    await start();
  } catch (error) { $("login-error").textContent = error.message; }
});

async function start() {
  const me = await api("GET", "/api/me");
  $("who").textContent = me.display_name;
  $("login").classList.add("hidden");
  $("desk").classList.remove("hidden");
  const [loadedTypes, loadedDepartments, features, base, loadedCameras] = await Promise.all([
    api("GET", "/api/incident-types"), api("GET", "/api/departments"), api("GET", "/api/subcentres"),
    api("GET", "/api/map"), api("GET", "/api/cameras")]);
  types = loadedTypes;
  loadedDepartments.forEach((d) => departments.set(d.code, d));
  cameras = loadedCameras;
  renderChoices();
  drawMap(base, features);
  await reload();
  connect();
  setInterval(tick, 1000);
}

function renderChoices() {
  const type = $("type").value, severity = $("severity").value || "4";
  $("type").innerHTML = types.categories.map((c) => `<optgroup label="${esc(c.code)} ${esc(t(c.name, c.name_en))}">${
    c.subtypes.map((s) => `<option value="${esc(s.code)}">${esc(s.code)} ${esc(t(s.name, s.name_en))}</option>`).join("")}</optgroup>`).join("");
  $("severity").innerHTML = types.severities.map((s) => `<option value="${s.value}">${esc(severityName(s.value))}</option>`).join("");
  if (type) $("type").value = type;
  $("severity").value = severity;
}

// --- map ---------------------------------------------------------------------------------------
function drawMap(base, features) {
  ({ map } = baseMap($("map"), base));
  for (const f of features.features) subcentres.set(f.id, f.properties);
  // Departments with several sub-centres split the city into jurisdictions worth drawing.
  const counts = {};
  features.features.forEach((f) => { counts[f.properties.department] = (counts[f.properties.department] ?? 0) + 1; });
  const jurisdictions = L.geoJSON({ type: "FeatureCollection", features: features.features.filter((f) => counts[f.properties.department] > 1) }, {
    style: { color: "#3aa0ff", weight: 1.5, dashArray: "4 4", fillOpacity: 0.04 },
    onEachFeature: (f, layer) => layer.bindTooltip(`${esc(f.properties.name)} · ${esc(departmentName(f.properties.department))}`, { sticky: true }),
  });
  const sites = L.layerGroup(features.features.map((f) => L.circleMarker([f.properties.site.lat, f.properties.site.lon],
    { radius: 5, color: "#cfe3f5", weight: 1, fillColor: "#3aa0ff", fillOpacity: 1 })
    .bindTooltip(esc(f.properties.name), { permanent: counts[f.properties.department] > 1, direction: "right", className: "site-label" })));
  const cameraLayer = L.layerGroup(cameras.filter((c) => c.location).map((c) => L.marker([c.location.lat, c.location.lon],
    { icon: L.divIcon({ className: "camera-icon", iconSize: [12, 12] }), title: c.name })
    .on("click", () => openCameras([c.id]))));
  layers = { jurisdictions, sites, cameras: cameraLayer, incidents: L.layerGroup(), decision: L.layerGroup() };
  Object.values(layers).forEach((layer) => layer.addTo(map));
  L.control.layers(null, { [t("辖区", "Jurisdictions")]: jurisdictions, [t("分中心", "Sub-centres")]: sites,
                           [t("摄像机", "Cameras")]: cameraLayer, [t("事件", "Incidents")]: layers.incidents }).addTo(map);
  // District names where each district is, and a legend for what the lines and colours mean.
  const districtNames = L.layerGroup(base.districts.features.map((f) => L.marker(
    L.geoJSON(f).getBounds().getCenter(), { interactive: false, keyboard: false,
      icon: L.divIcon({ className: "district-label", html: esc(f.properties.name), iconSize: null }) })));
  districtNames.addTo(map);
  const legend = L.control({ position: "bottomleft" });
  legend.onAdd = () => {
    const box = L.DomUtil.create("div", "map-legend");
    box.innerHTML = `<div><i class="line solid"></i>${t("区县界", "district boundary")}</div>` +
      `<div><i class="line dashed"></i>${t("消防站、医院辖区", "fire-station and hospital jurisdictions")}</div>` +
      `<div><i class="dot site"></i>${t("分中心", "sub-centre")}</div>` +
      `<div>${[1, 2, 3, 4].map((s) => `<i class="dot sev${s}"></i>${["I", "II", "III", "IV"][s - 1]}`).join(" ")} ${t("事件级别", "incident level")}</div>`;
    return box;
  };
  legend.addTo(map);
  const labels = () => $("map").classList.toggle("near", map.getZoom() >= 11);
  map.on("zoomend", labels);
  labels();
  map.on("click", (event) => {
    $("lon").value = event.latlng.lng.toFixed(6);
    $("lat").value = event.latlng.lat.toFixed(6);
    drawPick();
    reportChanged();
  });
  window.liandongConsole = { map };
}

function drawPick() {
  pick?.remove(); pick = null;
  const lon = Number($("lon").value), lat = Number($("lat").value);
  if (!$("lon").value || !$("lat").value || !Number.isFinite(lon) || !Number.isFinite(lat)) return;
  pick = L.marker([lat, lon], { title: t("报警位置", "Reported location") }).addTo(map);
}

function drawIncidents() {
  layers.incidents.clearLayers();
  for (const i of incidents.values()) {
    if (i.state === "closed" || !i.location) continue;
    severityMarker(i.location.lat, i.location.lon, i.severity, i.id === selected ? 12 : 9)
      .bindTooltip(`#${i.id} ${esc(typeName(i))} · ${esc(severityName(i.severity))}`)
      .on("click", () => select(i.id)).addTo(layers.incidents);
  }
}

// --- intake ------------------------------------------------------------------------------------
function report() {
  const form = new FormData($("incident-form"));
  return { type_code: form.get("type_code"), severity: Number(form.get("severity")),
           location: { lon: Number(form.get("lon")), lat: Number(form.get("lat")) },
           address: form.get("address"), caller_name: form.get("caller_name"),
           caller_phone: form.get("caller_phone"), description: form.get("description") };
}

let previewTimer = null, previewSerial = 0;
function reportChanged() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 200);
}
["type", "severity", "lon", "lat"].forEach((id) => $(id).addEventListener("input", () => { if (id === "lon" || id === "lat") drawPick(); reportChanged(); }));

// Who will receive tickets, and which open incidents this report may repeat, before it is sent.
async function preview() {
  const { type_code, severity, location } = report();
  if (!$("lon").value || !$("lat").value) { $("preview").innerHTML = ""; $("duplicates").innerHTML = ""; return; }
  const serial = ++previewSerial;
  try {
    const [routing, duplicates] = await Promise.all([
      api("POST", "/api/routing/preview", { type_code, severity, location }),
      api("POST", "/api/duplicates", { type_code, location })]);
    if (serial !== previewSerial) return;
    $("preview").innerHTML = routing.assignments.map((a) =>
      `<li class="${a.outside_jurisdiction ? "flag" : ""}" data-subcentre="${a.subcentre_id}">${esc(a.subcentre_name)} · ${esc(departmentName(a.department))}${
        a.outside_jurisdiction ? ` (${t("辖区外", "outside its jurisdiction")}, ${metres(a.distance_m)})` : ""}</li>`).join("")
      || `<li class="flag">${t("无处警单位", "nobody is responsible")}</li>`;
    $("duplicates").innerHTML = duplicates.map((d) => `<li data-duplicate="${d.id}"><span>${t("可能重复", "Possible duplicate")}: #${d.id} ${
      esc(typeName(d))} · ${metres(d.distance_m)}</span><button type="button" class="secondary" data-merge-into="${d.id}">${t("合并", "Merge")}</button></li>`).join("");
    $("incident-error").textContent = "";
  } catch (error) {
    if (serial === previewSerial) { $("preview").innerHTML = ""; $("incident-error").textContent = error.message; }
  }
}

// Each report carries a key of its own until it is stored: sent again after a lost answer (the server
// that had it died; the balancer answered 502), it returns the incident already stored, not a second.
function newReportKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}
let reportKey = newReportKey();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function postReport(body) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api("POST", "/api/incidents", { ...body, report_key: reportKey });
    } catch (error) {
      const lost = error instanceof TypeError || [502, 503, 504].includes(error.status);  // no answer, or a dead node's
      if (!lost || attempt === 4) throw error;
      $("incident-error").textContent = t("连接中断，正在重新提交…", "connection lost; sending again…");
      await sleep(1000 * attempt);
    }
  }
}

async function record(dispatch, confirmed = false) {
  try {
    const incident = await postReport({ ...report(), dispatch, confirm_outside_area: confirmed });
    reportKey = newReportKey();
    $("incident-error").textContent = "";
    incidents.set(incident.id, incident);
    clearForm();
    select(incident.id);
    if (incident.call) {  // the plan opens the three-way call with the tickets
      callPanel.opened(incident.call, incident.caller_link).catch((error) => { $("call-error").textContent = error.message; });
    }
    else if (incident.call_problem) $("call-error").textContent = incident.call_problem.message;
    return incident;
  } catch (error) {
    // Far from every jurisdiction: the server asks for the dispatcher's word, and so does the console.
    if (error.code === "outside_service_area" && !confirmed &&
        confirm(`${error.message}\n\n${t("仍要登记此位置吗？", "Record the incident at this location anyway?")}`)) {
      return record(dispatch, true);
    }
    $("incident-error").textContent = error.message;
    return null;
  }
}

function clearForm() {
  const type = $("type").value;
  $("incident-form").reset();
  $("type").value = type; $("severity").value = "4";
  $("preview").innerHTML = ""; $("duplicates").innerHTML = ""; $("incident-error").textContent = "";
  drawPick();
}

$("incident-form").addEventListener("submit", (event) => { event.preventDefault(); record(true); });
$("queue").addEventListener("click", () => record(false));
$("clear").addEventListener("click", clearForm);
// A repeated call: keep the caller on record (as a pending report) folded into the incident it repeats.
$("duplicates").addEventListener("click", async (event) => {
  const into = Number(event.target.dataset.mergeInto);
  if (!into) return;
  const incident = await record(false);
  if (incident) await mergeInto(incident.id, into);
});

async function mergeInto(reportId, into) {
  try {
    const merged = await api("POST", `/api/incidents/${reportId}/merge`, { into });
    upsertIncident(merged);
    select(into);
  } catch (error) { $("incident-error").textContent = error.message; }
}

// --- the board: incidents, their tickets and each ticket's stage timer ------------------------
async function reload() {
  for (const incident of await api("GET", "/api/incidents?limit=100")) incidents.set(incident.id, incident);
  for (const incident of incidents.values()) for (const ticket of incident.tickets) alarmsFrom(ticket);
  render();
}

// The stage a ticket is in, when it began and its limit: delivery and acknowledgement both run
// from the ticket's creation, feedback from the acknowledgement (as the escalator counts them).
function stageOf(ticket) {
  const limits = ticket.limits ?? {};
  if (ticket.state === "created") return { stage: "deliver", since: ticket.created_at, limit: limits.deliver_s };
  if (ticket.state === "delivered") return { stage: "acknowledge", since: ticket.created_at, limit: limits.acknowledge_s };
  if (ticket.state === "acknowledged") return { stage: "feedback", since: ticket.acknowledged_at, limit: limits.feedback_s };
  return null;
}

function timer(ticket) {
  const stage = stageOf(ticket);
  if (!stage || !stage.since) {
    const end = ticket.closed_at ?? ticket.rejected_at ?? ticket.cancelled_at;
    const took = end && ticket.created_at ? clock((Date.parse(end) - Date.parse(ticket.created_at)) / 1000) : "";
    return { text: took, className: "done", title: "" };
  }
  const elapsed = (now() - Date.parse(stage.since)) / 1000;
  const escalated = (ticket.escalations ?? []).some((e) => e.stage === stage.stage);
  const ratio = stage.limit ? elapsed / stage.limit : 0;
  const className = escalated ? "escalated" : ratio >= 1 ? "over" : ratio >= 0.75 ? "near" : "ok";
  return { text: `${clock(elapsed)}${stage.limit ? ` / ${clock(stage.limit)}` : ""}`, className,
           title: `${word(STAGES[stage.stage])} ${t("时限", "limit")} ${stage.limit ? clock(stage.limit) : "—"}` };
}

function ticketLine(ticket) {
  const clockFace = timer(ticket);
  return `<span class="ticket-line" data-ticket="${ticket.id}" data-state="${ticket.state}">
    <span class="state ${ticket.state}">${esc(word(TICKET_STATES[ticket.state]) || ticket.state)}</span>
    <span>${esc(subcentreName(ticket.subcentre_id))}</span>
    <span class="timer ${clockFace.className}" title="${esc(clockFace.title)}">${clockFace.text}</span></span>`;
}

let renderQueued = false;
function renderSoon() {
  if (renderQueued) return;
  renderQueued = true;
  // A timer, not requestAnimationFrame: a console in a background tab must still sound its alarm.
  setTimeout(() => { renderQueued = false; render(); }, 50);
}

function render() {
  const rows = [...incidents.values()].sort((a, b) => (a.state === "closed") - (b.state === "closed") || b.id - a.id);
  const alarming = new Set([...alarms.values()].map((a) => a.incident_id));
  $("incidents").innerHTML = rows.map((i) => `<tr data-incident="${i.id}" data-state="${i.state}"
      class="${i.id === selected ? "selected" : ""} ${alarming.has(i.id) ? "alarming" : ""}">
    <td>${i.id}</td><td>${esc(typeName(i))}${i.merged_into ? ` → #${i.merged_into}` : ""}</td>
    <td class="sev${i.severity}">${esc(i.severity_level ?? i.severity)}</td>
    <td><span class="state ${i.state}">${esc(word(INCIDENT_STATES[i.state]) || i.state)}</span>${i.flagged ? " ⚠" : ""}</td>
    <td><div class="tickets">${i.tickets.map(ticketLine).join("")}</div></td></tr>`).join("");
  drawIncidents();
  renderAlarms();
}

// Once a second: the timers move, without rebuilding the board.
function tick() {
  for (const line of document.querySelectorAll("#incidents .ticket-line")) {
    const incident = incidents.get(Number(line.closest("tr").dataset.incident));
    const ticket = incident?.tickets.find((x) => x.id === Number(line.dataset.ticket));
    if (!ticket) continue;
    const clockFace = timer(ticket), span = line.querySelector(".timer");
    span.textContent = clockFace.text;
    span.className = `timer ${clockFace.className}`;
  }
}

$("incidents").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-incident]");
  if (row) select(Number(row.dataset.incident));
});

function upsertIncident(incident) {
  const known = incidents.get(incident.id);
  incidents.set(incident.id, { ...incident, tickets: incident.tickets ?? known?.tickets ?? [] });
}

function upsertTicket(body) {
  const { incident: attached, alert: _alert, ...ticket } = body;
  if (!incidents.has(ticket.incident_id) && attached) upsertIncident(attached);
  const incident = incidents.get(ticket.incident_id);
  if (!incident) return;
  const known = incident.tickets.find((x) => x.id === ticket.id);
  const merged = { limits: known?.limits, escalations: known?.escalations ?? [], notifications: known?.notifications ?? [],
                   ...ticket };
  incident.tickets = [...incident.tickets.filter((x) => x.id !== ticket.id), merged].sort((a, b) => a.id - b.id);
  if (!merged.limits) refreshIncident(ticket.incident_id);  // a ticket from an event: fetch its plan limits once
}

const refreshing = new Set();
async function refreshIncident(id) {
  if (refreshing.has(id)) return;
  refreshing.add(id);
  try {
    const detail = await api("GET", `/api/incidents/${id}`);
    upsertIncident(detail);
    render();
  } finally { refreshing.delete(id); }
}

function apply(message) {
  const data = message.data ?? {};
  if (data.incident) upsertIncident(data.incident);
  if (data.ticket) upsertTicket(data.ticket);
  if (message.kind.startsWith("escalation.")) {
    const ticket = incidents.get(message.incident_id)?.tickets.find((x) => x.id === data.ticket_id);
    if (ticket) {
      ticket.escalations = [...(ticket.escalations ?? []), { stage: data.stage, step: data.step, at: message.at }];
      for (const n of data.notified ?? []) rememberNotice(ticket, n);
      alarmsFrom(ticket);
    }
  }
  if (message.kind.startsWith("notification.") && data.notification) {  // a message's outcome, as stored
    const ticket = incidents.get(message.incident_id)?.tickets.find((x) => x.id === data.notification.ticket_id);
    if (ticket) { rememberNotice(ticket, { ...data.notification, at: message.at }); alarmsFrom(ticket); }
  }
  if (message.kind === "ticket.rejected" && data.ticket) alarmsFrom(data.ticket);
  if (message.kind === "incident.relocated" && incidents.has(message.incident_id)) {  // moved to where the caller is
    incidents.get(message.incident_id).location = { lon: data.to.lon, lat: data.to.lat };
  }
  renderSoon();  // a burst of events repaints once
  callPanel.event(message);
  if (message.incident_id === selected) showDetail();
}

// --- escalation alarms: a flashing bar and a tone until a dispatcher acknowledges -------------
const alarms = new Map();  // key -> {key, stage ("rejected" for a rejection), incident_id, ticket_id, text()}
const acknowledged = new Set(JSON.parse(sessionStorage.getItem("liandong.console.acknowledged") ?? "[]"));
let alarmTimer = null;

function rememberNotice(ticket, notice) {
  const known = (ticket.notifications ??= []).find((n) => n.id === notice.id);
  if (known) Object.assign(known, notice); else ticket.notifications.push(notice);
}

// The alarms a ticket stands for: escalations of the stage it is still in (each with the stored
// outcome of the messages it sent), a rejection with its reason, and every message that failed.
function alarmsFrom(ticket) {
  const stage = stageOf(ticket)?.stage;
  const name = () => subcentreName(ticket.subcentre_id);
  const ticketName = () => `${t("处警单", "Ticket")} #${ticket.id} → ${name()}`;
  for (const e of ticket.escalations ?? []) {
    const key = `${ticket.id}:${e.stage}:${e.step}`;
    if (e.stage !== stage || acknowledged.has(key)) continue;
    const step = `${e.stage}:${Math.min(e.step, 2)}`;
    const notices = () => (ticket.notifications ?? []).filter((n) => (ESCALATION_REASONS[step] ?? []).includes(n.reason));
    alarms.set(key, { key, stage: e.stage, incident_id: ticket.incident_id, ticket_id: ticket.id, at: e.at,
                      text: () => [`${ticketName()}: ${word(ESCALATION_TEXT[step])}`, ...notices().map(noticeText)].join("；") });
  }
  const rejection = `${ticket.id}:rejected`;
  if (ticket.state === "rejected" && !acknowledged.has(rejection)) {
    alarms.set(rejection, { key: rejection, stage: "rejected", incident_id: ticket.incident_id, ticket_id: ticket.id,
                            at: ticket.rejected_at ?? "",
                            text: () => `${t("处警单", "Ticket")} #${ticket.id} ${t("被退回", "rejected by")} ${name()}: ${ticket.reason ?? ""}` });
  }
  for (const n of ticket.notifications ?? []) {  // a fallback that failed is an alarm of its own
    const key = `${ticket.id}:notification:${n.id}`;
    if (n.status !== "failed" || acknowledged.has(key)) continue;
    alarms.set(key, { key, stage: "notification", incident_id: ticket.incident_id, ticket_id: ticket.id,
                      at: n.at ?? "", text: () => `${ticketName()}: ${noticeText(n)}` });
  }
}

function renderAlarms() {
  // Alarms of tickets that have moved on (acknowledged, reported back) settle by themselves; a failed
  // message stays until a dispatcher acknowledges it.
  for (const [key, alarm] of alarms) {
    if (alarm.stage === "notification") continue;
    const ticket = incidents.get(alarm.incident_id)?.tickets.find((x) => x.id === alarm.ticket_id);
    const current = ticket?.state === "rejected" ? "rejected" : ticket && stageOf(ticket)?.stage;
    if (ticket && current !== alarm.stage) alarms.delete(key);
  }
  // A failed message already said on its escalation's line is not said twice.
  const escalating = new Set([...alarms.values()].filter((a) => !["notification", "rejected"].includes(a.stage))
    .map((a) => a.ticket_id));
  const active = [...alarms.values()].filter((a) => a.stage !== "notification" || !escalating.has(a.ticket_id)).sort((a, b) =>
    // newest first; alarms of one moment, the latest incident first
    String(b.at).localeCompare(String(a.at)) || b.incident_id - a.incident_id);
  $("alarm").classList.toggle("hidden", active.length === 0);
  // One line per incident, newest first; a bounded bar: the incidents beyond it are counted, not listed.
  const groups = new Map();
  for (const a of active) (groups.get(a.incident_id) ?? groups.set(a.incident_id, []).get(a.incident_id)).push(a);
  const shown = [...groups.entries()].slice(0, MAX_ALARM_GROUPS);
  const hidden = [...groups.values()].slice(MAX_ALARM_GROUPS).reduce((sum, g) => sum + g.length, 0);
  $("alarm-list").innerHTML = shown.map(([incidentId, list]) => `<li data-alarm-incident="${esc(incidentId)}">` +
      `<b>${t("事件", "Incident")} #${esc(incidentId)}</b> ${list.map((a) => `<span data-alarm="${esc(a.key)}">${esc(a.text())}</span>`).join(" · ")}</li>`).join("") +
    (hidden ? `<li class="alarm-more">${t(`另有 ${hidden} 条告警（其他 ${groups.size - shown.length} 起事件）`, `${hidden} more alarms on ${groups.size - shown.length} other incidents`)}</li>` : "");
  document.title = active.length ? `【${active.length}】${t("升级告警", "ESCALATION")} · 联动` : "联动 · 指挥台 Liandong command console";
  liandongAudio.ringing = active.length > 0;
  if (active.length && !alarmTimer) ring();
}

function ring() {
  alarmTimer = null;
  if (!alarms.size) { liandongAudio.ringing = false; return; }
  playTone("urgent");
  alarmTimer = setTimeout(ring, 3000);
}

function acknowledgeAlarms() {
  for (const key of alarms.keys()) acknowledged.add(key);
  sessionStorage.setItem("liandong.console.acknowledged", JSON.stringify([...acknowledged]));
  alarms.clear();
  clearTimeout(alarmTimer); alarmTimer = null;
  render();
}
$("alarm-ack").addEventListener("click", acknowledgeAlarms);

// --- decision support for the selected incident ---------------------------------------------
function select(id) {
  selected = id;
  render();
  document.querySelector(`#incidents tr[data-incident="${id}"]`)?.scrollIntoView({ block: "nearest" });
  showDetail();
  callPanel.show(incidents.get(id)).catch((error) => { $("call-error").textContent = error.message; });
}

let detailSerial = 0;
async function showDetail() {
  const incident = incidents.get(selected);
  if (!incident) return;
  const serial = ++detailSerial;
  const [support, duplicates] = await Promise.all([
    api("GET", `/api/incidents/${incident.id}/decision-support`),
    incident.state === "pending" ? api("GET", `/api/incidents/${incident.id}/duplicates`) : Promise.resolve([])]);
  if (serial !== detailSerial) return;
  $("detail-empty").classList.add("hidden");
  const body = $("detail-body");
  body.classList.remove("hidden");
  body.dataset.incident = incident.id;
  body.dataset.cameras = support.cameras.map((c) => c.id).join(",");
  body.dataset.duplicate = duplicates[0]?.id ?? "";
  const nearest = Object.entries(support.nearest_subcentres).map(([department, list]) =>
    `<li>${esc(departmentName(department))}: ${list.slice(0, 2).map((s) => `${esc(s.name)} ${metres(s.distance_m)}${s.jurisdiction_covers ? " ✓" : ""}`).join(", ")}</li>`).join("");
  const facilities = support.affected_area.facilities.map((f) => `<li>${esc(f.name)} (${esc(word(KINDS[f.kind]) || f.kind)}) ${metres(f.distance_m)}</li>`).join("");
  const similar = support.similar_incidents.map((s) => `<li>#${s.id} ${esc(typeName(s))} ${esc(when(s.created_at))} ${metres(s.distance_m)}</li>`).join("");
  const nearCameras = support.cameras.map((c) => `<li>${esc(c.name)} ${metres(c.distance_m)}</li>`).join("");
  body.innerHTML = `
    <h3>#${incident.id} ${esc(typeName(incident))} · <span class="sev${incident.severity}">${esc(severityName(incident.severity))}</span></h3>
    <dl><dt>${t("地址", "Address")}</dt><dd>${esc(incident.address) || "—"} (${incident.location.lon.toFixed(5)}, ${incident.location.lat.toFixed(5)})</dd>
      <dt>${t("报警人", "Caller")}</dt><dd>${esc(incident.caller_name) || "—"} ${esc(incident.caller_phone)}</dd>
      <dt>${t("描述", "Description")}</dt><dd>${esc(incident.description) || "—"}</dd>
      <dt>${t("接警时间", "Reported")}</dt><dd>${esc(when(incident.created_at))}</dd></dl>
    <div class="buttons">
      ${incident.state === "pending" ? `<button id="dispatch-pending">${t("派警 (D)", "Dispatch (D)")}</button>` : ""}
      ${duplicates.map((d) => `<button class="secondary" data-merge="${d.id}">${t("合并到", "Merge into")} #${d.id} (M)</button>`).join("")}
      <button id="open-cameras" class="secondary" ${support.cameras.length ? "" : "disabled"}>${t("附近摄像机", "Cameras nearby")} ${support.cameras.length} (C)</button>
    </div>
    <h3>${t("最近的分中心", "Nearest sub-centres")}</h3><ul>${nearest}</ul>
    <h3>${t("影响范围", "Affected area")} ${metres(support.affected_area.radius_m)}: ${support.affected_area.facilities.length} ${t("处重点场所", "places of interest")}</h3><ul>${facilities}</ul>
    <h3>${t("附近摄像机", "Cameras nearby")}</h3><ul>${nearCameras || "<li>—</li>"}</ul>
    <h3>${t("近期相似事件", "Similar incidents before")}</h3><ul>${similar || "<li>—</li>"}</ul>`;
  $("open-cameras").addEventListener("click", () => openCameras(support.cameras.map((c) => c.id)));
  $("dispatch-pending")?.addEventListener("click", () => dispatchPending(incident.id));
  body.querySelectorAll("[data-merge]").forEach((b) => b.addEventListener("click", () => mergeInto(incident.id, Number(b.dataset.merge))));
  layers.decision.clearLayers();
  L.geoJSON(support.affected_area.geometry, { style: { color: SEVERITY_COLOURS[incident.severity], weight: 1.5, fillOpacity: 0.08 },
                                               interactive: false }).addTo(layers.decision);
  support.affected_area.facilities.forEach((f) => L.circleMarker([f.location.lat, f.location.lon],
    { radius: 4, color: "#fff", weight: 1, fillColor: "#bf5af2", fillOpacity: 1 }).bindTooltip(esc(f.name)).addTo(layers.decision));
  map.panTo([incident.location.lat, incident.location.lon]);
}

async function dispatchPending(id) {
  try { upsertIncident(await api("POST", `/api/incidents/${id}/dispatch`)); render(); showDetail(); }
  catch (error) { $("incident-error").textContent = error.message; }
}

// The wall opens in its own window, showing just these cameras; it is handed this session.
function openCameras(ids) {
  if (ids.length) window.open(`/wall?cameras=${ids.join(",")}`, "liandong-wall");
}

// --- keyboard ----------------------------------------------------------------------------------
function moveSelection(step) {
  const ids = [...document.querySelectorAll("#incidents tr[data-incident]")].map((r) => Number(r.dataset.incident));
  if (!ids.length) return;
  const at = ids.indexOf(selected);
  select(ids[at < 0 ? 0 : Math.min(ids.length - 1, Math.max(0, at + step))]);
}

document.addEventListener("keydown", (event) => {
  if (token && !liandongAudio.armed) armAudio();  // a key press is a gesture too
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); $("submit").click(); return; }
  if (event.key === "Escape") { $("help").classList.add("hidden"); document.activeElement?.blur(); return; }
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (typing || event.ctrlKey || event.altKey || event.metaKey || $("desk").classList.contains("hidden")) return;
  const body = $("detail-body");
  const actions = {
    n: () => $("type").focus(),
    arrowdown: () => moveSelection(1), j: () => moveSelection(1),
    arrowup: () => moveSelection(-1), k: () => moveSelection(-1),
    c: () => openCameras(body.dataset.cameras ? body.dataset.cameras.split(",").map(Number) : []),
    m: () => body.dataset.duplicate && mergeInto(Number(body.dataset.incident), Number(body.dataset.duplicate)),
    d: () => incidents.get(selected)?.state === "pending" && dispatchPending(selected),
    a: acknowledgeAlarms,
    l: toggleLanguage,
    "?": () => $("help").classList.toggle("hidden"),
  };
  const action = actions[event.key.toLowerCase()];
  if (action) { event.preventDefault(); action(); }
});
$("help-button").addEventListener("click", () => $("help").classList.toggle("hidden"));
$("help").addEventListener("click", () => $("help").classList.add("hidden"));
document.addEventListener("click", () => { if (token && !liandongAudio.armed) armAudio(); });

onLanguage(() => {
  if (!types.categories.length) return;
  renderChoices(); render(); preview();
  if (selected) showDetail();
  setConnection(socket?.readyState === WebSocket.OPEN);
});

// --- live events -------------------------------------------------------------------------------
let socket = null, retry = 500;
function setConnection(up) {
  $("conn").className = `conn ${up ? "up" : "down"}`;
  $("conn").textContent = up ? t("已连接", "online") : t("重连中", "reconnecting");
}

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/console`);
  socket.onopen = () => socket.send(JSON.stringify({ type: "hello", token }));
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "welcome") {
      skew = Date.parse(data.now) - Date.now();
      window.currentUser = data.user;
      setConnection(true); retry = 500; reload();
    }
    else if (data.type === "event") apply(data);
    else if (data.type === "resync") reload();
    else if (data.type === "error" && (data.code === "unauthenticated" || data.code === "forbidden")) logOut();
  };
  socket.onclose = () => {
    setConnection(false);
    if (token) { setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); }
  };
}

function logOut() {
  token = null;
  sessionStorage.removeItem("liandong.console.token");
  $("desk").classList.add("hidden");
  $("login").classList.remove("hidden");
}

// A page opened with a session: only a refused session logs out; a server busy or restarting is tried again.
function resume() {
  start().catch((error) => {
    if (error.code === "unauthenticated" || error.code === "forbidden") logOut();
    else { $("login-error").textContent = error.message; setTimeout(resume, 2000); }
  });
}
if (token) resume();

// Log out: the server ends the session (its sockets close everywhere), then the page forgets the token.
$("logout").addEventListener("click", async () => {
  if (token) await fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  logOut();
});
