// The "check a transaction" view: one question to POST /v1/decide and its answer, with the rule trail.

import * as api from "./api.js";
import {
  CATEGORIES,
  CATEGORY_LABEL,
  ENFORCEMENT_LABEL,
  FACTS,
  PLACES,
  STATUS_LABEL,
  VERDICT_MEANING,
  alertBox,
  badge,
  clear,
  fill,
  copyButton,
  formatInstant,
  h,
  humanize,
  messageOf,
  scrollBox,
} from "./ui.js";

let root = null;
let form = null;
let appsLoaded = false;

const ZONES = [
  "UTC",
  "America/New_York",
  "America/Chicago",
  "America/Denver",
  "America/Los_Angeles",
  "America/Anchorage",
  "Pacific/Honolulu",
  "America/Puerto_Rico",
  "Pacific/Guam",
  "Europe/London",
  "Europe/Berlin",
  "Asia/Kolkata",
  "Asia/Shanghai",
  "Asia/Singapore",
  "Asia/Tokyo",
  "Australia/Sydney",
];

function zones() {
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const list = [...ZONES];
  if (local && !list.includes(local)) list.splice(1, 0, local);
  let all = [];
  try {
    all = Intl.supportedValuesOf("timeZone");
  } catch {
    all = [];
  }
  return { local, common: list, others: all.filter((z) => !list.includes(z)) };
}

function nowLocalInput() {
  const d = new Date();
  d.setSeconds(0, 0);
  const offset = d.getTimezoneOffset() * 60_000;
  return new Date(d.getTime() - offset).toISOString().slice(0, 16);
}

export function mount(section) {
  root = section;
  const { local, common, others } = zones();
  const appInput = h("input", {
    id: "ck-app",
    name: "app",
    list: "ck-apps",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "tiktok, WeChat, 微信…",
    testid: "check-app",
  });
  const appList = h("datalist", { id: "ck-apps", testid: "check-app-options" });
  const transaction = h(
    "select",
    { id: "ck-transaction", name: "transaction", required: true, testid: "check-transaction" },
    CATEGORIES.map((c) => h("option", { value: c }, CATEGORY_LABEL[c])),
  );
  const where = h("input", {
    id: "ck-where",
    name: "where",
    value: "US",
    list: "ck-places",
    required: true,
    size: "8",
    autocomplete: "off",
    spellcheck: "false",
    testid: "check-where",
  });
  const places = h("datalist", { id: "ck-places" }, PLACES.map(([code, name]) => h("option", { value: code }, name)));
  const local_ = h("input", {
    id: "ck-local",
    name: "local",
    type: "datetime-local",
    step: "1",
    value: nowLocalInput(),
    testid: "check-datetime",
  });
  const tz = h(
    "select",
    { id: "ck-tz", name: "tz", testid: "check-tz" },
    h("optgroup", { label: "Common" }, common.map((z) => h("option", { value: z }, z === local ? `${z} (this computer)` : z))),
    others.length ? h("optgroup", { label: "All zones" }, others.map((z) => h("option", { value: z }, z))) : null,
  );
  tz.value = local || "UTC";
  const iso = h("input", {
    id: "ck-iso",
    name: "iso",
    placeholder: "2020-10-15T12:00:00Z",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "ck-iso-hint",
    testid: "check-iso",
  });
  const facts = h(
    "fieldset.facts",
    { testid: "check-facts" },
    h("legend", "Facts ", h("span.muted", "(optional)")),
    FACTS.map((fact) =>
      h(
        "label.check",
        { title: fact.hint },
        h("input", { type: "checkbox", name: `fact-${fact.name}`, value: fact.name, testid: `check-fact-${fact.name}` }),
        h("span", h("span.check-label", fact.label), h("span.check-hint", fact.hint)),
      ),
    ),
    h("p.hint", "An unticked fact counts as unknown: exceptions that need it are listed as possible, not applied."),
  );
  const submit = h("button.btn.btn-primary", { type: "submit", testid: "check-submit" }, "Check");
  form = h(
    "form.card.check-form",
    { testid: "check-form", novalidate: true },
    h(
      "div.form-grid",
      h("div.field", h("label", { for: "ck-app" }, "App"), appInput, appList),
      h("div.field", h("label", { for: "ck-transaction" }, "Transaction"), transaction),
      h("div.field.field-narrow", h("label", { for: "ck-where" }, "Where"), where, places),
    ),
    h(
      "div.form-grid",
      h("div.field", h("label", { for: "ck-local" }, "Date and time"), local_),
      h("div.field", h("label", { for: "ck-tz" }, "Time zone"), tz),
      h(
        "div.field",
        h("label", { for: "ck-iso" }, "or an ISO 8601 instant"),
        iso,
        h("span.hint", { id: "ck-iso-hint" }, "with an offset; used instead of the date and time when filled"),
      ),
    ),
    facts,
    h("div.form-actions", submit, h("span.form-status", { role: "status", testid: "check-status" })),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    decide();
  });

  root.append(
    h(
      "div.view-head",
      h("h1", { id: "h-check" }, "Check a transaction"),
      h(
        "p.lede",
        "Is this transaction prohibited at this instant, and why? Every answer is recorded in the audit log ",
        "with the rulebook version it was given under.",
      ),
    ),
    h("div.check-layout", form, h("div.result", { testid: "check-result", "aria-live": "polite" })),
  );
}

async function fillApps(list) {
  try {
    const apps = await api.apps();
    clear(list);
    for (const app of apps) {
      list.append(h("option", { value: app.id }, `${app.name}${app.aliases.length ? ` — ${app.aliases.join(", ")}` : ""}`));
    }
    appsLoaded = true;
  } catch {
    /* autocomplete is a convenience; the API accepts names and aliases anyway */
  }
}

export function show(params) {
  if (!appsLoaded) fillApps(root.querySelector("#ck-apps"));
  for (const name of ["app", "transaction", "where"]) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }
  if (params.get("at")) form.elements.iso.value = params.get("at");
  if (!form.elements.app.value) form.elements.app.value = "tiktok";
}

function question() {
  const f = form.elements;
  const body = {
    app: f.app.value.trim(),
    transaction: f.transaction.value,
    where: f.where.value.trim().toUpperCase(),
  };
  const iso = f.iso.value.trim();
  if (iso) {
    body.at = iso;
  } else {
    let local = f.local.value;
    if (!local) return { error: "Give a date and time, or an ISO 8601 instant." };
    if (local.length === 16) local += ":00";
    body.at = local;
    body.tz = f.tz.value;
  }
  const facts = {};
  for (const fact of FACTS) {
    if (f[`fact-${fact.name}`].checked) facts[fact.name] = true;
  }
  if (Object.keys(facts).length) body.facts = facts;
  if (!body.app) return { error: "Name an app." };
  if (!body.where) return { error: "Say where (an ISO country or subdivision code such as US or US-MT)." };
  return { body };
}

async function decide() {
  const out = root.querySelector(".result");
  const status = form.querySelector(".form-status");
  const submit = form.querySelector('[type="submit"]');
  const { body, error } = question();
  if (error) {
    fill(out, alertBox(error, { testid: "check-error" }));
    return;
  }
  submit.disabled = true;
  status.textContent = "Checking…";
  out.setAttribute("aria-busy", "true");
  try {
    const decision = await api.post("/v1/decide", body);
    fill(out, resultCard(decision, body));
    status.textContent = "";
    const top = out.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.6) out.scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (exc) {
    fill(out, alertBox(messageOf(exc), { testid: "check-error" }));
    status.textContent = "";
  } finally {
    submit.disabled = false;
    out.removeAttribute("aria-busy");
  }
}

function headline(d) {
  const what = CATEGORY_LABEL[d.transaction] || humanize(d.transaction);
  return `${what} for ${d.subject_name} in ${d.where}`;
}

function resultCard(d, asked) {
  const relevant = d.rules.filter((r) => r.status !== "not_covered");
  const others = d.rules.filter((r) => r.status === "not_covered");
  return h(
    "article.card.decision",
    { testid: "decision", "data-verdict": d.verdict },
    h(
      `div.decision-head.v-${d.verdict}`,
      badge(d.verdict, { big: true, testid: "decision-verdict" }),
      h(
        "div.decision-summary",
        h("h2.decision-question", h("strong", headline(d)), h("br"), `at ${formatInstant(d.at)}`,
          asked.tz ? h("span.muted", ` (asked as ${asked.at} ${asked.tz})`) : null),
        h("p.muted", VERDICT_MEANING[d.verdict]),
      ),
    ),
    h(
      "dl.facts-grid",
      h("div", h("dt", "As written"), h("dd", { testid: "decision-as-written" }, badge(d.as_written))),
      h("div", h("dt", "Enforcement"), h("dd", { testid: "decision-enforcement" }, ENFORCEMENT_LABEL[d.enforcement] || humanize(d.enforcement))),
      h("div", h("dt", "Decision"), h("dd", h("code", { testid: "decision-id" }, d.decision_id), " ", copyButton(d.decision_id, "Copy", "decision-copy"))),
      h("div", h("dt", "Rulebook"), h("dd", h("code", { testid: "decision-rulebook" }, d.rulebook_version))),
    ),
    section("Rule trail", ruleTable(relevant, others), "decision-rules"),
    d.exceptions.length ? section("Exceptions applied", exceptionList(d.exceptions, true), "decision-exceptions") : null,
    d.possible_exceptions.length
      ? section("Possible exceptions", exceptionList(d.possible_exceptions, false), "decision-possible")
      : null,
    d.uncertainties.length
      ? section("Uncertainties", h("ul.notes.notes-warn", d.uncertainties.map((u) => h("li", u))), "decision-uncertainties")
      : null,
    d.notes.length ? section("Notes", h("ul.notes", d.notes.map((n) => h("li", n))), "decision-notes") : null,
    d.citations.length ? section("Citations", citationList(d.citations), "decision-citations") : null,
    h(
      "p.decision-foot",
      h("a", { href: `#audit?id=${encodeURIComponent(d.decision_id)}`, testid: "decision-audit-link" }, "See it in the audit log"),
      h("span.sep", { "aria-hidden": "true" }, " · "),
      h("a", { href: `#timeline?app=${encodeURIComponent(d.subject)}&where=${encodeURIComponent(d.where)}` }, `Timeline for ${d.subject_name}`),
    ),
  );
}

function section(title, content, testid) {
  return h("section.decision-section", { testid }, h("h3", title), content);
}

function ruleTable(relevant, others) {
  const row = (r) =>
    h(
      "tr",
      { testid: "rule-row", "data-rule": r.rule_id },
      h("td", h("div.rule-label", r.label), h("code.small", r.rule_id)),
      h("td", h("div", r.instrument_title), r.changed_by.length ? h("div.small.muted", `shaped by ${r.changed_by.join(", ")}`) : null),
      h("td", badge(r.status), r.as_written && r.as_written !== r.status ? h("div.small.muted", `as written ${STATUS_LABEL[r.as_written] || r.as_written}`) : null),
      h("td.reason", r.reason),
    );
  const table = scrollBox(
    "Rule trail",
    h(
      "table.data.rules",
      h("thead", h("tr", h("th", { scope: "col" }, "Rule"), h("th", { scope: "col" }, "Instrument"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Why"))),
      h("tbody", relevant.length ? relevant.map(row) : h("tr", h("td.muted", { colspan: "4" }, "No rule covers this transaction."))),
    ),
  );
  if (!others.length) return table;
  const more = h(
    "details.more-rules",
    h("summary", { testid: "more-rules" }, `${others.length} rule${others.length === 1 ? "" : "s"} about this app that do not cover it`),
    scrollBox("Rules that do not cover it", h("table.data.rules", h("tbody", others.map(row)))),
  );
  return h("div", table, more);
}

function exceptionList(list, applied) {
  return h(
    "ul.exceptions",
    list.map((e) =>
      h(
        `li.exception${applied ? ".applied" : ""}`,
        h("div.exception-label", e.label),
        h("p", e.text),
        Object.keys(e.facts || {}).length
          ? h("div.small", applied ? "because " : "would apply if ", Object.entries(e.facts).map(([k, v]) => h("code.fact", `${k} = ${v}`)))
          : null,
        h("div.small.muted", e.cite),
      ),
    ),
  );
}

function citationList(citations) {
  return h(
    "ol.citations",
    citations.map((c) =>
      h(
        "li",
        { testid: "citation" },
        h("div.citation-title", c.title),
        h("div.small", c.cite),
        c.url
          ? h("a.source-link", { href: c.url, target: "_blank", rel: "noopener noreferrer", testid: "citation-link" }, "Source", h("span", { "aria-hidden": "true" }, " ↗"), h("span.visually-hidden", " (opens in a new tab)"))
          : null,
      ),
    ),
  );
}
