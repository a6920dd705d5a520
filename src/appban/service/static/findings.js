// A screening run's findings: filtered, sorted and paged by the server over every finding of the run
// (GET /v1/runs/{id}/findings), shown in the columns the user picks, and downloaded whole as CSV or JSON
// (GET /v1/runs/{id}/findings/export) with the same filters and order.

import * as api from "./api.js";
import {
  CATEGORY_LABEL,
  VERDICTS,
  VERDICT_LABEL,
  alertBox,
  badge,
  cellText,
  fill,
  formatCount,
  h,
  humanize,
  jsonView,
  messageOf,
  scrollBox,
  shortInstant,
} from "./ui.js";

// Columns worth seeing first, in order; the rest are behind "Columns".
const PREFERRED = [
  "verdict",
  "line",
  "ts",
  "at",
  "id",
  "record_name",
  "record_publisher",
  "app_name",
  "match",
  "service",
  "amount",
  "currency",
  "merchant",
  "nexus",
  "host",
  "domain",
  "client",
  "customer",
  "marker",
  "path",
  "component",
  "transaction",
  "where",
  "as_written",
  "enforcement",
];
const MAX_DEFAULT_COLUMNS = 9;
const PAGE = 100;
const TYPING_PAUSE_MS = 250; // the filter asks the server once the user pauses typing
const COLUMNS_KEY = "appban.columns.";

let card = null;
let run = null; // {id, kind, total}
let list = null; // {rows, nextOffset, matched, columns}
let view = null; // {q, verdict, sortKey, sortDir, columns, open}
let counts = new Map(); // verdict -> findings of the run with it
let ticket = 0; // the latest request: answers to older ones are dropped
let typing = null;

/** Show the findings of a finished run in `target` (a card), from the first page. */
export function showFindings(target, finished) {
  card = target;
  run = { id: finished.id, kind: finished.kind, total: finished.findings_total ?? 0 };
  list = { rows: [], nextOffset: null, matched: 0, columns: [] };
  view = { q: "", verdict: null, sortKey: null, sortDir: "ascending", columns: null, open: new Set() };
  counts = new Map();
  card.hidden = false;
  fill(card, h("p.muted", "Loading the findings…"));
  return Promise.all([load(true), countVerdicts(run.id)]).then(() => renderChips());
}

export function forget() {
  run = null;
  ticket += 1;
}

function query(extra = {}) {
  const params = { ...extra };
  if (view.q.trim()) params.q = view.q.trim();
  if (view.verdict) params.verdict = view.verdict;
  if (view.sortKey) {
    params.sort = view.sortKey;
    params.order = view.sortDir === "descending" ? "desc" : "asc";
  }
  return params;
}

async function load(first) {
  if (!run) return;
  const id = run.id;
  const offset = first ? 0 : list.nextOffset;
  if (offset == null) return;
  const mine = ++ticket;
  const more = card.querySelector('[data-testid="findings-more"]');
  if (more && !first) {
    more.disabled = true;
    more.textContent = "Loading…";
  }
  card.setAttribute("aria-busy", "true");
  try {
    const page = await api.get(`/v1/runs/${encodeURIComponent(id)}/findings`, query({ offset, limit: PAGE }));
    if (mine !== ticket || !run || run.id !== id) return;
    list.rows = first ? page.findings : list.rows.concat(page.findings);
    list.nextOffset = page.next_offset;
    list.matched = page.matched;
    run.total = page.findings_total;
    if (first) view.open = new Set();
    if (!list.columns.length && page.columns.length) {
      list.columns = page.columns;
      view.columns = savedColumns(page.columns) || defaultColumns(page.columns, page.findings);
    }
    if (!card.querySelector(".findings-body")) renderFrame();
    renderTable();
  } catch (exc) {
    if (mine !== ticket) return;
    if (!card.querySelector(".findings-body")) fill(card);
    card.querySelector('[data-testid="findings-error"]')?.remove();
    card.append(alertBox(messageOf(exc), { testid: "findings-error" }));
  } finally {
    if (mine === ticket) card.removeAttribute("aria-busy");
  }
}

/** How many findings of the whole run have each verdict (one small request per verdict: no rows sent). */
async function countVerdicts(id) {
  const answers = await Promise.all(
    VERDICTS.map((v) =>
      api
        .get(`/v1/runs/${encodeURIComponent(id)}/findings`, { verdict: v, limit: 0 })
        .then((page) => [v, page.matched])
        .catch(() => [v, 0]),
    ),
  );
  if (run && run.id === id) counts = new Map(answers);
}

// ---- columns -----------------------------------------------------------------------------------------------

function defaultColumns(columns, rows) {
  const filled = columns.filter((c) =>
    rows.some((row) => row[c] !== null && row[c] !== undefined && row[c] !== "" && !(Array.isArray(row[c]) && !row[c].length)),
  );
  const chosen = PREFERRED.filter((c) => filled.includes(c)).slice(0, MAX_DEFAULT_COLUMNS);
  for (const c of filled) {
    if (chosen.length >= MAX_DEFAULT_COLUMNS) break;
    if (!chosen.includes(c) && c !== "file" && !c.endsWith("_source")) chosen.push(c);
  }
  return chosen.length ? chosen : columns.slice(0, MAX_DEFAULT_COLUMNS);
}

/** The columns the user chose for this kind of screen before (kept in this browser), if they still exist. */
function savedColumns(columns) {
  try {
    const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY + run.kind) || "null");
    const kept = Array.isArray(saved) ? columns.filter((c) => saved.includes(c)) : [];
    return kept.length ? kept : null;
  } catch {
    return null;
  }
}

function saveColumns() {
  try {
    localStorage.setItem(COLUMNS_KEY + run.kind, JSON.stringify(view.columns));
  } catch {
    /* storage may be disabled: the choice lasts for this page */
  }
}

// ---- the card ----------------------------------------------------------------------------------------------

function renderFrame() {
  const filter = h("input", {
    type: "search",
    id: "sc-filter",
    placeholder: "Filter findings…",
    autocomplete: "off",
    spellcheck: "false",
    testid: "findings-filter",
  });
  filter.addEventListener("input", () => {
    view.q = filter.value;
    clearTimeout(typing);
    typing = setTimeout(() => load(true), TYPING_PAUSE_MS);
  });
  const columns = h(
    "details.columns-picker",
    { testid: "findings-columns" },
    h("summary.btn.btn-small", { testid: "findings-columns-toggle" }, "Columns"),
    h(
      "fieldset.columns-menu",
      h("legend.visually-hidden", "Columns shown"),
      list.columns.map((c) => {
        const box = h("input", { type: "checkbox", value: c, checked: view.columns.includes(c), testid: `column-${c}` });
        box.addEventListener("change", () => {
          view.columns = box.checked
            ? list.columns.filter((x) => view.columns.includes(x) || x === c)
            : view.columns.filter((x) => x !== c);
          saveColumns();
          renderTable();
        });
        return h("label.check", box, h("span", humanize(c)));
      }),
    ),
  );
  const download = (format) => {
    const button = h("button.btn.btn-small", { type: "button", testid: `findings-download-${format}` }, format.toUpperCase());
    button.addEventListener("click", () => downloadAll(format, button));
    return button;
  };
  fill(
    card,
    h(
      "div.findings-head",
      h("h2.card-title", "Findings ", h("span.count", { testid: "findings-total" }, formatCount(run.total))),
      h(
        "div.findings-tools",
        h("label.visually-hidden", { for: "sc-filter" }, "Filter findings"),
        filter,
        columns,
        h("div.downloads", { role: "group", "aria-label": "Download the findings shown by the filters" },
          h("span.hint", { "aria-hidden": "true" }, "Download"), download("csv"), download("json")),
      ),
    ),
    h("div.findings-verdicts", { testid: "findings-verdicts" }),
    h("div.findings-body"),
    h("div.download-status", { role: "status", testid: "findings-download-status" }),
  );
}

/** A bar of the run's findings by verdict, and one toggle per verdict that filters the table (server-side). */
function renderChips() {
  const box = card?.querySelector(".findings-verdicts");
  if (!box) return;
  const present = VERDICTS.filter((v) => counts.get(v) > 0);
  if (!present.length) {
    fill(box);
    return;
  }
  const total = present.reduce((sum, v) => sum + counts.get(v), 0);
  const bar = h(
    "div.verdict-bar",
    { "aria-hidden": "true" },
    present.map((v) => h(`span.v-${v}`, { style: `width: ${(100 * counts.get(v)) / total}%` })),
  );
  const chips = present.map((v) => {
    const chip = h(
      "button.verdict-chip",
      { type: "button", "aria-pressed": String(view.verdict === v), testid: `verdict-chip-${v}`, title: `Show only ${VERDICT_LABEL[v].toLowerCase()} findings` },
      badge(v),
      h("span.n", formatCount(counts.get(v))),
    );
    chip.addEventListener("click", () => {
      view.verdict = view.verdict === v ? null : v;
      for (const other of box.querySelectorAll(".verdict-chip")) {
        other.setAttribute("aria-pressed", String(other === chip && view.verdict === v));
      }
      load(true);
    });
    return chip;
  });
  fill(box, bar, h("div.verdict-filter", { role: "group", "aria-label": "Show one verdict" }, chips));
}

function renderTable() {
  const body = card.querySelector(".findings-body");
  if (!body) return;
  const rows = list.rows;
  const filtered = Boolean(view.q.trim() || view.verdict);
  if (!rows.length) {
    fill(
      body,
      h(
        "p.empty",
        { testid: "findings-empty" },
        filtered ? "No finding matches the filter." : "Nothing found: no row of this file concerns a listed app.",
      ),
    );
    return;
  }
  const cols = view.columns;
  const head = h(
    "tr",
    h("td.disclose-cell"),
    cols.map((c) => {
      const active = view.sortKey === c;
      const button = h(
        "button.sort",
        { type: "button", testid: `sort-${c}` },
        humanize(c),
        h("span.sort-mark", { "aria-hidden": "true" }, active ? (view.sortDir === "ascending" ? "▲" : "▼") : ""),
      );
      button.addEventListener("click", async () => {
        if (view.sortKey === c) view.sortDir = view.sortDir === "ascending" ? "descending" : "ascending";
        else {
          view.sortKey = c;
          view.sortDir = "ascending";
        }
        await load(true);
        card.querySelector(`[data-testid="sort-${CSS.escape(c)}"]`)?.focus();
      });
      return h("th", { scope: "col", "aria-sort": active ? view.sortDir : "none", "data-column": c }, button);
    }),
  );
  const tbody = h("tbody");
  rows.forEach((row, index) => {
    // A table row cannot be expanded (aria-expanded is for treegrid rows): a button in its first cell
    // opens the whole finding in the row below; a click anywhere on the row does the same.
    const open = view.open.has(index);
    const detailId = `finding-detail-${index}`;
    const disclose = h(
      "button.disclose",
      {
        type: "button",
        testid: "finding-open",
        "aria-expanded": String(open),
        "aria-controls": open ? detailId : null,
        "aria-label": `Finding ${index + 1} in full`,
      },
      h("span", { "aria-hidden": "true" }, open ? "▾" : "▸"),
    );
    const tr = h(
      `tr.finding${open ? ".open" : ""}`,
      { testid: "finding-row", "data-index": String(index) },
      h("td.disclose-cell", disclose),
      cols.map((c) => {
        const text = cellText(row[c]);
        return h("td", { "data-column": c, title: text.length > 40 ? text : null }, cell(c, row[c]));
      }),
    );
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      if (view.open.has(index)) view.open.delete(index);
      else view.open.add(index);
      renderTable();
      card.querySelector(`tr.finding[data-index="${index}"] .disclose`)?.focus();
    });
    tbody.append(tr);
    if (open) {
      tbody.append(
        h("tr.finding-detail", { id: detailId }, h("td", { colspan: String(cols.length + 1) }, jsonView(row, "finding-json"))),
      );
    }
  });
  const loaded = rows.length;
  const more = h(
    "button.btn",
    { type: "button", testid: "findings-more", hidden: list.nextOffset == null },
    `Load ${formatCount(Math.min(PAGE, list.matched - loaded))} more`,
  );
  more.addEventListener("click", () => load(false));
  fill(
    body,
    scrollBox("Findings", h("table.data.findings", { testid: "findings-table" }, h("thead", head), tbody), "findings-scroll"),
    h(
      "div.table-foot",
      h(
        "span.muted",
        { testid: "findings-shown", role: "status" },
        filtered
          ? `${formatCount(loaded)} of ${formatCount(list.matched)} matching findings loaded (of ${formatCount(run.total)})`
          : `${formatCount(loaded)} of ${formatCount(run.total)} findings loaded`,
      ),
      more,
    ),
  );
}

export function cleanPaths(text) {
  // Server-side upload paths mean nothing to the reader: keep the file name.
  return String(text).replace(/(?:[A-Za-z]:)?[\\/](?:[^\s:\\/]+[\\/])+(?=[^\s:\\/]+)/g, "");
}

function cell(column, value) {
  if (value == null) return "";
  if (["verdict", "as_written"].includes(column)) return badge(value);
  if (column === "transaction" && CATEGORY_LABEL[value]) return CATEGORY_LABEL[value];
  if (column === "ts" || column === "at" || column.endsWith("_at")) return shortInstant(value) || String(value);
  if (column === "confidence" && typeof value === "number") return value.toFixed(2);
  if (column === "file") return cleanPaths(value);
  if (typeof value === "string" && /^https?:\/\//.test(value)) {
    return h("a", { href: value, target: "_blank", rel: "noopener noreferrer" }, new URL(value).hostname);
  }
  return cellText(value);
}

// ---- downloads ---------------------------------------------------------------------------------------------

/**
 * Every finding that passes the filters, in the table's order, as a file. Without a token the browser
 * downloads the server's streamed answer itself; with one (a header a link cannot carry) it is fetched first.
 */
async function downloadAll(format, button) {
  const status = card.querySelector(".download-status");
  const params = new URLSearchParams(query({ format }));
  const url = `/v1/runs/${encodeURIComponent(run.id)}/findings/export?${params}`;
  const fallbackName = `appban-${run.kind}-${run.id.slice(0, 8)}-findings.${format}`;
  if (!api.getToken()) {
    save(url, fallbackName);
    status.textContent = `Downloading ${format.toUpperCase()}…`;
    return;
  }
  button.disabled = true;
  status.textContent = `Preparing the ${format.toUpperCase()} download…`;
  try {
    const { blob, name, count } = await api.download(url);
    const link = URL.createObjectURL(blob);
    save(link, name || fallbackName);
    setTimeout(() => URL.revokeObjectURL(link), 60_000);
    status.textContent = count != null ? `${formatCount(count)} findings downloaded as ${format.toUpperCase()}.` : "Downloaded.";
  } catch (exc) {
    status.textContent = "";
    card.querySelector('[data-testid="findings-error"]')?.remove();
    card.append(alertBox(messageOf(exc), { testid: "findings-error" }));
  } finally {
    button.disabled = false;
  }
}

function save(href, name) {
  const link = h("a", { href, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}
