// The window's rating tablet (评价器): /rate?department=…&window=…. It asks the server every few seconds
// which case the window just accepted or completed, offers it for rating once, and thanks the applicant.
"use strict";
const params = new URLSearchParams(location.search);
const department = params.get("department") ?? "", windowLabel = params.get("window") ?? "";
let offered = null;

async function look() {
  const query = new URLSearchParams({ department, window: windowLabel });
  const response = await fetch(`/api/public/windows/waiting?${query}`);
  const found = await response.json();
  if (!response.ok) { document.getElementById("error").textContent = found.error.message; return; }
  offered = found;
  document.getElementById("offer").classList.toggle("hidden", !found);
  document.getElementById("idle").classList.toggle("hidden", !!found);
  if (found) {
    document.getElementById("case").textContent = t(
      `${found.item} · 办件号 ${found.reference} · ${found.moment === "accepted" ? "已受理" : "已办结"}`,
      `${found.item} · case ${found.reference} · ${found.moment}`);
  }
}

for (const button of document.querySelectorAll("[data-verdict]")) {
  button.addEventListener("click", async () => {
    if (!offered) return;
    const response = await fetch("/api/public/ratings", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ department, window: windowLabel, case: offered.reference, moment: offered.moment,
                             verdict: button.dataset.verdict }) });
    const answer = await response.json();
    document.getElementById("error").textContent = response.ok ? t("谢谢您的评价！", "Thank you!") : answer.error.message;
    await look();
  });
}

document.getElementById("window").textContent = `${department} ${windowLabel}`;
look();
setInterval(look, 3000);
