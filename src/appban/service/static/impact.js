// The impact view: every recorded answer decided again under other knowledge (GET /v1/audit/impact), and the
// answers that would change, grouped by app, category and change.

import * as api from "./api.js";
import { CATEGORY_LABEL, alertBox, badge, fill, formatCount, h, humanize, messageOf, scrollBox } from "./ui.js";

let root = null;

export function mount(section) {
  root = section;
  const rules = h(
    "select",
    { id: "im-rules", name: "rules", testid: "impact-rules" },
    h("option", { value: "installed" }, "the installed knowledge"),
    h("option", { value: "packaged" }, "the packaged knowledge"),
  );
  const since = h("input", { type: "date", id: "im-since", name: "since", testid: "impact-since" });
  const until = h("input", { type: "date", id: "im-until", name: "until", testid: "impact-until" });
  const form = h(
    "form.controls",
    { testid: "impact-form", "aria-label": "Knowledge to decide the records under" },
    h("div.field", h("label", { for: "im-rules" }, "Decide again under"), rules),
    h("div.field", h("label", { for: "im-since" }, "Asked from"), since),
    h("div.field", h("label", { for: "im-until" }, "until (not including)"), until),
    h("button.btn", { type: "submit", testid: "impact-run" }, "Work out"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load({ rules: rules.value, since: since.value, until: until.value });
  });
  root.append(
    h(
      "div.view-head",
      h("h1", { id: "h-impact" }, "Impact"),
      h(
        "p.lede",
        "Which answers already given would change under other knowledge: every recorded decision and finding ",
        "decided again, grouped by app, category and change. It reads the whole audit store.",
      ),
    ),
    form,
    h("div.card.impact-card", { testid: "impact-card" }, h("p.muted", "Choose the knowledge, then work it out.")),
  );
}

export function show() {}

export function hide() {}

async function load({ rules, since, until }) {
  const card = root.querySelector(".impact-card");
  card.setAttribute("aria-busy", "true");
  fill(card, h("p.muted", "Working it out…"));
  try {
    const params = { rules, examples: 3 };
    if (since) params.since = `${since}T00:00:00Z`;
    if (until) params.until = `${until}T00:00:00Z`;
    render(card, await api.get("/v1/audit/impact", params));
  } catch (exc) {
    fill(card, alertBox(messageOf(exc), { testid: "impact-error" }));
  } finally {
    card.removeAttribute("aria-busy");
  }
}

function change(group) {
  const parts = [];
  const verdict = group.change.verdict;
  if (verdict) parts.push(h("span.impact-change", badge(verdict.recorded), " → ", badge(verdict.under_b)));
  for (const [name, values] of Object.entries(group.change)) {
    if (name === "verdict") continue;
    parts.push(h("div.muted", `${humanize(name)}: ${humanize(values.recorded)} → ${humanize(values.under_b)}`));
  }
  return parts;
}

function render(card, report) {
  const notDecided = Object.entries(report.not_redecided_by_reason || {});
  const summary = h(
    "p",
    { testid: "impact-summary" },
    `${formatCount(report.answers)} answers decided again under rulebook ${report.rulebook_version}: `,
    h("strong", `${formatCount(report.changed)} would change`),
    notDecided.length ? `; ${formatCount(report.not_redecided)} could not be decided again.` : ".",
  );
  const parts = [h("h2", "Answers that would change"), summary];
  if (report.groups.length) {
    const table = h(
      "table.data",
      { testid: "impact-table" },
      h(
        "thead",
        h(
          "tr",
          h("th", { scope: "col" }, "App"),
          h("th", { scope: "col" }, "Category"),
          h("th", { scope: "col" }, "Change"),
          h("th.num", { scope: "col" }, "Records"),
          h("th", { scope: "col" }, "Examples"),
        ),
      ),
      h(
        "tbody",
        report.groups.map((group) =>
          h(
            "tr",
            { testid: "impact-group" },
            h("td", group.app),
            h("td", CATEGORY_LABEL[group.category] || humanize(group.category)),
            h("td", change(group)),
            h("td.num", formatCount(group.count)),
            h(
              "td",
              group.examples.map((e) => h("div", h("code", e.id), ` ${e.at} · ${e.where}`)),
            ),
          ),
        ),
      ),
    );
    parts.push(scrollBox("Answers that would change", table, "impact-scroll"));
  } else {
    parts.push(h("p", { testid: "impact-none" }, "No recorded answer would change."));
  }
  if (notDecided.length) {
    parts.push(
      h("h2", "Not decided again"),
      h(
        "ul",
        { testid: "impact-not-decided" },
        notDecided.map(([reason, count]) => h("li", `${formatCount(count)}: ${reason}`)),
      ),
    );
  }
  fill(card, ...parts);
}
