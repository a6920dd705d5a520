// The audit log view: recorded decisions, newest first, each one replayable.

import * as api from "./api.js";
import { openPanel } from "./panel.js";
import {
  CATEGORY_LABEL,
  STATUS_LABEL,
  add,
  alertBox,
  badge,
  fill,
  copyButton,
  formatCount,
  formatInstant,
  h,
  humanize,
  jsonView,
  messageOf,
  scrollBox,
  shortInstant,
} from "./ui.js";

const PAGE = 50;
const KIND_LABEL = { decide: "Decision", batch: "Batch", screen: "Screening run" };

let root = null;
let page = { offset: 0, records: [], from: "", to: "" };
let wanted = null; // a record id to open once listed (from #audit?id=...)

export function mount(section) {
  root = section;
  const from = h("input", { type: "date", id: "au-from", name: "from", testid: "audit-from" });
  const to = h("input", { type: "date", id: "au-to", name: "to", testid: "audit-to" });
  const form = h(
    "form.controls",
    { testid: "audit-form", "aria-label": "Filter the audit log" },
    h("div.field", h("label", { for: "au-from" }, "Asked from"), from),
    h("div.field", h("label", { for: "au-to" }, "until (not including)"), to),
    h("button.btn", { type: "submit", testid: "audit-refresh" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    page.from = from.value;
    page.to = to.value;
    load(0);
  });
  root.append(
    h(
      "div.view-head",
      h("h1", { id: "h-audit" }, "Audit log"),
      h(
        "p.lede",
        "Every answer the service gave, with who asked, when, and under which rulebook version. ",
        "Open a record to see it in full, and replay it to check the same rulebook still gives the same answer.",
      ),
    ),
    form,
    h("div.card.audit-card", { testid: "audit-card" }),
  );
}

export function show(params) {
  wanted = params.get("id");
  load(page.offset);
}

export function hide() {}

async function load(offset) {
  const card = root.querySelector(".audit-card");
  card.setAttribute("aria-busy", "true");
  if (!card.firstChild) card.append(h("p.muted", "Loading…"));
  try {
    const params = { limit: PAGE, offset };
    if (page.from) params.from = `${page.from}T00:00:00Z`;
    if (page.to) params.to = `${page.to}T00:00:00Z`;
    const records = await api.get("/v1/audit", params);
    page.offset = offset;
    page.records = records;
    render();
    if (wanted) {
      const row = root.querySelector(`tr[data-id="${CSS.escape(wanted)}"]`);
      const record = records.find((r) => r.id === wanted);
      wanted = null;
      if (row && record) {
        row.scrollIntoView({ block: "center" });
        openRecord(record, row);
      }
    }
  } catch (exc) {
    fill(card, alertBox(messageOf(exc), { testid: "audit-error" }));
  } finally {
    card.removeAttribute("aria-busy");
  }
}

/**
 * What a record's row shows, by its kind: the server's `overview` (a decision: app, transaction, where, at,
 * verdict; a batch: its rows and their verdicts; a screening run: the file, what was read and found), read
 * from the record itself for a server too old to send one.
 */
function described(record) {
  const o = record.overview && Object.keys(record.overview).length ? record.overview : fallbackOverview(record);
  return { ...o, transaction: o.transaction || "" };
}

function fallbackOverview(record) {
  const input = record.input || {};
  const result = record.result || {};
  if (record.kind === "screen") {
    return { screen: input.kind, filename: input.filename, run_id: record.run_id, findings: result.findings, errors: 0 };
  }
  if (record.kind === "batch") return { rows: input.rows, by_verdict: result.by_verdict || {} };
  return {
    app: result.subject_name || input.app || "",
    transaction: input.transaction || result.transaction || "",
    where: input.where || result.where || "",
    at: record.instant || result.at || input.at || "",
    verdict: result.verdict || null,
    as_written: result.as_written || null,
  };
}

const plural = (n, one, many = `${one}s`) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** The "What" cell: the question a decision answered, the file a run screened, the size of a batch. */
function whatCell(record, d) {
  if (record.kind === "screen") {
    const file = h("span.audit-file", { testid: "audit-file" }, d.filename || "(no name)");
    return h(
      "td",
      h("div", `${humanize(d.screen) || "A"} screen of `, d.run_id
        ? h("a", { href: `#screen?run=${encodeURIComponent(d.run_id)}`, testid: "audit-run" }, file)
        : file),
    );
  }
  if (record.kind === "batch") return h("td", plural(d.rows ?? 0, "question"), " in one batch");
  return h(
    "td",
    h("div", h("strong", { testid: "audit-app" }, d.app), " · ", h("span", { testid: "audit-transaction" }, CATEGORY_LABEL[d.transaction] || humanize(d.transaction))),
    h(
      "div.small.muted",
      h("span", { testid: "audit-where" }, d.where),
      " · at ",
      h("time", { datetime: d.at, testid: "audit-at" }, shortInstant(d.at) || d.at),
    ),
  );
}

/** The "Result" cell: a decision's verdict, a batch's verdict counts, a run's rows read, findings and errors. */
function resultCell(record, d) {
  if (record.kind === "screen") {
    const parts = [
      d.read != null ? plural(d.read, "row") + " read" : null,
      plural(d.findings ?? 0, "finding"),
      d.errors ? plural(d.errors, "unreadable row") : null,
    ].filter(Boolean);
    return h("td", { testid: "audit-result" }, parts.join(" · "));
  }
  if (record.kind === "batch") {
    const counts = Object.entries(d.by_verdict || {}).filter(([, n]) => n > 0);
    return h("td", { testid: "audit-result" }, h("div.badges", counts.map(([v, n]) => h("span.badge-count", badge(v), h("span.n", formatCount(n))))));
  }
  return h(
    "td",
    { testid: "audit-result" },
    d.verdict ? badge(d.verdict, { testid: "audit-verdict" }) : null,
    d.as_written && d.as_written !== d.verdict ? h("div.small.muted", `as written ${STATUS_LABEL[d.as_written] || humanize(d.as_written)}`) : null,
  );
}

function render() {
  const card = root.querySelector(".audit-card");
  const records = page.records;
  if (!records.length) {
    fill(card, 
      h("p.empty", { testid: "audit-empty" }, page.offset ? "No older records." : "Nothing recorded yet: answers appear here as they are given."),
      pager(records),
    );
    return;
  }
  const rows = records.map((record) => {
    const d = described(record);
    const tr = h(
      "tr.record",
      { tabindex: "0", testid: "audit-row", "data-id": record.id, "data-kind": record.kind },
      h("td.nowrap", h("time", { datetime: record.asked_at }, shortInstant(record.asked_at))),
      h("td", record.caller),
      h("td", h("span.kind", KIND_LABEL[record.kind] || humanize(record.kind))),
      whatCell(record, d),
      resultCell(record, d),
      h("td", h("code.small", shortVersion(record.rulebook_version))),
    );
    tr.addEventListener("click", (event) => {
      if (!event.target.closest("a")) openRecord(record, tr);
    });
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        openRecord(record, tr);
      }
    });
    return tr;
  });
  fill(card, 
    scrollBox(
      "Audit records",
      h(
        "table.data.audit",
        { testid: "audit-table" },
        h(
          "thead",
          h(
            "tr",
            ["Asked at (UTC)", "Caller", "Kind", "What", "Result", "Rulebook"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", rows),
      ),
    ),
    pager(records),
  );
}

function shortVersion(version) {
  return version && version.length > 20 ? `${version.slice(0, 19)}…` : version;
}

function pager(records) {
  const newer = h("button.btn.btn-small", { type: "button", testid: "audit-newer", disabled: page.offset === 0 }, "← Newer");
  const older = h("button.btn.btn-small", { type: "button", testid: "audit-older", disabled: records.length < PAGE }, "Older →");
  newer.addEventListener("click", () => load(Math.max(0, page.offset - PAGE)));
  older.addEventListener("click", () => load(page.offset + PAGE));
  const first = page.offset + 1;
  const last = page.offset + records.length;
  return h(
    "div.table-foot",
    h("span.muted", { testid: "audit-range" }, records.length ? `Records ${first}–${last}, newest first` : ""),
    h("div.pager", newer, older),
  );
}

function openRecord(record, row) {
  for (const other of root.querySelectorAll("tr.record.selected")) other.classList.remove("selected");
  row.classList.add("selected");
  const d = described(record);
  const body = openPanel({
    title: record.kind === "decide" ? "Recorded decision" : `Recorded ${humanize(record.kind)}`,
    subtitle: `asked ${formatInstant(record.asked_at)} by ${record.caller}`,
    returnTo: row,
    testid: "audit-panel",
    label: "Audit record",
  });
  const replayOut = h("div.replay-out", { testid: "replay-result", "aria-live": "polite" });
  const replay = h("button.btn.btn-primary", { type: "button", testid: "replay" }, "Replay");
  replay.addEventListener("click", async () => {
    replay.disabled = true;
    fill(replayOut, h("p.muted", "Deciding again under the recorded rulebook…"));
    try {
      const done = await api.get(`/v1/audit/${encodeURIComponent(record.id)}/replay`);
      fill(replayOut, replayView(done));
    } catch (exc) {
      fill(replayOut, alertBox(messageOf(exc), { testid: "replay-error" }));
    } finally {
      replay.disabled = false;
    }
  });
  add(body,
    d.verdict
      ? h(
          "div.panel-verdict",
          badge(d.verdict, { big: true }),
          h("div", h("strong", `${d.app} · ${CATEGORY_LABEL[d.transaction] || humanize(d.transaction)}`), h("div.muted", `${d.where} · ${formatInstant(d.at)}`)),
        )
      : null,
    h(
      "dl.kv",
      h("dt", "Record"),
      h("dd", h("code", { testid: "audit-record-id" }, record.id), " ", copyButton(record.id, "Copy", "audit-copy")),
      h("dt", "Rulebook"),
      h("dd", h("code", record.rulebook_version)),
      record.instant ? [h("dt", "Instant"), h("dd", formatInstant(record.instant))] : null,
      record.run_id
        ? [h("dt", "Run"), h("dd", h("a", { href: `#screen?run=${encodeURIComponent(record.run_id)}`, testid: "audit-run-link" }, record.run_id))]
        : null,
    ),
    record.kind === "screen"
      ? h("p.hint", "Screening runs are recorded with their summary; open the run to see its findings.")
      : h("div.replay", replay, h("span.hint", "Decides the question again with the rulebook version recorded here.")),
    replayOut,
    h("h3.panel-h", "The full record"),
    jsonView(record, "audit-json"),
  );
}

function replayView(done) {
  if (done.identical) {
    return h(
      "div.replay-verdict.same",
      { testid: "replay-identical", "data-identical": "true" },
      h("span.replay-mark", { "aria-hidden": "true" }, "✓"),
      h("div", h("strong", "Identical"), h("div.small", `The answer under ${done.recorded_version} is the same as the one recorded.`)),
    );
  }
  return h(
    "div.replay-verdict.different",
    { testid: "replay-different", "data-identical": "false" },
    h("span.replay-mark", { "aria-hidden": "true" }, "≠"),
    h(
      "div",
      h("strong", "Different"),
      h("div.small", `Replaying under ${done.recorded_version} gives another answer:`),
      h("ul.differences", (done.differences || []).map((d) => h("li", h("code", d)))),
      done.replayed ? h("details", h("summary", { testid: "replay-replayed" }, "The replayed answer"), jsonView(done.replayed)) : null,
    ),
  );
}
