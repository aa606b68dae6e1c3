// Chinese (zh-CN) by default, English on request; one choice for every page (localStorage).
// Static text carries both languages: <span data-zh="…" data-en="…">; code asks t(zh, en).
"use strict";
const i18n = { lang: localStorage.getItem("liandong.lang") === "en" ? "en" : "zh", listeners: [] };

function t(zh, en) { return i18n.lang === "en" ? en : zh; }

function applyLanguage() {
  document.documentElement.lang = i18n.lang === "en" ? "en" : "zh-CN";
  document.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = t(el.dataset.zh, el.dataset.en); });
  document.querySelectorAll("[data-zh-title]").forEach((el) => { el.title = t(el.dataset.zhTitle, el.dataset.enTitle); });
  const toggle = document.getElementById("lang");
  if (toggle) toggle.textContent = i18n.lang === "en" ? "中文" : "English";
  i18n.listeners.forEach((listener) => listener());
}

function toggleLanguage() {
  i18n.lang = i18n.lang === "en" ? "zh" : "en";
  localStorage.setItem("liandong.lang", i18n.lang);
  applyLanguage();
}

function onLanguage(listener) { i18n.listeners.push(listener); }

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("lang")?.addEventListener("click", toggleLanguage);
  applyLanguage();
});
