// The appban dashboard: a hash router over five views, the API token, and the service's health.

import * as api from "./api.js";
import * as audit from "./audit.js";
import * as check from "./check.js";
import * as impact from "./impact.js";
import { closePanel } from "./panel.js";
import * as screen from "./screen.js";
import * as timeline from "./timeline.js";
import { hideTooltip } from "./tooltip.js";

const VIEWS = { timeline, check, screen, audit, impact };
const TITLES = { timeline: "Timeline", check: "Check a transaction", screen: "Screen a file", audit: "Audit log", impact: "Impact" };
const mounted = new Set();
let currentView = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [name, query = ""] = raw.split("?");
  return { name: name in VIEWS ? name : "timeline", params: new URLSearchParams(query) };
}

function route() {
  const { name, params } = parseHash();
  const section = document.getElementById(`view-${name}`);
  if (!mounted.has(name)) {
    VIEWS[name].mount(section);
    mounted.add(name);
  }
  if (currentView !== name) {
    if (currentView) VIEWS[currentView].hide?.();
    closePanel({ restoreFocus: false });
    hideTooltip();
  }
  for (const [other] of Object.entries(VIEWS)) {
    document.getElementById(`view-${other}`).hidden = other !== name;
  }
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[name]} · appban`;
  document.body.dataset.view = name;
  const changed = currentView !== null && currentView !== name;
  currentView = name;
  VIEWS[name].show(params);
  // Move focus to the new view's heading (for screen readers); CSS shows no ring on it.
  const heading = document.getElementById(`h-${name}`);
  if (changed && heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

// ---- the token -------------------------------------------------------------------------------------------

function setupToken() {
  const form = document.querySelector('[data-testid="token-form"]');
  const input = document.getElementById("token-input");
  const clearBtn = document.querySelector('[data-testid="token-clear"]');
  const state = document.querySelector('[data-testid="token-state"]');
  const render = () => {
    const present = Boolean(api.getToken());
    state.textContent = present ? "in use" : "none";
    state.classList.toggle("on", present);
    clearBtn.hidden = !present;
  };
  input.value = api.getToken();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    api.setToken(input.value.trim());
    render();
    flash(input.value.trim() ? "Token saved for this browser tab." : "Token removed.", "info");
  });
  input.addEventListener("change", () => {
    api.setToken(input.value.trim());
    render();
  });
  clearBtn.addEventListener("click", () => {
    input.value = "";
    api.setToken("");
    render();
    input.focus();
  });
  render();
}

let flashTimer = null;

export function flash(message, kind = "error") {
  const el = document.querySelector('[data-testid="flash"]');
  el.textContent = message;
  el.className = `flash flash-${kind}`;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (el.hidden = true), 3500);
}

// ---- health ----------------------------------------------------------------------------------------------

async function health() {
  const version = document.querySelector('[data-testid="rulebook-version"]');
  const store = document.querySelector('[data-testid="store-kind"]');
  try {
    const answer = await api.get("/healthz");
    version.textContent = answer.rulebook_version;
    store.textContent = answer.store;
  } catch (exc) {
    version.textContent = "unavailable";
    store.textContent = exc.message;
  }
}

setupToken();
window.addEventListener("hashchange", route);
// A new token may open what an earlier one (or none) could not read: show the current view again.
document.addEventListener("appban:token", () => route());
route();
health();
