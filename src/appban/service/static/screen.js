// The "screen a file" view: upload with progress, follow the run, then page through its findings.

import * as api from "./api.js";
import { cleanPaths, forget, showFindings } from "./findings.js";
import { alertBox, clear, fill, formatBytes, formatCount, h, humanize, jsonView, messageOf, shortInstant } from "./ui.js";
import { acceptOf, chosenOptions, optionFields, screens } from "./upload-options.js";

const KINDS = [
  { id: "inventory", label: "Inventory", hint: "device or app-store app lists (MDM exports, catalogues)" },
  { id: "code", label: "Code", hint: "an app, SDK or package: APK, IPA, AAR, JAR, npm or Python package" },
  { id: "network", label: "Network", hint: "hosting, CDN or transit logs and flow records" },
  { id: "payments", label: "Payments", hint: "processor exports or ISO 20022 credit transfers" },
];
const POLL_MS = 500;

let root = null;
let run = null; // {id, kind, status, ...}
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
    h("span.drop-accept", { testid: "screen-accept" }),
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
  document.addEventListener("appban:token", () => {
    updateTokenHint();
    if (!root.querySelector(".screen-options select, .screen-options input")) renderOptions();
  });
}

function kind() {
  return root.querySelector('input[name="kind"]:checked')?.value || "payments";
}

/** The chosen screen's options and accepted file names, from the server's list (GET /v1/screens). */
async function renderOptions() {
  const k = kind();
  const list = await screens();
  if (kind() !== k) return; // another kind was chosen meanwhile
  const info = list?.find((s) => s.kind === k) || null;
  const box = root.querySelector(".screen-options");
  clear(box);
  if (info) box.append(...optionFields(info).filter(Boolean));
  else box.append(h("p.hint", { testid: "screen-options-unavailable" }, "The options appear once the service can be read (an API token may be needed)."));
  const { accept, hint } = acceptOf(info);
  const input = root.querySelector("#sc-file");
  if (accept) input.setAttribute("accept", accept);
  else input.removeAttribute("accept");
  root.querySelector(".drop-accept").textContent = hint;
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
  const query = new URLSearchParams(chosenOptions(root.querySelector(".screen-options"))).toString();
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
  run = { id, status: "queued" };
  forget();
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
    Object.assign(run, answer);
    renderStatus();
    if (answer.status === "done" || answer.status === "failed") {
      loadRecent();
      if (answer.status === "done") await showFindings(root.querySelector(".findings-card"), run);
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
