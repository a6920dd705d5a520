// One tooltip for the page, placed next to the element (or pointer) it describes.

import { clear } from "./ui.js";

let owner = null;

function tip() {
  return document.getElementById("tooltip");
}

/**
 * Show `content` (a Node or a string) for `target`.
 * `at` is an optional {x, y} in client coordinates (the pointer); otherwise the target's box is used.
 */
export function showTooltip(target, content, at) {
  const el = tip();
  if (!el) return;
  clear(el);
  el.append(content instanceof Node ? content : document.createTextNode(String(content)));
  el.hidden = false;
  if (owner && owner !== target) owner.removeAttribute("aria-describedby");
  owner = target;
  target.setAttribute("aria-describedby", "tooltip");
  place(el, target, at);
}

export function hideTooltip(target) {
  const el = tip();
  if (!el || (target && owner !== target)) return;
  el.hidden = true;
  if (owner) owner.removeAttribute("aria-describedby");
  owner = null;
}

function place(el, target, at) {
  const margin = 12;
  const box = target.getBoundingClientRect();
  const x = at ? at.x : box.left + box.width / 2;
  const top = at ? at.y : box.top;
  const bottom = at ? at.y : box.bottom;
  el.style.left = "0px";
  el.style.top = "0px";
  const { width, height } = el.getBoundingClientRect();
  const viewW = document.documentElement.clientWidth;
  const viewH = document.documentElement.clientHeight;
  let left = x - width / 2;
  left = Math.max(margin, Math.min(left, viewW - width - margin));
  let y = top - height - margin;
  if (y < margin) y = bottom + margin; // no room above: go below
  y = Math.min(y, viewH - height - margin);
  el.style.left = `${Math.round(left + window.scrollX)}px`;
  el.style.top = `${Math.round(y + window.scrollY)}px`;
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") hideTooltip();
});
