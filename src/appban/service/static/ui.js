// Small DOM helpers and the shared vocabulary (verdicts, categories, dates) of every view.

/** h("div.card", {attrs}, ...children): an element; strings become text nodes, null/false are skipped. */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = [el.className, value].filter(Boolean).join(" ");
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "testid") el.dataset.testid = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "testid") el.setAttribute("data-testid", value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace an element's children (strings become text; null, undefined and false are skipped). */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** Append children the same way as fill(). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

// ---- vocabulary -----------------------------------------------------------------------------------------

export const VERDICTS = ["prohibited", "enjoined", "not_yet_effective", "revoked", "not_prohibited"];

export const VERDICT_LABEL = {
  prohibited: "Prohibited",
  enjoined: "Enjoined",
  not_yet_effective: "Not yet effective",
  revoked: "Revoked",
  not_prohibited: "Not prohibited",
};

export const VERDICT_MEANING = {
  prohibited: "An order prohibits it, and it is in force.",
  enjoined: "An order prohibits it as written, but a court has blocked the order.",
  not_yet_effective: "An order will prohibit it, but has not taken effect yet.",
  revoked: "An order prohibited it, but was revoked.",
  not_prohibited: "No order prohibits it.",
};

export const STATUS_LABEL = {
  ...VERDICT_LABEL,
  excepted: "Excepted",
  not_covered: "Not covered",
  authority_only: "Authority only",
};

export const ENFORCEMENT_LABEL = {
  enforceable: "Enforceable",
  suspended: "Enforcement suspended",
  not_applicable: "Nothing to enforce",
};

export const CATEGORIES = [
  "app_store_distribution",
  "app_store_update",
  "internet_hosting",
  "cdn",
  "transit_peering",
  "constituent_code_use",
  "funds_transfer",
  "payment_processing",
  "user_personal_use",
  "business_outside_us",
  "government_device",
];

export const CATEGORY_LABEL = {
  app_store_distribution: "App store distribution",
  app_store_update: "App store updates",
  internet_hosting: "Internet hosting",
  cdn: "Content delivery (CDN)",
  transit_peering: "Transit & peering",
  constituent_code_use: "Use of its code (SDKs)",
  funds_transfer: "Funds transfers",
  payment_processing: "Payment processing",
  user_personal_use: "Personal use",
  business_outside_us: "Business outside the US",
  government_device: "Government devices",
};

export const FACTS = [
  {
    name: "user_to_user_transfer",
    label: "User-to-user transfer",
    hint: "funds sent or received between users of the app, not paid to a business",
  },
  {
    name: "wages_or_benefits",
    label: "Wages or benefits",
    hint: "payment of wages, salaries or benefits to employees or contractors",
  },
  {
    name: "personally_owned_device",
    label: "Personally owned device",
    hint: "the device is personally owned, not agency equipment",
  },
];

export const PLACES = [
  ["US", "United States and territories"],
  ["US-MT", "Montana"],
  ["PR", "Puerto Rico"],
  ["IN", "India"],
  ["GB", "United Kingdom"],
  ["DE", "Germany"],
  ["CA", "Canada"],
  ["CN", "China"],
];

export const humanize = (value) => (value == null ? "" : String(value).replaceAll("_", " "));

/** A coloured pill for a verdict or rule status. */
export function badge(value, { big = false, testid, title } = {}) {
  const label = STATUS_LABEL[value] || humanize(value) || "—";
  return h(
    `span.badge.v-${value || "none"}${big ? ".badge-big" : ""}`,
    { testid, title: title || VERDICT_MEANING[value] || null, dataset: { verdict: value || "" } },
    h("span.dot", { "aria-hidden": "true" }),
    label,
  );
}

// ---- dates ----------------------------------------------------------------------------------------------

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n) => String(n).padStart(2, "0");

/** "28 Sep 2020, 03:59 UTC" for an ISO instant; "" for nothing. */
export function formatInstant(value, { time = true } = {}) {
  if (!value) return "";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const day = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
  if (!time) return day;
  return `${day}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** "2020-09-28 03:59" (compact, for tables). */
export function shortInstant(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

export const formatCount = (n) => (Number.isFinite(n) ? n.toLocaleString("en-US") : String(n ?? ""));

// ---- messages -------------------------------------------------------------------------------------------

/** An inline error/notice box. */
export function alertBox(message, { kind = "error", testid } = {}) {
  return h(`div.alert.alert-${kind}`, { role: kind === "error" ? "alert" : "status", testid }, message);
}

/** The message of an error, for people. */
export function messageOf(exc) {
  if (!exc) return "unknown error";
  if (exc.status === 401) return `${exc.message} — paste an API token in the bar at the top.`;
  if (exc.status === 403) return `${exc.message} — this needs a token with the write scope.`;
  return exc.message || String(exc);
}

// ---- JSON, shown nicely ---------------------------------------------------------------------------------

/** A <pre> with the JSON value, its keys, strings and numbers marked for colour. */
export function jsonView(value, testid) {
  const pre = h("pre.json", { testid, tabindex: "0" });
  const text = JSON.stringify(value, null, 2) ?? "null";
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const match of text.matchAll(token)) {
    if (match.index > last) pre.append(text.slice(last, match.index));
    if (match[1]) {
      pre.append(h(`span.${match[2] ? "j-key" : "j-str"}`, match[1]));
      if (match[2]) pre.append(match[2]);
    } else if (match[3]) {
      pre.append(h("span.j-lit", match[3]));
    } else {
      pre.append(h("span.j-num", match[4]));
    }
    last = match.index + match[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

/** Copy text to the clipboard from a button, with feedback on the button. */
export function copyButton(text, label = "Copy", testid) {
  const button = h("button.btn.btn-small.btn-quiet", { type: "button", testid }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => (button.textContent = label), 1400);
  });
  return button;
}

/**
 * A box that scrolls a wide table sideways inside its card. It can take the keyboard's focus (arrow keys then
 * scroll it) and is named, so that a keyboard or screen-reader user reaches what is off to the side.
 */
export function scrollBox(label, table, testid) {
  return h("div.table-wrap", { role: "region", "aria-label": label, tabindex: "0", testid }, table);
}

export function cellText(value) {
  if (value == null) return "";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
