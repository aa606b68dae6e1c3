// The administration page: accounts and live sessions (administrators), the audit log (administrators
// and supervisors). Every row shown is what the server answered; nothing is assumed to have worked.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("liandong.admin.token");
let me = null;
let oldestSeq = null;

async function api(method, path, body) {
  const options = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) { loggedOut(); throw new Error(t("请重新登录", "log in again")); }
  if (!response.ok) {
    const e = data.error || {};
    throw new Error(e.field ? `${e.field}: ${e.message}` : e.message || response.statusText);
  }
  return data;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function button(td, label, action) {
  const b = document.createElement("button");
  b.className = "secondary";
  b.textContent = label;
  b.addEventListener("click", async () => {
    try { await action(); } catch (error) { alert(error.message); }
    await refresh();
  });
  td.appendChild(b);
}

async function loadAccounts() {
  const body = $("accounts").tBodies[0];
  body.replaceChildren();
  for (const a of await api("GET", "/api/accounts")) {
    const row = body.insertRow();
    if (a.disabled_at) row.className = "disabled";
    cell(row, a.username); cell(row, a.display_name); cell(row, a.role); cell(row, a.subcentre_id);
    cell(row, (a.departments || []).join(", ")); cell(row, when(a.last_seen_at));
    cell(row, a.disabled_at ? t("已停用", "disabled") : t(`在线 ${a.sessions}`, `${a.sessions} session(s)`));
    const actions = row.insertCell();
    button(actions, a.disabled_at ? t("启用", "Enable") : t("停用", "Disable"),
      () => api("PATCH", `/api/accounts/${a.id}`, { disabled: !a.disabled_at }));
    button(actions, t("重置密码", "Reset password"), async () => {
      const password = prompt(t(`${a.username} 的新密码`, `New password for ${a.username}`));
      if (password) await api("POST", `/api/accounts/${a.id}/password`, { password });
    });
  }
}

async function loadSessions() {
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  for (const s of await api("GET", "/api/sessions")) {
    const row = body.insertRow();
    cell(row, s.username); cell(row, s.role); cell(row, s.address);
    cell(row, when(s.created_at)); cell(row, when(s.last_seen_at));
    button(row.insertCell(), t("强制下线", "End"), () => api("DELETE", `/api/sessions/${s.id}`));
  }
}

function auditQuery() {
  const form = new FormData($("audit-filter"));
  const query = new URLSearchParams();
  for (const name of ["actor", "target", "action"]) {
    const value = form.get(name).trim();
    if (value) query.set(name, value);
  }
  for (const name of ["since", "until"]) {
    const value = form.get(name);
    if (value) query.set(name, new Date(value).toISOString());
  }
  return query;
}

async function loadAudit(older) {
  const body = $("audit").tBodies[0];
  const query = auditQuery();
  if (older && oldestSeq !== null) query.set("before", oldestSeq); else body.replaceChildren();
  $("audit-error").textContent = "";
  let entries;
  try { entries = await api("GET", `/api/audit?${query}`); } catch (error) {
    $("audit-error").textContent = error.message; return;
  }
  for (const e of entries) {
    const row = body.insertRow();
    cell(row, e.seq); cell(row, when(e.at)); cell(row, e.actor); cell(row, e.address); cell(row, e.action);
    cell(row, e.target); cell(row, e.outcome, e.outcome === "ok" ? "" : "refused");
    cell(row, JSON.stringify(e.details), "details");
    oldestSeq = e.seq;
  }
  $("older").classList.toggle("hidden", entries.length < 100);
}

async function downloadCsv(event) {
  event.preventDefault();
  // A link cannot carry the bearer token: fetch the file and hand the browser a blob of it.
  const response = await fetch(`/api/audit.csv?${auditQuery()}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) { $("audit-error").textContent = (await response.json()).error.message; return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = "liandong-audit.csv";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);  // some browsers read it after click() returns
}

async function refresh() {
  if (!me) return;  // logged out meanwhile
  if (me.role === "administrator") await Promise.all([loadAccounts(), loadSessions()]);
  await loadAudit(false);
}

function loggedOut() {
  token = null; me = null; sessionStorage.removeItem("liandong.admin.token");
  $("login-main").classList.remove("hidden"); $("admin").classList.add("hidden");
}

async function start() {
  try { me = await api("GET", "/api/me"); } catch { loggedOut(); return; }
  if (!["administrator", "supervisor"].includes(me.role)) {
    loggedOut(); $("login-error").textContent = t("需要管理员或监控中心账号", "an administrator's or supervisor's account is required");
    return;
  }
  $("who").textContent = `${me.display_name} (${me.role})`;
  for (const section of document.querySelectorAll(".admin-only")) {
    section.classList.toggle("hidden", me.role !== "administrator");
  }
  $("login-main").classList.add("hidden"); $("admin").classList.remove("hidden");
  await refresh();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
  const data = await response.json();
  if (!response.ok) { $("login-error").textContent = data.error.message; return; }
  token = data.token; sessionStorage.setItem("liandong.admin.token", token);
  $("login-error").textContent = "";
  await start();
});

$("new-account").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { username: form.get("username"), display_name: form.get("display_name"),
                 password: form.get("password"), role: form.get("role") };
  if (form.get("subcentre_id")) body.subcentre_id = Number(form.get("subcentre_id"));
  const departments = form.get("departments").split(",").map((d) => d.trim()).filter(Boolean);
  if (departments.length) body.departments = departments;
  try {
    await api("POST", "/api/accounts", body);
    $("account-error").textContent = "";
    event.target.reset();
    await refresh();
  } catch (error) { $("account-error").textContent = error.message; }
});

$("audit-filter").addEventListener("submit", (event) => { event.preventDefault(); loadAudit(false); });
$("older").addEventListener("click", () => loadAudit(true));
$("csv").addEventListener("click", downloadCsv);
$("lang").addEventListener("click", toggleLanguage);
$("logout").addEventListener("click", async () => {
  if (token) await fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  loggedOut();
});

applyLanguage();
if (token) start();
