// The console's three-way call for the selected incident: open it (the ticketed sub-centres ring and
// the caller's link goes out by SMS), talk, mute, add or drop a sub-centre, hand the call to another
// dispatcher, hang up, see where the caller is and what the caller's camera shows, and play the
// recordings. Every party's state shown is the one stored by the server, brought by console events.
// Uses the console's api(), esc(), when(), map and user; the line itself is line.js.
"use strict";

const callPanel = (() => {
  const PARTY_STATES = { invited: ["振铃中", "ringing"], joining: ["接入中", "joining"], connected: ["通话中", "connected"],
                         gone: ["已离开", "gone"], dropped: ["已移出", "dropped"] };
  const links = new Map();  // call id -> the caller's link, as this console last made it (the server keeps only its hash)
  let incident = null, calls = [], line = null, lineCall = null, muted = false, servers = null, marker = null;
  const area = () => document.getElementById("call-body");
  const open = () => calls.find((c) => !c.ended_at);

  async function show(selectedIncident) {
    incident = selectedIncident;
    calls = incident ? (await api("GET", `/api/incidents/${incident.id}/calls`)).calls : [];
    render();
  }

  function partyLine(call, party) {
    const state = PARTY_STATES[party.state] ?? [party.state, party.state];
    const who = party.kind === "caller" ? t("报警人", "Caller") : esc(party.name);
    const drop = party.kind === "subcentre" && !["dropped"].includes(party.state) && !call.ended_at
      ? ` <button class="secondary small" data-drop="${party.id}">${t("移出", "Drop")}</button>` : "";
    return `<li data-party="${party.id}" data-kind="${party.kind}" data-state="${party.state}"><span>${who}${party.muted ? " 🔇" : ""}</span>
      <span><span class="party-state ${party.state}">${t(...state)}</span>${drop}</span></li>`;
  }

  function render() {
    const element = area();
    if (!element) return;
    if (!incident) { element.innerHTML = ""; return; }
    const current = open();
    const mine = current && current.dispatcher_id === window.currentUser?.id;
    const position = current?.positions.at(-1);
    const ticketed = (incident.tickets ?? []).filter((x) => !["rejected", "cancelled"].includes(x.state)
      && !current?.parties.some((p) => p.subcentre_id === x.subcentre_id && p.state !== "dropped"));
    let html = "";
    if (current) {
      html += `<div class="call-panel" data-call="${current.id}">
        <p class="recorded">${t("三方通话进行中 · 全程录音", "Three-way call in progress · recorded")}</p>
        <ul class="parties">${current.parties.map((p) => partyLine(current, p)).join("")}</ul>
        ${lineCall === current.id ? "" : mine ? `<button id="call-join">${t("接入通话", "Join the call")}</button>` :
          `<p>${t("由其他调度员接听", "Held by another dispatcher")}</p>`}
        ${lineCall === current.id ? `<button id="call-mute" class="secondary">${muted ? t("取消静音", "Unmute") : t("静音", "Mute")}</button>` : ""}
        ${mine ? `<button id="call-hangup" class="danger">${t("挂断", "Hang up")}</button>` : ""}
        ${mine && ticketed.length ? `<p><select id="call-add">${ticketed.map((x) => `<option value="${x.subcentre_id}">${esc(subcentreName(x.subcentre_id))}</option>`).join("")}</select>
          <button id="call-add-button" class="secondary">${t("加入分中心", "Add sub-centre")}</button></p>` : ""}
        ${mine ? `<p><input id="call-transfer-to" placeholder="${t("调度员账号", "dispatcher's user name")}">
          <button id="call-transfer" class="secondary">${t("转接", "Transfer")}</button></p>` : ""}
        ${position ? `<p id="call-position">${t("报警人位置", "Caller's position")}: ${position.lon.toFixed(5)}, ${position.lat.toFixed(5)} (±${Math.round(position.accuracy_m)} m, ${esc(when(position.at))})
          ${mine ? `<button id="call-adopt" class="secondary">${t("设为事件位置", "Use as the incident's location")}</button>` : ""}</p>` : ""}
        ${mine ? `<p>${t("报警人链接", "Caller's link")}: <span class="call-link" id="call-link">${esc(links.get(current.id) ?? "")}</span>
          <button id="call-new-link" class="secondary">${t("生成新链接", "New link")}</button></p>` : ""}
      </div>`;
    } else if (incident.state === "open") {
      html += `<button id="call-open">${t("发起三方通话", "Start a three-way call")}</button>`;
    }
    const past = calls.filter((c) => c.ended_at);
    if (past.length) {
      html += `<h4>${t("通话录音", "Call recordings")}</h4><ul class="recordings">${past.map((c) => `<li data-call="${c.id}">
        ${esc(when(c.opened_at))} · ${c.recorded_s == null ? t("录音处理中", "being stored") : `${Math.round(c.recorded_s)} s`}
        ${c.expired_at ? t("（已按保存期限删除）", "(removed by retention)") : (c.recording ?? []).map((f, i) =>
          `<button class="secondary small" data-play="${c.id}" data-file="${i}">${f.kind === "picture" ? t("画面", "picture") : t("播放录音", "play")}</button>`).join(" ")}
      </li>`).join("")}</ul>`;
    }
    element.innerHTML = html;
    document.getElementById("call-video").classList.toggle("hidden", !(current && lineCall === current.id));
    wire(current);
    drawCaller(position);
  }

  function wire(current) {
    const on = (id, handler) => document.getElementById(id)?.addEventListener("click", () => handler().catch(fail));
    on("call-open", async () => {
      const made = await api("POST", `/api/incidents/${incident.id}/calls`, {});
      await opened(made.call, made.caller_link);
    });
    on("call-join", () => join(current));
    on("call-mute", async () => {
      muted = !muted;
      line?.mute(muted);
      await api("POST", `/api/calls/${current.id}/mute`, { muted });
    });
    on("call-hangup", async () => {
      await api("POST", `/api/calls/${current.id}/hangup`);
      hangUpLine();
      await show(incident);
    });
    on("call-add-button", () => api("POST", `/api/calls/${current.id}/parties`, { subcentre_id: Number(document.getElementById("call-add").value) }));
    on("call-transfer", async () => {
      await api("POST", `/api/calls/${current.id}/transfer`, { username: document.getElementById("call-transfer-to").value });
      hangUpLine();
    });
    on("call-adopt", () => api("POST", `/api/calls/${current.id}/adopt-position`));
    on("call-new-link", async () => {
      links.set(current.id, (await api("POST", `/api/calls/${current.id}/link`)).caller_link);
      render();
    });
    area().querySelectorAll("[data-drop]").forEach((b) => b.addEventListener("click",
      () => api("DELETE", `/api/calls/${current.id}/parties/${b.dataset.drop}`).catch(fail)));
    area().querySelectorAll("[data-play]").forEach((b) => b.addEventListener("click", () => play(b).catch(fail)));
  }

  // A call this console opened (by the button, or by the plan as the tickets went out): keep the
  // caller's link to show, and join at once; the dispatcher's click was the browser's gesture.
  async function opened(call, link) {
    links.set(call.id, link);
    calls = [...calls.filter((c) => c.id !== call.id), call];
    render();
    await join(call);
  }

  async function join(call) {
    servers ??= await api("GET", "/api/call-servers");
    hangUpLine();
    line = new Line({ watch: true, iceServers: servers.ice_servers, relay: servers.relay_only, audio: document.getElementById("call-voices"),
      video: document.getElementById("call-video"),
      post: (sdp) => api("POST", `/api/calls/${call.id}/join`, { sdp }),
      onState: (state) => { if (state === "failed" && !open()) hangUpLine(); } });
    lineCall = call.id;
    await line.open();
    render();
  }

  function hangUpLine() {
    line?.close();
    line = null; lineCall = null; muted = false;
  }

  // A recording plays from a blob: the console's token goes in a header, never in a URL.
  async function play(button) {
    const response = await fetch(`/api/calls/${button.dataset.play}/recording?file=${button.dataset.file}`,
                                 { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error((await response.json()).error.message);
    const player = document.createElement(response.headers.get("Content-Type").startsWith("video") ? "video" : "audio");
    player.controls = true;
    player.src = URL.createObjectURL(await response.blob());
    button.replaceWith(player);
    await player.play().catch(() => {});
  }

  function drawCaller(position) {
    if (marker) { marker.remove(); marker = null; }
    if (!position || typeof map === "undefined" || !map) return;
    marker = L.circleMarker([position.lat, position.lon], { radius: 8, color: "#fff", weight: 2, fillColor: "#0a84ff", fillOpacity: 1 })
      .bindTooltip(t("报警人手机位置", "caller's phone")).addTo(map);
    marker.getElement?.()?.classList.add("caller-position");
  }

  function fail(error) { document.getElementById("call-error").textContent = error.message; }

  // A console event about a call (or the incident moved): the panel shows what is stored now.
  function event(message) {
    if (message.kind === "call.transferred" && message.data.to === window.currentUser?.id) {
      document.getElementById("call-error").textContent = t(`调度员把事件 #${message.incident_id} 的通话转给了您`,
                                                            `A call on incident #${message.incident_id} was transferred to you`);
    }
    if (message.kind === "call.ended" && message.data.call_id === lineCall) hangUpLine();
    if (incident && message.incident_id === incident.id && (message.kind.startsWith("call.") || message.kind === "incident.relocated")) {
      api("GET", `/api/incidents/${incident.id}/calls`).then((body) => {
        calls = body.calls;
        render();
      }).catch(fail);
    }
  }

  return { show, event, opened };
})();
