// The "screen a file" view: upload with progress, follow the run, then page through its findings.

import * as api from "./api.js";
import {
  CATEGORY_LABEL,
  PLACES,
  VERDICTS,
  VERDICT_LABEL,
  alertBox,
  badge,
  cellText,
  clear,
  fill,
  formatBytes,
  formatCount,
  h,
  humanize,
  jsonView,
  messageOf,
  scrollBox,
  shortInstant,
  sortRows,
} from "./ui.js";

const KINDS = [
  { id: "inventory", label: "Inventory", hint: "device or app-store app lists (MDM exports, catalogues)", accept: ".csv,.tsv,.json,.jsonl,.xlsx,.parquet" },
  { id: "code", label: "Code", hint: "an app, SDK or package: APK, IPA, AAR, JAR, npm or Python package", accept: "" },
  { id: "network", label: "Network", hint: "hosting, CDN or transit logs and flow records", accept: "" },
  { id: "payments", label: "Payments", hint: "processor exports or ISO 20022 credit transfers", accept: ".csv,.tsv,.json,.jsonl,.xml,.parquet" },
];

const ROLES = [
  ["hosting", "Internet hosting"],
  ["cdn", "Content delivery (CDN)"],
  ["transit", "Transit or peering"],
];

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
const POLL_MS = 500;

let root = null;
let run = null; // {id, kind, status, ..., rows: [...], nextOffset}
let view = { filter: "", verdict: null, sortKey: null, sortDir: "ascending", columns: null, open: new Set() };
let poller = null;
let pendingUpload = null;
let chosenFile = null;
let started = 0;

export function mount(section) {
  root = section;
  const kindGroup = h(
    "div.segmented",
    { role: "radiogroup", "aria-labelledby": "sc-kind-label", testid: "screen-kind" },
    KINDS.map((k, i) =>
      h(
        "label.segment-option",
        h("input", { type: "radio", name: "kind", value: k.id, checked: i === 3, testid: `screen-kind-${k.id}` }),
        h("span.segment-title", k.label),
        h("span.segment-hint", k.hint),
      ),
    ),
  );
  const fileInput = h("input.visually-hidden", { type: "file", id: "sc-file", name: "file", testid: "screen-file" });
  const drop = h(
    "label.dropzone",
    { for: "sc-file", testid: "screen-dropzone" },
    h("span.drop-icon", { "aria-hidden": "true" }, "⇪"),
    h("span.drop-main", "Drop a file here, or ", h("span.linkish", "choose one")),
    h("span.drop-file", { testid: "screen-file-name" }, "No file chosen"),
  );
  const options = h("div.screen-options", { testid: "screen-options" });
  const uploadBtn = h("button.btn.btn-primary", { type: "submit", testid: "screen-upload", disabled: true }, "Upload and screen");
  const form = h(
    "form.card.screen-form",
    { testid: "screen-form" },
    h("h2.card-title", { id: "sc-kind-label" }, "1. What kind of file?"),
    kindGroup,
    options,
    h("h2.card-title", "2. The file"),
    fileInput,
    drop,
    h("div.form-actions", uploadBtn, h("span.hint", { testid: "screen-token-hint" })),
  );

  fileInput.addEventListener("change", () => chooseFile(fileInput.files[0] || null));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "dragend"]) drop.addEventListener(type, () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const file = event.dataTransfer?.files?.[0];
    if (file) chooseFile(file);
  });
  kindGroup.addEventListener("change", () => renderOptions());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    startUpload();
  });

  root.append(
    h(
      "div.view-head",
      h("h1", { id: "h-screen" }, "Screen a file"),
      h(
        "p.lede",
        "Upload an inventory, an app or SDK, network logs or a payments export; the service screens it in the ",
        "background against the rulebook and lists every finding with its verdict.",
      ),
    ),
    form,
    h("div.card.run-card", { testid: "run", hidden: true, "aria-live": "polite" }),
    h("div.card.findings-card", { testid: "findings", hidden: true }),
    h("div.card.recent-card", { testid: "recent-runs" }),
  );
  renderOptions();
  updateTokenHint();
  document.addEventListener("appban:token", updateTokenHint);
}

function kind() {
  return root.querySelector('input[name="kind"]:checked')?.value || "payments";
}

function renderOptions() {
  const box = root.querySelector(".screen-options");
  clear(box);
  const k = kind();
  const whereField = () =>
    h(
      "div.field.field-narrow",
      h("label", { for: "sc-where" }, "Where"),
      h("input", { id: "sc-where", name: "where", value: "US", size: "8", list: "sc-places", testid: "screen-where" }),
      h("datalist", { id: "sc-places" }, PLACES.map(([code, name]) => h("option", { value: code }, name))),
    );
  if (k === "network") {
    box.append(
      h(
        "div.field",
        h("label", { for: "sc-role" }, "Your role"),
        h("select", { id: "sc-role", name: "role", testid: "screen-role" }, ROLES.map(([v, l]) => h("option", { value: v }, l))),
      ),
      whereField(),
    );
  } else if (k === "inventory") {
    box.append(
      h(
        "div.field",
        h("label", { for: "sc-fleet" }, "Devices"),
        h(
          "select",
          { id: "sc-fleet", name: "fleet", testid: "screen-fleet" },
          h("option", { value: "corporate" }, "Corporate"),
          h("option", { value: "government" }, "Government"),
          h("option", { value: "personal" }, "Personal"),
        ),
      ),
      whereField(),
    );
  } else if (k === "code") {
    box.append(whereField());
  } else {
    box.append(h("p.hint", "The format (processor export, ISO 20022 XML…) is recognised from the file."));
  }
  const accept = KINDS.find((x) => x.id === k)?.accept;
  const input = root.querySelector("#sc-file");
  if (accept) input.setAttribute("accept", accept);
  else input.removeAttribute("accept");
}

function screenOptions() {
  const params = {};
  for (const name of ["role", "where", "fleet"]) {
    const el = root.querySelector(`.screen-options [name="${name}"]`);
    if (el && el.value.trim()) params[name] = name === "where" ? el.value.trim().toUpperCase() : el.value;
  }
  return params;
}

function chooseFile(file) {
  chosenFile = file;
  const name = root.querySelector(".drop-file");
  name.textContent = file ? `${file.name} · ${formatBytes(file.size)}` : "No file chosen";
  root.querySelector(".dropzone").classList.toggle("has-file", Boolean(file));
  root.querySelector('[data-testid="screen-upload"]').disabled = !file;
}

function updateTokenHint() {
  const hint = root?.querySelector('[data-testid="screen-token-hint"]');
  if (hint) hint.textContent = api.getToken() ? "" : "Uploads need an API token with the write scope — paste it at the top.";
}

export function show(params) {
  loadRecent();
  const id = params.get("run");
  if (id && (!run || run.id !== id)) follow(id, null);
}

export function hide() {}

// ---- upload and run --------------------------------------------------------------------------------------

function startUpload() {
  if (!chosenFile) return;
  if (pendingUpload) pendingUpload.abort();
  stopPolling();
  const file = chosenFile;
  const k = kind();
  const query = new URLSearchParams(screenOptions()).toString();
  const card = runCard();
  const bar = progressBar("Uploading", "upload-progress");
  fill(card, h("div.run-head", h("h2.card-title", `Uploading ${file.name}`)), bar.el);
  root.querySelector(".findings-card").hidden = true;
  const button = root.querySelector('[data-testid="screen-upload"]');
  button.disabled = true;
  const started_ = performance.now();
  pendingUpload = api.upload(`/v1/screens/${k}${query ? `?${query}` : ""}`, file, (loaded, total) => {
    bar.set(loaded, total, `${formatBytes(loaded)} of ${formatBytes(total)}`);
  });
  pendingUpload.promise
    .then((answer) => {
      bar.set(file.size, file.size, `${formatBytes(file.size)} sent in ${((performance.now() - started_) / 1000).toFixed(1)} s`);
      follow(answer.id, bar.el);
    })
    .catch((exc) => {
      card.append(alertBox(messageOf(exc), { testid: "screen-error" }));
    })
    .finally(() => {
      pendingUpload = null;
      button.disabled = !chosenFile;
    });
}

function runCard() {
  const card = root.querySelector(".run-card");
  card.hidden = false;
  return card;
}

function progressBar(label, testid) {
  const fill = h("div.progress-fill");
  const text = h("span.progress-text", { testid: `${testid}-text` }, "0%");
  const track = h(
    "div.progress",
    { role: "progressbar", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", testid },
    fill,
  );
  const el = h("div.progress-row", track, text);
  return {
    el,
    set(loaded, total, detail) {
      const pct = total ? Math.min(100, Math.round((loaded / total) * 100)) : 0;
      fill.style.width = `${pct}%`;
      track.setAttribute("aria-valuenow", String(pct));
      text.textContent = `${pct}%${detail ? ` · ${detail}` : ""}`;
    },
  };
}

function follow(id, uploadBar) {
  stopPolling();
  run = { id, rows: [], nextOffset: null, status: "queued" };
  view = { filter: "", verdict: null, sortKey: null, sortDir: "ascending", columns: null, open: new Set() };
  started = performance.now();
  const card = runCard();
  fill(card, 
    h("div.run-head", h("h2.card-title", "Screening run"), h("code.small", { testid: "run-id" }, id)),
    uploadBar,
    h("div.run-status", { testid: "run-status-box" }),
  );
  if (location.hash.startsWith("#screen")) history.replaceState(null, "", `#screen?run=${encodeURIComponent(id)}`);
  poll();
}

function stopPolling() {
  if (poller) clearTimeout(poller);
  poller = null;
}

async function poll() {
  const id = run.id;
  try {
    const answer = await api.get(`/v1/runs/${encodeURIComponent(id)}`, { offset: 0, limit: 0 });
    if (!run || run.id !== id) return;
    Object.assign(run, answer, { rows: run.rows });
    renderStatus();
    if (answer.status === "done" || answer.status === "failed") {
      loadRecent();
      if (answer.status === "done") await loadFindings(true);
      return;
    }
  } catch (exc) {
    if (!run || run.id !== id) return;
    const box = root.querySelector(".run-status");
    fill(box, alertBox(messageOf(exc), { testid: "run-error" }));
    if (exc.status && exc.status !== 0 && exc.status < 500) return; // 404 etc: stop
  }
  poller = setTimeout(poll, POLL_MS);
}

const STATUS_TEXT = { queued: "Queued", running: "Screening", done: "Done", failed: "Failed" };

function renderStatus() {
  const box = root.querySelector(".run-status");
  if (!box) return;
  const finished = run.status === "done" || run.status === "failed";
  const seconds = run.started_at && run.finished_at
    ? (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000
    : (performance.now() - started) / 1000;
  const rows = formatCount(run.progress_rows || 0);
  fill(box, 
    h(
      "div.run-line",
      h(`span.status-pill.s-${run.status}`, { testid: "run-status", "data-status": run.status }, STATUS_TEXT[run.status] || run.status),
      h("span", h("strong", { testid: "run-rows" }, rows), ` row${run.progress_rows === 1 ? "" : "s"} screened`),
      h("span.muted", finished ? `in ${seconds.toFixed(1)} s` : `${seconds.toFixed(0)} s`),
      run.filename ? h("span.muted", `${run.filename} · ${humanize(run.kind)}`) : null,
    ),
    finished ? null : h("div.progress.indeterminate", { role: "progressbar", "aria-label": "Screening", testid: "run-progress" }, h("div.progress-fill")),
    run.error ? alertBox(cleanPaths(run.error), { testid: "run-error" }) : null,
    run.summary ? summaryView(run.summary) : null,
  );
}

function cleanPaths(text) {
  // Server-side upload paths mean nothing to the reader: keep the file name.
  return String(text).replace(/(?:[A-Za-z]:)?[\\/](?:[^\s:\\/]+[\\/])+(?=[^\s:\\/]+)/g, "");
}

function summaryView(summary) {
  const stats = [];
  const nested = {};
  for (const [key, value] of Object.entries(summary)) {
    if (key === "errors") continue;
    if (value !== null && typeof value === "object") nested[key] = value;
    else stats.push(h("div.stat", h("div.stat-value", typeof value === "number" ? formatCount(value) : String(value ?? "—")), h("div.stat-label", humanize(key))));
  }
  const errors = Array.isArray(summary.errors) ? summary.errors : [];
  return h(
    "div.summary",
    { testid: "run-summary" },
    stats.length ? h("div.stats", stats) : null,
    errors.length
      ? h(
          "details.row-errors",
          { testid: "run-row-errors", open: errors.length <= 5 },
          h("summary", { testid: "run-row-errors-toggle" }, `${errors.length} row${errors.length === 1 ? "" : "s"} could not be read`),
          h("ul", errors.map((e) => h("li", cleanPaths(e)))),
        )
      : null,
    Object.keys(nested).length
      ? h("details.summary-more", h("summary", { testid: "run-summary-toggle" }, "Summary details"), jsonView(nested, "run-summary-json"))
      : null,
  );
}

// ---- findings --------------------------------------------------------------------------------------------

async function loadFindings(first) {
  const id = run.id;
  const offset = first ? 0 : run.nextOffset;
  if (offset == null) return;
  const more = root.querySelector('[data-testid="findings-more"]');
  if (more) {
    more.disabled = true;
    more.textContent = "Loading…";
  }
  try {
    const page = await api.get(`/v1/runs/${encodeURIComponent(id)}`, { offset, limit: PAGE });
    if (!run || run.id !== id) return;
    run.rows = first ? page.findings : run.rows.concat(page.findings);
    run.nextOffset = page.next_offset;
    run.findings_total = page.findings_total;
    renderFindings();
  } catch (exc) {
    const card = root.querySelector(".findings-card");
    card.hidden = false;
    card.append(alertBox(messageOf(exc), { testid: "findings-error" }));
  }
}

function allColumns(rows) {
  const seen = new Map();
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      if (!seen.has(key)) seen.set(key, false);
      if (value !== null && value !== "" && !(Array.isArray(value) && !value.length)) seen.set(key, true);
    }
  }
  return [...seen].filter(([, filled]) => filled).map(([key]) => key);
}

function defaultColumns(columns) {
  const chosen = PREFERRED.filter((c) => columns.includes(c)).slice(0, MAX_DEFAULT_COLUMNS);
  for (const c of columns) {
    if (chosen.length >= MAX_DEFAULT_COLUMNS) break;
    if (!chosen.includes(c) && c !== "file" && !c.endsWith("_source")) chosen.push(c);
  }
  return chosen;
}

function renderFindings() {
  const card = root.querySelector(".findings-card");
  card.hidden = false;
  const rows = run.rows;
  const columns = allColumns(rows);
  if (!view.columns) view.columns = defaultColumns(columns);
  const previous = card.querySelector('[data-testid="findings-filter"]');
  const hadFocus = previous && document.activeElement === previous;

  const filter = h("input", {
    type: "search",
    id: "sc-filter",
    placeholder: "Filter findings…",
    value: view.filter,
    autocomplete: "off",
    spellcheck: "false",
    testid: "findings-filter",
  });
  filter.addEventListener("input", () => {
    view.filter = filter.value;
    renderTable();
  });
  const picker = h(
    "details.columns-picker",
    { testid: "findings-columns" },
    h("summary.btn.btn-small.btn-quiet", { testid: "findings-columns-toggle" }, "Columns"),
    h(
      "div.columns-menu",
      columns.map((c) => {
        const box = h("input", { type: "checkbox", value: c, checked: view.columns.includes(c), testid: `column-${c}` });
        box.addEventListener("change", () => {
          view.columns = box.checked ? columns.filter((x) => view.columns.includes(x) || x === c) : view.columns.filter((x) => x !== c);
          renderTable();
        });
        return h("label.check", box, h("span", humanize(c)));
      }),
    ),
  );
  fill(card, 
    h(
      "div.findings-head",
      h("h2.card-title", "Findings ", h("span.count", { testid: "findings-total" }, formatCount(run.findings_total ?? rows.length))),
      h("div.findings-tools", h("label.visually-hidden", { for: "sc-filter" }, "Filter findings"), filter, picker),
    ),
    verdictSummary(rows),
    h("div.findings-body"),
  );
  renderTable();
  if (hadFocus) {
    filter.focus();
    filter.setSelectionRange(filter.value.length, filter.value.length);
  }
}

/** A bar of the loaded findings by verdict, and one toggle per verdict that filters the table. */
function verdictSummary(rows) {
  const counts = new Map(VERDICTS.map((v) => [v, 0]));
  for (const row of rows) if (counts.has(row.verdict)) counts.set(row.verdict, counts.get(row.verdict) + 1);
  const present = VERDICTS.filter((v) => counts.get(v) > 0);
  if (!present.length) return null;
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
      for (const other of root.querySelectorAll(".verdict-chip")) {
        other.setAttribute("aria-pressed", String(other === chip && view.verdict === v));
      }
      renderTable();
    });
    return chip;
  });
  const partial = run.nextOffset != null;
  return h(
    "div",
    { testid: "findings-verdicts" },
    bar,
    h("div.verdict-filter", { role: "group", "aria-label": "Show one verdict" }, chips,
      partial ? h("span.hint", `in the ${formatCount(rows.length)} findings loaded so far`) : null),
  );
}

function renderTable() {
  const body = root.querySelector(".findings-body");
  const rows = run.rows;
  if (!rows.length) {
    fill(body, h("p.empty", { testid: "findings-empty" }, "Nothing found: no row of this file concerns a listed app."));
    return;
  }
  const needle = view.filter.trim().toLowerCase();
  let shown = rows.map((row, index) => ({ row, index }));
  if (view.verdict) shown = shown.filter(({ row }) => row.verdict === view.verdict);
  if (needle) shown = shown.filter(({ row }) => Object.values(row).some((v) => cellText(v).toLowerCase().includes(needle)));
  if (view.sortKey) {
    const sorted = sortRows(shown.map(({ row, index }) => ({ ...row, __i: index })), view.sortKey, view.sortDir);
    shown = sorted.map((r) => ({ row: rows[r.__i], index: r.__i }));
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
      button.addEventListener("click", () => {
        if (view.sortKey === c) view.sortDir = view.sortDir === "ascending" ? "descending" : "ascending";
        else {
          view.sortKey = c;
          view.sortDir = "ascending";
        }
        renderTable();
        root.querySelector(`[data-testid="sort-${CSS.escape(c)}"]`)?.focus();
      });
      return h("th", { scope: "col", "aria-sort": active ? view.sortDir : "none", "data-column": c }, button);
    }),
  );
  const tbody = h("tbody");
  for (const { row, index } of shown) {
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
      cols.map((c) => h("td", { "data-column": c }, cell(c, row[c]))),
    );
    const toggle = () => {
      if (view.open.has(index)) view.open.delete(index);
      else view.open.add(index);
      renderTable();
      root.querySelector(`tr.finding[data-index="${index}"] .disclose`)?.focus();
    };
    tr.addEventListener("click", (event) => {
      if (!event.target.closest("a")) toggle();
    });
    tbody.append(tr);
    if (open) {
      tbody.append(
        h("tr.finding-detail", { id: detailId }, h("td", { colspan: String(cols.length + 1) }, jsonView(row, "finding-json"))),
      );
    }
  }
  const loaded = rows.length;
  const total = run.findings_total ?? loaded;
  const more = h(
    "button.btn",
    { type: "button", testid: "findings-more", hidden: run.nextOffset == null },
    `Load ${formatCount(Math.min(PAGE, total - loaded))} more`,
  );
  more.addEventListener("click", () => loadFindings(false));
  fill(body, 
    scrollBox("Findings", h("table.data.findings", { testid: "findings-table" }, h("thead", head), tbody), "findings-scroll"),
    h(
      "div.table-foot",
      h(
        "span.muted",
        { testid: "findings-shown", role: "status" },
        needle || view.verdict
          ? `${formatCount(shown.length)} of ${formatCount(loaded)} loaded findings match`
          : `${formatCount(loaded)} of ${formatCount(total)} findings loaded`,
      ),
      more,
    ),
  );
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

// ---- recent runs -----------------------------------------------------------------------------------------

async function loadRecent() {
  const card = root.querySelector(".recent-card");
  try {
    const runs = await api.get("/v1/runs", { limit: 8 });
    clear(card);
    if (!runs.length) {
      card.hidden = true;
      return;
    }
    card.hidden = false;
    card.append(
      h("h2.card-title", "Recent runs"),
      h(
        "ul.recent",
        runs.map((r) => {
          const link = h(
            "a",
            { href: `#screen?run=${encodeURIComponent(r.id)}`, testid: "recent-run" },
            h(`span.status-pill.s-${r.status}`, STATUS_TEXT[r.status] || r.status),
            h("span.recent-file", r.filename),
            h("span.muted", `${humanize(r.kind)} · ${formatCount(r.findings_total)} findings · ${shortInstant(r.created_at)}`),
          );
          link.addEventListener("click", (event) => {
            event.preventDefault();
            history.replaceState(null, "", link.getAttribute("href"));
            follow(r.id, null);
          });
          return h("li", link);
        }),
      ),
    );
  } catch {
    card.hidden = true;
  }
}
