// The caller's page: opened from the link the centre sent (/call#<token>). The token is good once;
// after joining, the page keeps the call's session (for this tab only) to rejoin after a reload.
// Sharing the position and the camera is the caller's choice, asked before anything is shared.
"use strict";
const $ = (id) => document.getElementById(id);
const SESSION = "liandong.caller.session";
let token = location.hash.slice(1);
let session = sessionStorage.getItem(SESSION);
let line = null, watcher = null, lastSent = 0, muted = false;
if (token) history.replaceState(null, "", location.pathname);  // the link leaves the address bar and history

const STATES = { new: ["连接中", "connecting"], connecting: ["连接中", "connecting"], connected: ["通话中", "connected"],
                 disconnected: ["网络中断，正在重连", "network lost, reconnecting"], failed: ["连接失败，正在重试", "failed, retrying"],
                 closed: ["已挂断", "hung up"] };

async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw Object.assign(new Error(data.error?.message ?? response.statusText), { code: data.error?.code });
  return data;
}

function showState(state) {
  $("state").textContent = t(...(STATES[state] ?? [state, state]));
}

async function join() {
  $("error").textContent = "";
  $("join").disabled = true;
  try {
    const { ice_servers: iceServers, relay_only: relay } = await post("/api/caller/servers", session ? { session } : { token });
    line = new Line({
      camera: $("share-camera").checked, iceServers, relay, audio: $("voices"), onState: showState,
      onEnded: () => ended(t("通话已结束。谢谢您！", "The call has ended. Thank you.")),
      post: async (sdp) => {
        if (session) return post("/api/caller/rejoin", { session, sdp });
        const answer = await post("/api/caller/join", { token, sdp });
        session = answer.session;
        sessionStorage.setItem(SESSION, session);
        token = "";
        return answer;
      },
    });
    await line.open();
    $("before").classList.add("hidden");
    $("during").classList.remove("hidden");
    if ($("share-camera").checked) {
      $("preview").srcObject = line.stream;
      $("preview").classList.remove("hidden");
    }
    if ($("share-position").checked) sharePosition();
  } catch (error) {
    $("error").textContent = error.message;
    $("join").disabled = false;
    if (error.code === "closed") ended(t("通话已结束", "The call has ended"));
  }
}

// The phone's position (WGS-84, as the browser gives it) goes to the centre when it first arrives,
// then at most every 10 s while it changes.
function sharePosition() {
  watcher = navigator.geolocation.watchPosition(async (where) => {
    if (Date.now() - lastSent < 10000) return;
    lastSent = Date.now();
    const { longitude: lon, latitude: lat, accuracy } = where.coords;
    try {
      await post("/api/caller/position", { session, lon, lat, accuracy_m: accuracy });
      $("position").textContent = t(`已发送您的位置（精度约 ${Math.round(accuracy)} 米）`, `Your location was sent (±${Math.round(accuracy)} m)`);
    } catch (error) { $("position").textContent = error.message; }
  }, (error) => { $("position").textContent = t(`无法获取位置：${error.message}`, `No location: ${error.message}`); },
  { enableHighAccuracy: true, maximumAge: 5000 });
}

function ended(text) {
  line?.close();
  if (watcher !== null) navigator.geolocation.clearWatch(watcher);
  sessionStorage.removeItem(SESSION);
  $("before").classList.add("hidden");
  $("during").classList.add("hidden");
  $("after").classList.remove("hidden");
  $("ended").textContent = text;
}

$("join").addEventListener("click", join);
$("mute").addEventListener("click", () => {
  muted = !muted;
  line?.mute(muted);
  $("mute").textContent = muted ? t("取消静音", "Unmute") : t("静音", "Mute");
});
$("hangup").addEventListener("click", async () => {
  await post("/api/caller/leave", { session }).catch(() => null);
  ended(t("您已挂断。如需再次联系，请拨打报警电话。", "You hung up. Call the emergency number again if you need us."));
});
if (!token && !session) {
  $("before").classList.add("hidden");
  $("error").textContent = t("链接无效：请使用指挥中心发送的链接。", "No valid link: open the link the centre sent you.");
}
if (session) $("join").textContent = t("重新加入通话", "Rejoin the call");
