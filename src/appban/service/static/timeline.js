// The timeline view: one swim-lane per transaction category, coloured by verdict across time.

import * as api from "./api.js";
import { closePanel, openPanel } from "./panel.js";
import { hideTooltip, showTooltip } from "./tooltip.js";
import {
  CATEGORIES,
  CATEGORY_LABEL,
  ENFORCEMENT_LABEL,
  PLACES,
  VERDICTS,
  VERDICT_LABEL,
  VERDICT_MEANING,
  alertBox,
  badge,
  clear,
  fill,
  formatInstant,
  h,
  humanize,
  messageOf,
  s,
} from "./ui.js";

const COMPANY = {
  bytedance: "ByteDance",
  tencent: "Tencent",
  ant_group: "Ant Group",
  intsig: "INTSIG",
  kingsoft: "Kingsoft",
  shareit_developer: "SHAREit developer",
  ucweb: "UCWeb",
};

// Chart geometry (px).
const LABEL_W = 196;
const RIGHT = 28;
const AXIS_H = 30;
const EVENTS_H = 26;
const LANE_H = 22;
const LANE_GAP = 10;
const BOTTOM = 26;
const DAY = 86_400_000;
// Narrow screens (a phone): each lane's name goes on a line above it, so the bars take the whole width, and
// the chart is at least YEAR_MIN_W a year wide (scrolled sideways in its card) so that changes weeks apart
// stay apart under a finger. The names move with the scroll, so each lane keeps its name in view.
const STACK_BELOW = 600;
const STACKED_LABEL_H = 16;
const YEAR_MIN_W = 110;

let root = null;
let state = {
  app: "tiktok",
  where: "US",
  data: null,
  instruments: new Map(), // id -> summary from /v1/rules
  focusKey: null,
  loading: null,
};
let resizeObserver = null;
let appsLoaded = false;

export function mount(section) {
  root = section;
  const appSelect = h("select", { id: "tl-app", name: "app", testid: "timeline-app" });
  const where = h("input", {
    id: "tl-where",
    name: "where",
    value: state.where,
    list: "tl-places",
    size: "8",
    autocomplete: "off",
    spellcheck: "false",
    testid: "timeline-where",
  });
  const places = h(
    "datalist",
    { id: "tl-places" },
    PLACES.map(([code, name]) => h("option", { value: code }, name)),
  );
  const form = h(
    "form.controls",
    { testid: "timeline-form", "aria-label": "Choose an app and a place" },
    h("div.field", h("label", { for: "tl-app" }, "App"), appSelect),
    h("div.field", h("label", { for: "tl-where" }, "Where"), where, places),
    h("button.btn", { type: "submit", testid: "timeline-show" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.app = appSelect.value;
    state.where = where.value.trim().toUpperCase() || "US";
    where.value = state.where;
    syncHash();
    load();
  });
  appSelect.addEventListener("change", () => form.requestSubmit());

  root.append(
    h(
      "div.view-head",
      h("h1", { id: "h-timeline" }, "Timeline"),
      h(
        "p.lede",
        "Every order, court ruling and revocation that changed what is prohibited for one app, ",
        "one lane per kind of transaction. Hover or focus a stretch of a lane for its dates and verdict; ",
        "click it for the instruments and their citations.",
      ),
    ),
    form,
    h("div.card.chart-card", { testid: "timeline-card" }, h("div.chart-status", { testid: "timeline-status" })),
    h("div.card.changes-card", { testid: "timeline-changes", hidden: true }),
  );
}

async function fillApps(select) {
  try {
    const list = await api.apps();
    const byCompany = new Map();
    for (const app of list) {
      if (!byCompany.has(app.company)) byCompany.set(app.company, []);
      byCompany.get(app.company).push(app);
    }
    clear(select);
    for (const [company, apps] of byCompany) {
      const label = COMPANY[company] || humanize(company).replace(/^./, (c) => c.toUpperCase());
      select.append(h("optgroup", { label }, apps.map((a) => h("option", { value: a.id }, a.name))));
    }
    if (!list.some((a) => a.id === state.app)) state.app = list[0]?.id || state.app;
    select.value = state.app;
    appsLoaded = true;
  } catch (exc) {
    fill(select, h("option", { value: state.app }, state.app));
    if (exc.status !== 401) console.warn("apps:", exc);
  }
}

export function show(params) {
  let changed = false;
  if (params.get("app") && params.get("app") !== state.app) {
    state.app = params.get("app");
    changed = true;
  }
  if (params.get("where") && params.get("where").toUpperCase() !== state.where) {
    state.where = params.get("where").toUpperCase();
    changed = true;
  }
  const select = root.querySelector("#tl-app");
  if (!appsLoaded) fillApps(select);
  else if ([...select.options].some((o) => o.value === state.app)) select.value = state.app;
  root.querySelector("#tl-where").value = state.where;
  if (changed || !state.data) load();
  else render();
}

export function hide() {
  hideTooltip();
}

function syncHash() {
  const hash = `#timeline?app=${encodeURIComponent(state.app)}&where=${encodeURIComponent(state.where)}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

async function load() {
  const card = root.querySelector(".chart-card");
  const status = h("div.chart-status", { testid: "timeline-status", role: "status" }, "Loading the timeline…");
  fill(card, status);
  card.setAttribute("aria-busy", "true");
  const ticket = Symbol("load");
  state.loading = ticket;
  try {
    const [data, rules] = await Promise.all([
      api.get("/v1/timeline", { app: state.app, where: state.where }),
      api.cached("/v1/rules").catch(() => null),
    ]);
    if (state.loading !== ticket) return;
    if (rules) state.instruments = new Map(rules.instruments.map((i) => [i.id, i]));
    state.data = data;
    state.focusKey = null;
    render();
  } catch (exc) {
    if (state.loading !== ticket) return;
    state.data = null;
    fill(card, alertBox(messageOf(exc), { testid: "timeline-error" }));
    root.querySelector(".changes-card").hidden = true;
  } finally {
    if (state.loading === ticket) card.removeAttribute("aria-busy");
  }
}

// ---- the model: lanes of segments ------------------------------------------------------------------------

function buildLanes(data) {
  const categories = CATEGORIES.filter((c) => c in data.initial).concat(
    Object.keys(data.initial).filter((c) => !CATEGORIES.includes(c)),
  );
  const lanes = categories.map((category) => {
    const changes = data.changes.filter((c) => c.category === category);
    const first = changes[0];
    let current = {
      verdict: data.initial[category],
      asWritten: first ? first.as_written_before : data.initial[category],
      enforcement: first ? first.enforcement_before : "not_applicable",
      start: null,
      change: null,
    };
    const segments = [];
    for (const change of changes) {
      const at = Date.parse(change.at);
      segments.push({ ...current, end: at });
      current = {
        verdict: change.verdict_after,
        asWritten: change.as_written_after,
        enforcement: change.enforcement_after,
        start: at,
        change,
      };
    }
    segments.push({ ...current, end: null });
    return { category, segments, changes };
  });
  return lanes;
}

function timeRange(data) {
  const times = data.changes.map((c) => Date.parse(c.at));
  const now = Date.now();
  const first = times.length ? Math.min(...times) : now;
  const last = times.length ? Math.max(...times) : now;
  const startYear = Math.min(2020, new Date(first).getUTCFullYear());
  const t0 = Date.UTC(startYear, 0, 1);
  const end = Math.max(now, last);
  const t1 = end + Math.max(30 * DAY, (end - t0) * 0.025);
  return [t0, t1];
}

// ---- drawing ---------------------------------------------------------------------------------------------

function render() {
  const data = state.data;
  if (!data || !root) return;
  const card = root.querySelector(".chart-card");
  const lanes = buildLanes(data);
  const instants = [...new Set(data.changes.map((c) => c.at))].sort();
  const instruments = [...new Set(data.changes.flatMap((c) => c.instruments))];

  const subject = data.subject;
  const appName = root.querySelector(`#tl-app option[value="${CSS.escape(state.app)}"]`)?.textContent || subject;
  const summary =
    data.changes.length === 0
      ? `No order changes anything for ${appName} in ${data.where}.`
      : `${data.changes.length} change${data.changes.length === 1 ? "" : "s"} on ${instants.length} date${
          instants.length === 1 ? "" : "s"
        }, from ${instruments.length} instrument${instruments.length === 1 ? "" : "s"}.`;

  const chart = h("div.chart", { testid: "timeline-chart" });
  fill(card, 
    h(
      "div.chart-head",
      h("div", h("h2.chart-title", `${appName} in ${data.where}`), h("p.muted", { testid: "timeline-summary" }, summary)),
      legend(),
    ),
    chart,
  );
  drawChart(chart, lanes, instants);
  renderChanges(instants);

  if (resizeObserver) resizeObserver.disconnect();
  let lastWidth = chart.clientWidth;
  resizeObserver = new ResizeObserver(() => {
    const width = chart.clientWidth;
    if (Math.abs(width - lastWidth) < 2) return;
    lastWidth = width;
    requestAnimationFrame(() => drawChart(chart, lanes, instants));
  });
  resizeObserver.observe(chart);
}

function legend() {
  const swatches = VERDICTS.map((v) =>
    h(
      "li",
      { title: VERDICT_MEANING[v] },
      h(`span.swatch.v-${v}`, { "aria-hidden": "true" }),
      VERDICT_LABEL[v],
    ),
  );
  return h(
    "ul.legend",
    { testid: "timeline-legend", "aria-label": "Legend" },
    swatches,
    h("li", { title: "A prohibition in force that the executive has directed not to enforce" },
      h("span.swatch.swatch-hatch", { "aria-hidden": "true" }), "Enforcement suspended"),
    h("li", { title: "The verdict as written, where a court order or revocation changed the outcome" },
      h("span.swatch.swatch-written", { "aria-hidden": "true" }), "As written (top edge)"),
  );
}

function drawChart(container, lanes, instants) {
  const hadFocus = container.contains(document.activeElement);
  hideTooltip();
  const available = container.clientWidth || 960;
  const stacked = available < STACK_BELOW;
  const [t0, t1] = timeRange(state.data);
  const labelW = stacked ? 8 : LABEL_W;
  const above = stacked ? STACKED_LABEL_H : 0; // room for a lane's name above it
  const years = (t1 - t0) / (365.25 * DAY);
  const width = stacked
    ? Math.max(available, Math.ceil(labelW + years * YEAR_MIN_W + RIGHT))
    : Math.max(640, available);
  const plotW = width - labelW - RIGHT;
  const x = (t) => labelW + ((t - t0) / (t1 - t0)) * plotW;
  const lanesTop = AXIS_H + above + EVENTS_H + above;
  const step = above + LANE_H + LANE_GAP;
  const height = lanesTop + lanes.length * step - above - LANE_GAP + BOTTOM;
  const laneY = (i) => lanesTop + i * step;
  // A lane's name: beside it on a wide screen, above it (and kept in view when scrolled) on a narrow one.
  const rowLabel = (text, top, rowH, extra = "") =>
    stacked
      ? s("text", { x: labelW, y: top - 4, class: `lane-label stacked ${extra}`.trim() }, text)
      : s("text", { x: LABEL_W - 12, y: top + rowH / 2 + 4, "text-anchor": "end", class: `lane-label ${extra}`.trim() }, text);

  const svg = s("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    class: "timeline-svg",
    role: "application",
    "aria-roledescription": "timeline",
    "aria-label": "Verdicts over time by transaction category. Use the arrow keys to move, Enter for sources.",
    testid: "timeline-svg",
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "pattern",
        { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
        s("rect", { width: 6, height: 6, fill: "transparent" }),
        s("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }),
      ),
    ),
  );

  // Axis: years, with quarters as light ticks.
  const axis = s("g", { class: "axis", "aria-hidden": "true" });
  const startYear = new Date(t0).getUTCFullYear();
  const endYear = new Date(t1).getUTCFullYear();
  for (let year = startYear; year <= endYear + 1; year += 1) {
    for (let q = 0; q < 4; q += 1) {
      const t = Date.UTC(year, q * 3, 1);
      if (t < t0 || t > t1) continue;
      const xx = x(t);
      if (q === 0) {
        axis.append(s("line", { x1: xx, x2: xx, y1: AXIS_H - 8, y2: height - BOTTOM + 4, class: "grid-year" }));
        axis.append(s("text", { x: xx + 4, y: AXIS_H - 12, class: "axis-year" }, String(year)));
      } else {
        axis.append(s("line", { x1: xx, x2: xx, y1: lanesTop - 4, y2: height - BOTTOM, class: "grid-quarter" }));
      }
    }
  }
  axis.append(s("line", { x1: labelW, x2: labelW + plotW, y1: AXIS_H - 4, y2: AXIS_H - 4, class: "axis-line" }));
  svg.append(axis);

  const items = []; // focusable things, for the keyboard: {el, row, x0, x1, key}

  // Event row: one marker per instant with any change.
  const events = s("g", { class: "events" });
  events.append(rowLabel("Changes", AXIS_H + above, EVENTS_H, "muted-label"));
  instants.forEach((at, index) => {
    const xx = x(Date.parse(at));
    const y = AXIS_H + above + EVENTS_H / 2;
    const marker = s(
      "g",
      {
        class: "event-marker",
        tabindex: "-1",
        role: "button",
        "aria-label": `Changes on ${formatInstant(at)}`,
        testid: "timeline-event",
        "data-at": at,
        transform: `translate(${xx} ${y})`,
      },
      s("circle", { r: 11, class: "hit" }),
      s("path", { d: "M0 -6 L6 0 L0 6 L-6 0 Z" }),
    );
    const key = `event:${at}`;
    hookItem(marker, key, () => eventTip(at), () => openEvent(at, marker));
    events.append(marker);
    items.push({ el: marker, row: -1, x0: xx, x1: xx, key, order: index });
  });
  svg.append(events);

  // Lanes.
  lanes.forEach((lane, row) => {
    const y = laneY(row);
    const g = s("g", { class: "lane", "data-category": lane.category, testid: `lane-${lane.category}` });
    g.append(
      rowLabel(CATEGORY_LABEL[lane.category] || humanize(lane.category), y, LANE_H),
      s("rect", { x: labelW, y, width: plotW, height: LANE_H, rx: 4, class: "lane-track" }),
    );
    lane.segments.forEach((seg, index) => {
      const start = seg.start ?? t0;
      const end = seg.end ?? t1;
      const x0 = x(Math.max(start, t0));
      const x1 = x(Math.min(end, t1));
      const w = Math.max(2, x1 - x0 - 1);
      const key = `seg:${lane.category}:${index}`;
      const group = s(
        "g",
        {
          class: `segment v-${seg.verdict}`,
          tabindex: "-1",
          role: "button",
          testid: "timeline-segment",
          "data-category": lane.category,
          "data-verdict": seg.verdict,
          "data-start": seg.start ? new Date(seg.start).toISOString() : "",
          "aria-label": `${CATEGORY_LABEL[lane.category] || lane.category}: ${VERDICT_LABEL[seg.verdict]} ${spanText(seg)}`,
        },
        s("rect", { x: x0 + 0.5, y, width: w, height: LANE_H, rx: 3, class: "seg-fill" }),
      );
      if (seg.enforcement === "suspended") {
        group.append(s("rect", { x: x0 + 0.5, y, width: w, height: LANE_H, rx: 3, class: "seg-hatch" }));
      }
      if (seg.asWritten && seg.asWritten !== seg.verdict) {
        group.append(s("rect", { x: x0 + 0.5, y, width: w, height: 4, class: `seg-written w-${seg.asWritten}` }));
      }
      // The verdict is written on a segment only when it fits whole: a cut word ("Not yet eff…") would be
      // text a speech user sees but cannot say, as it is not the segment's name (WCAG 2.5.3).
      if (fits(VERDICT_LABEL[seg.verdict], w - 12)) {
        group.append(
          s("text", { x: x0 + 10, y: y + LANE_H / 2 + 4, class: "seg-label", "aria-hidden": "true" },
            VERDICT_LABEL[seg.verdict]),
        );
      }
      hookItem(group, key, () => segmentTip(lane, seg), () => openSegment(lane, seg, group));
      g.append(group);
      items.push({ el: group, row, x0, x1: x0 + w, key, order: index * 2 });
    });
    // A marker where each change happens, on top of the segments.
    lane.changes.forEach((change, index) => {
      const xx = x(Date.parse(change.at));
      const key = `chg:${lane.category}:${index}`;
      const marker = s(
        "g",
        {
          class: "change-marker",
          tabindex: "-1",
          role: "button",
          testid: "timeline-change",
          "data-category": lane.category,
          "data-at": change.at,
          "aria-label": `${CATEGORY_LABEL[lane.category]}: ${VERDICT_LABEL[change.verdict_before]} to ${
            VERDICT_LABEL[change.verdict_after]
          } on ${formatInstant(change.at)}`,
          transform: `translate(${xx} ${y + LANE_H / 2})`,
        },
        s("circle", { r: 10, class: "hit" }),
        s("circle", { r: 4.5, class: "dot" }),
      );
      hookItem(marker, key, () => changeTip(lane, change), () => openChange(lane, change, marker));
      g.append(marker);
      items.push({ el: marker, row, x0: xx, x1: xx, key, order: index * 2 + 1 });
    });
    svg.append(g);
  });

  // Today.
  const now = Date.now();
  if (now >= t0 && now <= t1) {
    const xx = x(now);
    svg.append(
      s(
        "g",
        { class: "today", "aria-hidden": "true", "pointer-events": "none" },
        s("line", { x1: xx, x2: xx, y1: lanesTop - 6, y2: height - BOTTOM + 6 }),
        s("text", { x: xx, y: height - 6, "text-anchor": "middle" }, "today"),
      ),
    );
  }

  fill(container, svg);
  container.classList.toggle("stacked", stacked);
  keepLabelsInView(container);
  setupKeyboard(svg, items, state.focusKey, hadFocus);
}

/** Stacked lane names follow the chart's sideways scroll, so each stays at the card's left edge. */
function keepLabelsInView(container) {
  const place = () => {
    const shift = `translate(${container.scrollLeft} 0)`;
    for (const label of container.querySelectorAll("text.stacked")) label.setAttribute("transform", shift);
  };
  if (!container.dataset.followsScroll) {
    container.addEventListener("scroll", () => requestAnimationFrame(place), { passive: true });
    container.dataset.followsScroll = "true";
  }
  place();
}

function fits(text, width) {
  return text.length * 6.6 <= width; // 11px semibold: about 6.6 px a character, kept on the safe side
}

function spanText(seg) {
  if (seg.start && seg.end) return `from ${formatInstant(seg.start)} to ${formatInstant(seg.end)}`;
  if (seg.start) return `from ${formatInstant(seg.start)} onwards`;
  if (seg.end) return `until ${formatInstant(seg.end)}`;
  return "throughout";
}

// ---- interaction -----------------------------------------------------------------------------------------

/** The chart may be drawn again (a resize) while the panel is open: find an item by its key, made current. */
function itemByKey(key, fallback) {
  const found = root.querySelector(`[data-key="${CSS.escape(key)}"]`) || fallback;
  if (found && found.ownerSVGElement) {
    for (const other of found.ownerSVGElement.querySelectorAll('[tabindex="0"]')) other.setAttribute("tabindex", "-1");
    found.setAttribute("tabindex", "0");
  }
  return found;
}

function hookItem(el, key, tip, open) {
  el.setAttribute("data-key", key);
  el.addEventListener("mouseenter", (event) => showTooltip(el, tip(), { x: event.clientX, y: event.clientY }));
  el.addEventListener("mousemove", (event) => showTooltip(el, tip(), { x: event.clientX, y: event.clientY }));
  el.addEventListener("mouseleave", () => {
    if (document.activeElement !== el) hideTooltip(el);
  });
  el.addEventListener("focus", () => {
    state.focusKey = key;
    showTooltip(el, tip());
  });
  el.addEventListener("blur", () => hideTooltip(el));
  el.addEventListener("click", (event) => {
    event.stopPropagation();
    focusItem(el);
    open();
  });
  el.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      open();
    }
  });
}

function focusItem(el) {
  const svg = el.ownerSVGElement;
  if (!svg) return;
  for (const other of svg.querySelectorAll('[tabindex="0"]')) other.setAttribute("tabindex", "-1");
  el.setAttribute("tabindex", "0");
  el.focus({ preventScroll: true });
  reveal(el);
}

/** Scroll a sideways-scrolling chart so that `el` is in view (the keyboard can move past its edge). */
function reveal(el) {
  const box = el.closest(".chart");
  if (!box || box.scrollWidth <= box.clientWidth) return;
  const outer = box.getBoundingClientRect();
  const inner = el.getBoundingClientRect();
  const margin = 24;
  if (inner.left < outer.left + margin) box.scrollLeft -= outer.left + margin - inner.left;
  else if (inner.right > outer.right - margin) box.scrollLeft += inner.right - (outer.right - margin);
}

function setupKeyboard(svg, items, focusedKey, hadFocus) {
  if (!items.length) return;
  const rows = new Map();
  for (const item of items) {
    if (!rows.has(item.row)) rows.set(item.row, []);
    rows.get(item.row).push(item);
  }
  for (const list of rows.values()) list.sort((a, b) => a.x0 - b.x0 || a.order - b.order);
  const rowKeys = [...rows.keys()].sort((a, b) => a - b);
  const byEl = new Map(items.map((item) => [item.el, item]));

  const start = items.find((i) => i.key === focusedKey) || rows.get(rowKeys[Math.min(1, rowKeys.length - 1)])[0];
  start.el.setAttribute("tabindex", "0");
  if (hadFocus && start.key === focusedKey) start.el.focus({ preventScroll: true });

  svg.addEventListener("keydown", (event) => {
    const item = byEl.get(event.target.closest("[tabindex]"));
    if (!item) return;
    const list = rows.get(item.row);
    const i = list.indexOf(item);
    let next = null;
    const centre = (item.x0 + item.x1) / 2;
    const nearest = (row) => {
      const candidates = rows.get(row);
      return (
        candidates.find((c) => c.x0 <= centre && centre <= c.x1 && c.el.classList.contains("segment")) ||
        candidates.reduce((best, c) =>
          Math.abs((c.x0 + c.x1) / 2 - centre) < Math.abs((best.x0 + best.x1) / 2 - centre) ? c : best,
        )
      );
    };
    switch (event.key) {
      case "ArrowRight":
        next = list[i + 1];
        break;
      case "ArrowLeft":
        next = list[i - 1];
        break;
      case "Home":
        next = list[0];
        break;
      case "End":
        next = list[list.length - 1];
        break;
      case "ArrowDown":
      case "ArrowUp": {
        const r = rowKeys.indexOf(item.row) + (event.key === "ArrowDown" ? 1 : -1);
        if (r >= 0 && r < rowKeys.length) next = nearest(rowKeys[r]);
        break;
      }
      default:
        return;
    }
    event.preventDefault();
    if (next) focusItem(next.el);
  });
}

// ---- tooltips --------------------------------------------------------------------------------------------

function instrumentName(id) {
  const found = state.instruments.get(id);
  return found ? found.short_title || found.title : id;
}

function verdictLine(verdict, asWritten, enforcement) {
  return h(
    "div.tip-verdict",
    badge(verdict),
    asWritten ? h("span.tip-meta", `as written: ${VERDICT_LABEL[asWritten] || asWritten}`) : null,
    enforcement && enforcement !== "not_applicable"
      ? h("span.tip-meta", ENFORCEMENT_LABEL[enforcement] || humanize(enforcement))
      : null,
  );
}

function segmentTip(lane, seg) {
  const instruments = seg.change ? seg.change.instruments : [];
  return h(
    "div.tip",
    h("div.tip-title", CATEGORY_LABEL[lane.category] || humanize(lane.category)),
    h("div.tip-dates", spanText(seg)),
    verdictLine(seg.verdict, seg.asWritten, seg.enforcement),
    instruments.length
      ? h("ul.tip-list", instruments.map((id) => h("li", instrumentName(id))))
      : h("div.tip-meta", "No instrument had changed this yet."),
    h("div.tip-hint", seg.change ? "Click or press Enter for citations" : ""),
  );
}

function changeTip(lane, change) {
  return h(
    "div.tip",
    h("div.tip-title", `${CATEGORY_LABEL[lane.category] || humanize(lane.category)} changes`),
    h("div.tip-dates", formatInstant(change.at)),
    h(
      "div.tip-verdict",
      badge(change.verdict_before),
      h("span.arrow", { "aria-hidden": "true" }, "→"),
      badge(change.verdict_after),
    ),
    h(
      "div.tip-meta",
      `As written: ${VERDICT_LABEL[change.as_written_before]} → ${VERDICT_LABEL[change.as_written_after]}`,
    ),
    h("ul.tip-list", change.instruments.map((id) => h("li", instrumentName(id)))),
    h("div.tip-hint", "Click or press Enter for citations"),
  );
}

function eventTip(at) {
  const changes = state.data.changes.filter((c) => c.at === at);
  const instruments = [...new Set(changes.flatMap((c) => c.instruments))];
  return h(
    "div.tip",
    h("div.tip-title", formatInstant(at)),
    h("div.tip-meta", `${changes.length} categor${changes.length === 1 ? "y" : "ies"} change`),
    h("ul.tip-list", instruments.map((id) => h("li", instrumentName(id)))),
    h("div.tip-hint", "Click or press Enter for citations"),
  );
}

// ---- the side panel --------------------------------------------------------------------------------------

function openSegment(lane, seg, el) {
  const label = CATEGORY_LABEL[lane.category] || humanize(lane.category);
  const body = openPanel({
    title: label,
    subtitle: spanText(seg),
    returnTo: () => itemByKey(el.dataset.key, el),
    testid: "panel",
  });
  body.append(h("div.panel-verdict", verdictLine(seg.verdict, seg.asWritten, seg.enforcement)));
  body.append(h("p.muted", VERDICT_MEANING[seg.verdict]));
  if (!seg.change) {
    const next = lane.changes[0];
    body.append(
      h(
        "p",
        "No instrument had changed this category yet",
        next ? `; the first change comes on ${formatInstant(next.at)}.` : ".",
      ),
    );
    return;
  }
  fillChange(body, [seg.change]);
}

function openChange(lane, change, el) {
  const label = CATEGORY_LABEL[lane.category] || humanize(lane.category);
  const body = openPanel({
    title: label,
    subtitle: `changes on ${formatInstant(change.at)}`,
    returnTo: () => itemByKey(el.dataset.key, el),
  });
  body.append(
    h(
      "div.panel-verdict",
      badge(change.verdict_before),
      h("span.arrow", { "aria-hidden": "true" }, "→"),
      badge(change.verdict_after),
    ),
    h(
      "p.muted",
      change.as_written_before !== change.verdict_before || change.as_written_after !== change.verdict_after
        ? `As written: ${VERDICT_LABEL[change.as_written_before]} → ${VERDICT_LABEL[change.as_written_after]}. `
        : null,
      change.enforcement_before !== change.enforcement_after
        ? `Enforcement: ${ENFORCEMENT_LABEL[change.enforcement_before]} → ${ENFORCEMENT_LABEL[change.enforcement_after]}.`
        : null,
    ),
  );
  fillChange(body, [change]);
}

function openEvent(at, el) {
  const changes = state.data.changes.filter((c) => c.at === at);
  const body = openPanel({
    title: "Changes",
    subtitle: formatInstant(at),
    returnTo: () => (el.dataset.key ? itemByKey(el.dataset.key, el) : el),
  });
  body.append(
    h(
      "ul.change-rows",
      changes.map((c) =>
        h(
          "li",
          h("span.change-cat", CATEGORY_LABEL[c.category] || humanize(c.category)),
          badge(c.verdict_before),
          h("span.arrow", { "aria-hidden": "true" }, "→"),
          badge(c.verdict_after),
        ),
      ),
    ),
  );
  fillChange(body, changes);
}

/** The items that changed and each instrument with its citation, fetched from /v1/rules/{id}. */
function fillChange(body, changes) {
  const instruments = [...new Set(changes.flatMap((c) => c.instruments))];
  const items = [...new Set(changes.flatMap((c) => c.items))];

  if (items.length) {
    const list = h("ul.item-list", { testid: "panel-items" });
    body.append(h("h3.panel-h", "What took effect or ended"), list);
    for (const id of items) {
      const li = h("li", h("code", id));
      list.append(li);
      api
        .rule(id)
        .then((item) => {
          fill(li, h("div.item-label", item.label || id), item.text ? h("div.item-text", item.text) : null);
        })
        .catch(() => {});
    }
  }

  body.append(h("h3.panel-h", instruments.length === 1 ? "Instrument" : "Instruments"));
  for (const id of instruments) {
    const article = h(
      "article.instrument",
      { testid: "panel-instrument", "data-id": id },
      h("h4", instrumentName(id)),
      h("p.muted", "Loading the citation…"),
    );
    body.append(article);
    api
      .rule(id)
      .then((found) => fillInstrument(article, id, found))
      .catch((exc) => {
        fill(article, h("h4", instrumentName(id)), alertBox(messageOf(exc)));
      });
  }
}

function fillInstrument(article, id, found) {
  const citation = found.citation || {};
  // When the instrument came into existence: before that it plays no part in any answer.
  const made = found.made
    ? `${found.made.event} ${formatInstant(`${found.made.date}T12:00:00Z`, { time: false })}` +
      (found.made.time ? ` ${found.made.time} (${found.made.zone})` : "")
    : "";
  const url = citation.url || state.instruments.get(id)?.url;
  const sources = (citation.sources || []).filter((u) => u !== url);
  fill(article, 
    h("div.instrument-kind", [humanize(found.kind), made || null].filter(Boolean).join(" · ")),
    h("h4", found.short_title || found.title || id),
    found.short_title && found.title && found.title !== found.short_title ? h("p.instrument-title", found.title) : null,
    citation.cite ? h("blockquote.cite", { testid: "panel-cite" }, citation.cite) : null,
    found.summary ? h("p.instrument-summary", found.summary) : null,
    url
      ? h(
          "a.source-link",
          { href: url, target: "_blank", rel: "noopener noreferrer", testid: "panel-link" },
          "Read the source",
          h("span", { "aria-hidden": "true" }, " ↗"),
          h("span.visually-hidden", " (opens in a new tab)"),
        )
      : null,
    sources.length
      ? h(
          "details.sources",
          h("summary", { testid: "panel-sources" }, `${sources.length} more source${sources.length === 1 ? "" : "s"}`),
          h("ul", sources.map((u) => h("li", h("a", { href: u, target: "_blank", rel: "noopener noreferrer", testid: "panel-source" }, hostOf(u))))),
        )
      : null,
  );
}

function hostOf(url) {
  try {
    const u = new URL(url);
    return `${u.hostname.replace(/^www\./, "")}${u.pathname.length > 1 ? u.pathname.slice(0, 40) : ""}${
      u.pathname.length > 41 ? "…" : ""
    }`;
  } catch {
    return url;
  }
}

// ---- the list of changes, under the chart ----------------------------------------------------------------

function renderChanges(instants) {
  const card = root.querySelector(".changes-card");
  clear(card);
  if (!instants.length) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  card.append(h("h2.card-title", "What changed, and when"));
  const list = h("ol.change-groups");
  for (const at of instants) {
    const changes = state.data.changes.filter((c) => c.at === at);
    const instruments = [...new Set(changes.flatMap((c) => c.instruments))];
    const open = h(
      "button.btn.btn-small.btn-quiet",
      { type: "button", testid: "change-group-open", "aria-label": `Sources for the changes on ${formatInstant(at)}` },
      "Sources",
    );
    open.addEventListener("click", () => openEvent(at, open));
    list.append(
      h(
        "li.change-group",
        { testid: "change-group" },
        h("div.change-when", h("time", { datetime: at }, formatInstant(at, { time: false })),
          h("span.muted", formatInstant(at).split(", ")[1] || "")),
        h(
          "div.change-what",
          h("div.change-instruments", instruments.map((id) => h("span.chip", instrumentName(id)))),
          h(
            "ul.change-rows",
            changes.map((c) =>
              h(
                "li",
                h("span.change-cat", CATEGORY_LABEL[c.category] || humanize(c.category)),
                badge(c.verdict_before),
                h("span.arrow", { "aria-hidden": "true" }, "→"),
                badge(c.verdict_after),
                c.as_written_after !== c.verdict_after
                  ? h("span.muted.small", `as written ${VERDICT_LABEL[c.as_written_after]}`)
                  : null,
                c.enforcement_after === "suspended" ? h("span.muted.small", "enforcement suspended") : null,
              ),
            ),
          ),
        ),
        h("div.change-open", open),
      ),
    );
  }
  card.append(list);
}

export function reset() {
  closePanel({ restoreFocus: false });
}
