// A side panel (non-modal drawer) for details: instruments behind a timeline change, an audit record.

import { hideTooltip } from "./tooltip.js";
import { h } from "./ui.js";

let current = null;

/**
 * Open the panel with a title and body nodes; returns the body element so callers can fill it later.
 * `returnTo` (an element, or a function finding it) gets the focus back when the panel closes.
 */
export function openPanel({ title, subtitle, testid = "panel", returnTo = null, label = "Details" }) {
  closePanel({ restoreFocus: false });
  hideTooltip();
  const heading = h("h2.drawer-title", { id: "drawer-title", tabindex: "-1" }, title);
  const body = h("div.drawer-body", { testid: `${testid}-body` });
  const close = h(
    "button.icon-btn",
    { type: "button", "aria-label": "Close details", title: "Close (Esc)", testid: `${testid}-close` },
    "×",
  );
  const drawer = h(
    "aside.drawer",
    { role: "dialog", "aria-modal": "false", "aria-labelledby": "drawer-title", "aria-label": label, testid },
    h("div.drawer-head", h("div", heading, subtitle ? h("div.drawer-sub", subtitle) : null), close),
    body,
  );
  close.addEventListener("click", () => closePanel());
  drawer.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      closePanel();
    }
  });
  document.body.append(drawer);
  document.body.classList.add("has-drawer");
  requestAnimationFrame(() => drawer.classList.add("open"));
  current = { drawer, returnTo };
  heading.focus({ preventScroll: true });
  return body;
}

export function closePanel({ restoreFocus = true } = {}) {
  if (!current) return;
  const { drawer, returnTo } = current;
  current = null;
  drawer.remove();
  document.body.classList.remove("has-drawer");
  const target = typeof returnTo === "function" ? returnTo() : returnTo;
  if (restoreFocus && target && document.contains(target)) target.focus({ preventScroll: true });
  document.dispatchEvent(new CustomEvent("appban:panel-closed"));
}

export const panelOpen = () => current !== null;

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && current) closePanel();
});
