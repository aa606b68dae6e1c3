// The public complaint form: no account; the server names any field it refuses and says when the
// department must answer.
"use strict";
const form = document.getElementById("complaint");

async function departments() {
  const response = await fetch("/api/public/departments");
  const select = form.elements.department;
  for (const name of response.ok ? await response.json() : []) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    select.appendChild(option);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const body = {};
  for (const name of ["department", "window", "case", "staff", "body", "complainant", "contact"]) {
    const value = data.get(name).trim();
    if (value || ["department", "body", "complainant", "contact"].includes(name)) body[name] = value;
  }
  if (data.get("happened_at")) body.happened_at = new Date(data.get("happened_at")).toISOString();
  const response = await fetch("/api/public/complaints", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) {
    const e = answer.error;
    document.getElementById("error").textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    return;
  }
  form.classList.add("hidden");
  const done = document.getElementById("done");
  done.textContent = t(`已受理，投诉编号 ${answer.id}。部门将在 ${new Date(answer.due_at).toLocaleString()} 前答复。`,
    `Received as complaint ${answer.id}. The department must answer by ${new Date(answer.due_at).toLocaleString()}.`);
  done.classList.remove("hidden");
});

departments();
