// Command console: log in, record incidents (click the map or type WGS-84 coordinates), watch
// tickets change state live over /ws/console. No framework, nothing from the network but this server.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("liandong.console.token");
const incidents = new Map();   // id -> incident with tickets
const subcentres = new Map();  // id -> name
let bounds = null;             // [minLon, minLat, maxLon, maxLat] of the jurisdictions

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const e = data?.error ?? { message: response.statusText };
    throw new Error(e.field ? `${e.field}: ${e.message}` : e.message);
  }
  return data;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
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
  for (const id of ["intake", "board"]) $(id).classList.remove("hidden");
  const types = await api("GET", "/api/incident-types");
  $("type").innerHTML = types.categories.map((c) =>
    `<optgroup label="${c.code} ${c.name}">${c.subtypes.map((t) => `<option value="${t.code}">${t.code} ${t.name}</option>`).join("")}</optgroup>`).join("");
  $("severity").innerHTML = types.severities.map((s) => `<option value="${s.value}">${s.level} ${s.label}</option>`).join("");
  $("severity").value = "4";
  drawMap(await api("GET", "/api/subcentres"));
  await reload();
  connect();
}

// --- map: jurisdictions drawn as SVG in an equirectangular projection -------------------------
function project([lon, lat]) {
  const [x0, y0, x1, y1] = bounds;
  const k = 100 / Math.max(x1 - x0, y1 - y0);
  return [(lon - x0) * k, 100 - (lat - y0) * k];
}
function unproject(x, y) {
  const [x0, y0, x1, y1] = bounds;
  const k = 100 / Math.max(x1 - x0, y1 - y0);
  return [x / k + x0, (100 - y) / k + y0];
}
function rings(geometry) {
  return geometry.type === "Polygon" ? geometry.coordinates : geometry.coordinates.flat();
}
function drawMap(collection) {
  const fire = collection.features.filter((f) => f.properties.department === "fire");
  for (const f of collection.features) subcentres.set(f.id, f.properties.name);
  const all = fire.flatMap((f) => rings(f.geometry).flat());
  if (!all.length) return;
  bounds = [Math.min(...all.map((p) => p[0])), Math.min(...all.map((p) => p[1])),
            Math.max(...all.map((p) => p[0])), Math.max(...all.map((p) => p[1]))];
  $("map").innerHTML = fire.map((f) => `<path d="${rings(f.geometry).map((r) =>
    "M" + r.map((p) => project(p).map((v) => v.toFixed(2)).join(",")).join("L") + "Z").join("")}"><title>${f.properties.name}</title></path>`).join("");
}
$("map").addEventListener("click", (event) => {
  if (!bounds) return;
  const point = $("map").createSVGPoint();
  point.x = event.clientX; point.y = event.clientY;
  const local = point.matrixTransform($("map").getScreenCTM().inverse());
  const [lon, lat] = unproject(local.x, local.y);
  $("lon").value = lon.toFixed(6); $("lat").value = lat.toFixed(6);
  drawPick();
});
function drawPick() {
  document.querySelector("#map circle.pick")?.remove();
  const lon = Number($("lon").value), lat = Number($("lat").value);
  if (!bounds || !Number.isFinite(lon) || !Number.isFinite(lat)) return;
  const [x, y] = project([lon, lat]);
  $("map").insertAdjacentHTML("beforeend", `<circle class="pick" cx="${x}" cy="${y}" r="1.2"></circle>`);
}

// --- intake ----------------------------------------------------------------------------------
function report() {
  const form = new FormData($("incident-form"));
  return { type_code: form.get("type_code"), severity: Number(form.get("severity")),
           location: { lon: Number(form.get("lon")), lat: Number(form.get("lat")) },
           address: form.get("address"), caller_name: form.get("caller_name"),
           caller_phone: form.get("caller_phone"), description: form.get("description") };
}
$("preview-button").addEventListener("click", async () => {
  const { type_code, severity, location } = report();
  try {
    const preview = await api("POST", "/api/routing/preview", { type_code, severity, location });
    $("preview").innerHTML = preview.assignments.map((a) =>
      `<li class="${a.outside_jurisdiction ? "flag" : ""}">${a.subcentre_name}${a.outside_jurisdiction ? ` (辖区外 outside, ${Math.round(a.distance_m)} m)` : ""}</li>`).join("")
      || "<li class=flag>无处警单位 nobody responsible</li>";
    $("incident-error").textContent = "";
  } catch (error) { $("incident-error").textContent = error.message; }
});
$("incident-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const incident = await api("POST", "/api/incidents", report());
    incidents.set(incident.id, incident);
    render();
    $("incident-error").textContent = "";
  } catch (error) { $("incident-error").textContent = error.message; }
});

// --- live board ------------------------------------------------------------------------------
async function reload() {
  for (const incident of await api("GET", "/api/incidents?limit=100")) incidents.set(incident.id, incident);
  render();
}
function render() {
  const rows = [...incidents.values()].sort((a, b) => b.id - a.id);
  $("incidents").innerHTML = rows.map((i) => `<tr data-incident="${i.id}">
    <td>${i.id}</td><td>${i.type_name || i.type_code}</td><td class="sev${i.severity}">${i.severity_level ?? i.severity}</td>
    <td><span class="state ${i.state}">${i.state}</span>${i.flagged ? " ⚠" : ""}</td>
    <td>${i.tickets.map((t) => `<span class="state ${t.state}" data-ticket="${t.id}">${subcentres.get(t.subcentre_id) ?? t.subcentre_id}: ${t.state}</span>`).join(" ")}</td></tr>`).join("");
  document.querySelectorAll("#map circle.incident").forEach((c) => c.remove());
  if (!bounds) return;
  for (const i of rows.filter((r) => r.state === "open" && r.location)) {
    const [x, y] = project([i.location.lon, i.location.lat]);
    $("map").insertAdjacentHTML("beforeend", `<circle class="incident" cx="${x}" cy="${y}" r="1" fill="var(--sev${i.severity})"></circle>`);
  }
}
function apply(event) {
  const data = event.data;
  if (data.incident) {
    const known = incidents.get(data.incident.id);
    incidents.set(data.incident.id, { ...data.incident, tickets: known?.tickets ?? [] });
  }
  if (data.ticket) {
    const incident = incidents.get(data.ticket.incident_id);
    if (incident) {
      const others = incident.tickets.filter((t) => t.id !== data.ticket.id);
      incident.tickets = [...others, data.ticket].sort((a, b) => a.id - b.id);
    }
  }
  render();
}

let retry = 500;
function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/console`);
  socket.onopen = () => socket.send(JSON.stringify({ type: "hello", token }));
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "welcome") { $("conn").className = "conn up"; $("conn").textContent = "已连接 online"; retry = 500; reload(); }
    else if (data.type === "event") apply(data);
    else if (data.type === "resync") reload();
  };
  socket.onclose = () => {
    $("conn").className = "conn down"; $("conn").textContent = "重连中 reconnecting";
    setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
  };
}

if (token) start().catch(() => { token = null; sessionStorage.removeItem("liandong.console.token"); });
