// The terminal's side of a three-way call: an invitation rings (like a ticket, until a person
// answers — the browser needs that click before it may use the microphone), the operator answers
// or hangs up, and the call's end or this sub-centre being dropped is shown as the server stored it.
// Uses the terminal's token and its notices (terminal.js); the line itself is line.js.
"use strict";

const terminalCalls = (() => {
  const calls = new Map();  // call id -> {id, incident_id, type_code, severity, address, party_id, state}
  let line = null, lineCall = null, ringTimer = null, muted = false;
  const el = (id) => document.getElementById(id);

  async function api(method, path, body) {
    const response = await fetch(path, { method, headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
                                         body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await response.json();
    if (!response.ok) throw Object.assign(new Error(data.error?.message ?? response.statusText), { code: data.error?.code });
    return data;
  }

  // After (re)connecting: the calls this sub-centre is in now, as stored.
  async function load(subcentreId) {
    const { calls: open } = await api("GET", "/api/calls");
    calls.clear();
    for (const call of open) {
      const party = call.parties.find((p) => p.subcentre_id === subcentreId);
      if (party) calls.set(call.id, { id: call.id, incident_id: call.incident_id, party_id: party.id, state: party.state });
    }
    render();
  }

  function notice(message) {
    const data = message.data;
    if (message.kind === "call.invited") calls.set(data.call.id, { ...data.call, state: "invited" });
    else if (message.kind === "call.party" && calls.has(data.call_id)) {
      calls.get(data.call_id).state = data.state;
      if (data.state === "dropped" && lineCall === data.call_id) hangUpLine();
      if (data.state === "dropped") calls.delete(data.call_id);
    } else if (message.kind === "call.ended") {
      if (lineCall === data.call_id) hangUpLine();
      calls.delete(data.call_id);
    }
    render();
  }

  // Rings while a call waits for this sub-centre and this terminal is not on it.
  const ringing = () => [...calls.values()].some((c) => c.state === "invited" && c.id !== lineCall);
  function ring() {
    clearTimeout(ringTimer);
    window.liandongAudio && (liandongAudio.callRinging = ringing());
    if (!ringing()) return;
    playTone("urgent");
    ringTimer = setTimeout(ring, 2000);
  }

  function render() {
    const list = el("calls");
    list.innerHTML = "";
    for (const call of calls.values()) {
      const node = document.createElement("section");
      node.className = "call-ring";
      node.dataset.call = call.id;
      const onLine = lineCall === call.id;
      node.innerHTML = `<h3>${t("三方通话", "Three-way call")} · ${t("事件", "incident")} #${call.incident_id}</h3>
        <p class="recorded">${t("通话全程录音", "The call is recorded")}</p>
        <p>${onLine ? t("通话中", "on the call") : call.state === "invited" ? t("指挥中心邀请本单位加入通话", "The centre invites your unit to the call")
                    : t("本单位已有人接听", "answered at your unit")}</p>`;
      const buttons = document.createElement("div");
      buttons.className = "actions";
      const button = (zh, en, cls, handler) => {
        const b = document.createElement("button");
        b.textContent = t(zh, en); b.className = cls;
        b.addEventListener("click", () => handler().catch((error) => { el("call-error").textContent = error.message; }));
        buttons.append(b);
      };
      if (!onLine) button("接听", "Answer", "answer", () => answer(call));
      if (onLine) button(muted ? "取消静音" : "静音", muted ? "Unmute" : "Mute", "secondary mute", async () => {
        muted = !muted; line.mute(muted); render();
        await api("POST", `/api/calls/${call.id}/mute`, { muted });
      });
      if (onLine) button("挂断", "Hang up", "danger hangup", async () => {
        hangUpLine(); render();
        await api("POST", `/api/calls/${call.id}/leave`);
      });
      node.append(buttons);
      list.append(node);
    }
    el("call-video").classList.toggle("hidden", lineCall === null);
    ring();
  }

  async function answer(call) {
    const { ice_servers: iceServers, relay_only: relay } = await api("GET", "/api/call-servers");
    hangUpLine();
    line = new Line({ watch: true, iceServers, relay, audio: el("call-voices"), video: el("call-video"),
                      post: (sdp) => api("POST", `/api/calls/${call.id}/join`, { sdp }),
                      onEnded: () => { hangUpLine(); render(); } });
    lineCall = call.id;
    render();
    try { await line.open(); } catch (error) { hangUpLine(); render(); throw error; }
  }

  function hangUpLine() {
    line?.close();
    line = null; lineCall = null; muted = false;
  }

  return { load, notice };
})();
