// The upload form's options for each kind of screen, as the server lists them (GET /v1/screens): the place,
// the instant and the fleet up front, the rest under "More options"; and the file names the server reads.

import * as api from "./api.js";
import { PLACES, h, humanize } from "./ui.js";

// Options shown up front, in this order; every other option the server lists goes under "More options".
const MAIN = ["where", "at", "fleet", "role"];
const LABELS = {
  where: "Where",
  at: "Decide at",
  fleet: "Devices",
  role: "Your role",
  input_format: "Format",
  date_order: "Date order",
  log_format: "Log format",
  log_tz: "Log time zone",
  log_year: "Log year",
  at_column: "Time column",
  customer_column: "Customer column",
  tz: "Time zone of the file",
  map: "Column map",
  set: "Values for the whole file",
  decimal: "Decimal mark",
};
const CHOICE_LABELS = {
  government: "Government",
  corporate: "Corporate",
  personal: "Personal",
  hosting: "Internet hosting",
  cdn: "Content delivery (CDN)",
  transit: "Transit or peering",
  dmy: "day/month/year",
  mdy: "month/day/year",
};

/** The server's list of screens (null when it cannot be read, e.g. reads need a token not given yet). */
export async function screens() {
  try {
    return await api.cached("/v1/screens");
  } catch {
    return null;
  }
}

/** The option fields of one screen (`info` from /v1/screens), filling `box`. */
export function optionFields(info) {
  const names = info.options.map((o) => o.name);
  const main = MAIN.filter((name) => names.includes(name)).map((name) => field(info.options.find((o) => o.name === name)));
  const rest = info.options.filter((o) => !MAIN.includes(o.name));
  return [
    h("div.option-row", main),
    rest.length
      ? h(
          "details.more-options",
          { testid: "screen-more-options" },
          h("summary", "More options"),
          h("div.option-row", rest.map(field)),
        )
      : null,
  ];
}

function field(option) {
  const id = `sc-opt-${option.name}`;
  const label = LABELS[option.name] || humanize(option.name);
  const hintId = `${id}-hint`;
  const common = { id, name: option.name, testid: `screen-${option.name.replaceAll("_", "-")}`, "aria-describedby": hintId };
  let control;
  let hint = option.description;
  if (option.choices.length) {
    const preset = option.name === "fleet" ? "corporate" : option.name === "role" ? "hosting" : "";
    control = h(
      "select",
      common,
      preset ? null : h("option", { value: "" }, "(from the file)"),
      option.choices.map((c) => h("option", { value: c, selected: c === preset }, CHOICE_LABELS[c] || c)),
    );
  } else if (option.name === "at") {
    // The user's own clock time, sent as the UTC instant it is (the server takes ISO 8601).
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "this computer's zone";
    control = h("input", { ...common, type: "datetime-local", step: "1" });
    const sent = h("span.hint.sent-as", { testid: "screen-at-sent", "aria-live": "polite" });
    control.addEventListener("input", () => {
      const instant = instantOf(control.value);
      sent.textContent = instant ? `sent as ${instant}` : "";
    });
    hint = `Empty: now. Your time (${zone}); for files that give no time of their own.`;
    return h("div.field", h("label", { for: id }, label), control, h("span.hint", { id: hintId }, hint), sent);
  } else if (option.name === "where") {
    control = h("input", { ...common, value: "US", size: "8", list: "sc-places", autocomplete: "off", spellcheck: "false" });
    return h(
      "div.field.field-narrow",
      h("label", { for: id }, label),
      control,
      h("datalist", { id: "sc-places" }, PLACES.map(([code, name]) => h("option", { value: code }, name))),
      h("span.visually-hidden", { id: hintId }, hint),
    );
  } else {
    control = h("input", { ...common, autocomplete: "off", spellcheck: "false" });
  }
  return h("div.field", h("label", { for: id }, label), control, h("span.hint.option-hint", { id: hintId }, hint));
}

/** "2020-10-15T08:00" in this computer's zone -> "2020-10-15T12:00:00Z"; "" for nothing or nonsense. */
function instantOf(local) {
  if (!local) return "";
  const when = new Date(local);
  return Number.isNaN(when.getTime()) ? "" : when.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The options filled in `box`, as the query parameters of POST /v1/screens/{kind}. */
export function chosenOptions(box) {
  const params = {};
  for (const el of box.querySelectorAll("[name]")) {
    const value = el.value.trim();
    if (!value) continue;
    if (el.name === "at") params.at = instantOf(value);
    else if (el.name === "where") params.where = value.toUpperCase();
    else params[el.name] = value;
  }
  return params;
}

// A file name of each screen's own kind that its `accept` list does not cover, yet the server reads.
const OTHER_NAMES = { network: "query.log.1", payments: "pain001-20201015.dat" };

/** The file input's `accept` for a screen, and a hint on what else it reads. */
export function acceptOf(info) {
  const accept = info ? info.accept.join(",") : "";
  let hint = "";
  if (info && info.accept.length) {
    hint = `Reads ${info.accept.join(" ")}`;
    if (info.by_content) {
      const example = OTHER_NAMES[info.kind];
      hint += `; told by content, so a file of another name${example ? ` (${example})` : ""} is read too`;
    }
  } else if (info && info.by_content) {
    hint = "Any file: the format is told by its content";
  }
  return { accept, hint };
}
