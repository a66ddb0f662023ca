// A pair's page: synced uPlot charts of the downsampled series, a histogram, the sessions.
"use strict";
const params = new URLSearchParams(location.search);
const pair = {
  source: params.get("source"),
  destination: params.get("destination"),
  protocol: params.get("protocol") || "twamp",
};
const WAYS = pair.protocol === "twamp" ? ["forward", "backward"] : ["to", "from"];
// Okabe-Ito; a second line is also dashed, so no line is told apart by colour alone.
const COLOURS = ["#0072b2", "#e69f00", "#009e73", "#d55e00"];
const DASHES = [[], [8, 4], [2, 3]];
const PAGE = 100;
const TIME_CHARTS = ["rtt", "delay", "loss", "jitter"];
let range = { since: null, until: null };
let offset = 0;
let reloadTimer = null;
const charts = {};
window.otwampCharts = charts;
window.otwampLoads = 0;

const ms = (value) => (value === null || value === undefined ? null : value * 1e3);
const $ = (id) => document.getElementById(id);

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(path, query) {
  const response = await fetch(`${path}?${new URLSearchParams(query)}`);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function width() {
  return Math.max(280, $("charts").clientWidth - 8);
}

// Legend values: three significant digits, whatever the scale (µs delays are 0.0xx ms).
const shown = (u, value) => (value === null || value === undefined ? "--" : Number(value.toPrecision(3)));

function line(label, index, extra) {
  return Object.assign(
    {
      label, stroke: COLOURS[index % 4], dash: DASHES[index % 3], width: 1.5, spanGaps: false,
      value: shown,
    },
    extra || {},
  );
}

// Points only: sessions whose one-way delays had unsynchronized clocks.
function unsyncMarks(label, index) {
  return {
    label, stroke: COLOURS[index % 4], paths: () => null, value: shown,
    points: { show: true, size: 7, width: 1.5, fill: "#fff" },
  };
}

function seriesOf(name) {
  if (name === "rtt") return ["min", "median", "p95"].map((s, i) => line(`RTT ${s}`, i));
  if (name === "delay") {
    return WAYS.flatMap((way, i) => [line(`${way} median`, i), unsyncMarks(`${way} unsync`, i)]);
  }
  if (name === "loss") {
    return pair.protocol === "twamp" ? [line("loss (round trip)", 0)] : WAYS.map((w, i) => line(`${w} loss`, i));
  }
  return WAYS.map((way, i) => line(`${way} jitter`, i));
}

function dataOf(name, c) {
  if (name === "rtt") return [c.t, c.rtt_min.map(ms), c.rtt_median.map(ms), c.rtt_p95.map(ms)];
  if (name === "delay") {
    return [c.t, ...WAYS.flatMap((way) => {
      const median = c[`${way}_delay_median`].map(ms);
      return [median, median.map((v, i) => (c[`${way}_unsync`][i] > 0 ? v : null))];
    })];
  }
  if (name === "loss") {
    return pair.protocol === "twamp" ? [c.t, c.loss_pct] : [c.t, ...WAYS.map((w) => c[`${w}_loss_pct`])];
  }
  return [c.t, ...WAYS.map((way) => c[`${way}_jitter`].map(ms))];
}

function zoomTo(since, until) {
  for (const name of TIME_CHARTS) {
    if (charts[name]) charts[name].setScale("x", { min: since, max: until });
  }
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => load(String(since), String(until)), 200);
}

function timeChart(name, data) {
  const unit = name === "loss" ? "%" : "ms";
  return new uPlot({
    width: width(),
    height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    cursor: { sync: { key: "otwamp" }, drag: { x: true, y: false, setScale: false } },
    scales: { x: { time: true } },
    series: [{ label: "UTC" }, ...seriesOf(name)],
    axes: [{}, { label: unit, size: 60 }],
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 3) return;
        const since = u.posToVal(u.select.left, "x");
        const until = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        zoomTo(since, until);
      }],
    },
  }, data, $(name));
}

function histogramData(histogram) {
  const names = Object.keys(histogram.counts);
  const centres = histogram.edges.slice(1).map((edge, i) => ms((edge + histogram.edges[i]) / 2));
  return { names, data: [centres, ...names.map((n) => histogram.counts[n])] };
}

function drawHistogram(histogram) {
  const { names, data } = histogramData(histogram);
  const key = names.join(",");
  if (charts.hist && charts.hist.otwampKey === key) {
    charts.hist.setData(data);
    return;
  }
  if (charts.hist) charts.hist.destroy();
  charts.hist = new uPlot({
    width: width(),
    height: 180,
    scales: { x: { time: false } },
    series: [{ label: "ms" }, ...names.map((n, i) => ({
      label: `${n} sessions`, stroke: COLOURS[i], fill: COLOURS[i] + "99", width: 1,
      paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false },
    }))],
    axes: [
      { label: "median delay (ms)", values: (u, ticks) => ticks.map((v) => Number(v.toPrecision(3))) },
      { label: "sessions", size: 60 },
    ],
  }, data, $("hist"));
  charts.hist.otwampKey = key;
}

function drawCharts(series) {
  for (const name of TIME_CHARTS) {
    if (name === "rtt" && pair.protocol !== "twamp") continue;
    const data = dataOf(name, series.columns);
    if (charts[name]) charts[name].setData(data, false);
    else charts[name] = timeChart(name, data);
    charts[name].setScale("x", { min: series.since, max: series.until });
  }
}

function lossText(packets) {
  if (!packets) return "";
  const measured = packets.sent - (packets.discarded || 0);
  return measured ? `${((100 * packets.lost) / measured).toFixed(2)} %` : "";
}

function sessionRow(s) {
  const delay = pair.protocol === "twamp" ? s.rtt : s.delay;
  const syncs = pair.protocol === "twamp" ? [s.forward && s.forward.sync, s.backward && s.backward.sync] : [s.sync];
  const clocks = s.packets ? (syncs.every((x) => x === true) ? "synced" : "unsync") : "";
  const packets = s.packets || {};
  const row = element("tr", { "data-id": String(s.id) });
  const idCell = element("td");
  idCell.append(element("a", { href: `api/sessions/${s.id}` }, String(s.id)));
  row.append(idCell);
  const texts = [
    s.start.slice(0, 19), s.direction || "", s.mode || "", packets.sent ?? "", packets.lost ?? "",
    lossText(s.packets), delay && delay.median !== null ? `${(delay.median * 1e3).toFixed(3)} ms` : "",
    clocks,
  ];
  for (const text of texts) row.append(element("td", {}, String(text)));
  row.append(element("td", { class: "text" }, s.failure || ""));
  const links = element("td");
  if (s.records) {
    links.append(element("a", { href: `api/sessions/${s.id}/packets` }, "JSON"), " ",
      element("a", { href: `api/sessions/${s.id}/packets.txt` }, "text"));
  }
  row.append(links);
  return row;
}

async function loadSessions() {
  const query = { ...pair, since: range.since, until: range.until, limit: PAGE, offset };
  const sessions = await getJson("api/sessions", query);
  $("sessions").tBodies[0].replaceChildren(...sessions.sessions.map(sessionRow));
  const last = Math.min(sessions.total, offset + sessions.sessions.length);
  $("session-count").textContent = `(${sessions.total ? offset + 1 : 0}–${last} of ${sessions.total}, newest first)`;
  $("newer").disabled = offset === 0;
  $("older").disabled = last >= sessions.total;
  const q = new URLSearchParams(query);
  $("sessions-csv").href = `api/sessions.csv?${q}`;
  $("sessions-json").href = `api/sessions?${q}`;
}

function toInput(seconds) {
  return new Date(seconds * 1e3).toISOString().slice(0, 19);
}

async function load(since, until) {
  const status = $("status");
  status.textContent = "loading…";
  status.className = "";
  const query = { ...pair, since };
  if (until) query.until = until;
  const points = Math.min(5000, Math.max(100, Math.round(width())));
  let series, histogram;
  try {
    [series, histogram] = await Promise.all([
      getJson("api/series", { ...query, points }),
      getJson("api/histogram", query),
    ]);
    range = { since: series.since, until: series.until };
    offset = 0;
    await loadSessions();
  } catch (error) {
    status.textContent = `cannot load: ${error.message}`;
    status.className = "error";
    return;
  }
  drawCharts(series);
  drawHistogram(histogram);
  const shown = { ...pair, since: range.since, until: range.until };
  history.replaceState(null, "", `pair?${new URLSearchParams(shown)}`);
  $("series-csv").href = `api/series.csv?${new URLSearchParams({ ...shown, points })}`;
  $("series-json").href = `api/series?${new URLSearchParams({ ...shown, points })}`;
  $("since").value = toInput(range.since);
  $("until").value = toInput(range.until);
  const span = range.until - range.since;
  for (const button of document.querySelectorAll("button[data-range]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.range) === Math.round(span)));
  }
  const bucket = series.bucket_s >= 1 ? `${Math.round(series.bucket_s)} s` : `${series.bucket_s * 1e3} ms`;
  status.textContent = `${series.sessions} session(s) from ${toInput(range.since)}Z to ` +
    `${toInput(range.until)}Z: ${series.columns.t.length} point(s), each of up to ${bucket}`;
  window.otwampLoads += 1;
  window.otwampLoaded = { since: range.since, until: range.until, sessions: series.sessions };
  window.otwampRenderedAt = performance.now();
}

function setUp() {
  const arrow = pair.protocol === "twamp" ? "⇄" : "→";
  $("title").textContent = `${pair.source} ${arrow} ${pair.destination} (${pair.protocol.toUpperCase()})`;
  document.title = `otwamp: ${pair.source} ${arrow} ${pair.destination}`;
  if (pair.protocol !== "twamp") $("rtt-figure").hidden = true;
  for (const button of document.querySelectorAll("button[data-range]")) {
    button.addEventListener("click", () => load(`${button.dataset.range}s`));
  }
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    load(`${$("since").value}Z`, `${$("until").value}Z`);
  });
  $("older").addEventListener("click", () => { offset += PAGE; loadSessions(); });
  $("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadSessions(); });
  $("charts").addEventListener("keydown", (event) => {
    const span = range.until - range.since;
    const moves = {
      ArrowLeft: [-span / 4, -span / 4], ArrowRight: [span / 4, span / 4],
      "+": [span / 4, -span / 4], "=": [span / 4, -span / 4], "-": [-span / 2, span / 2],
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const [a, b] = moves[event.key];
    zoomTo(range.since + a, range.until + b);
  });
  window.addEventListener("resize", () => {
    for (const chart of Object.values(charts)) chart.setSize({ width: width(), height: chart.height });
  });
  load(params.get("since") || "24h", params.get("until"));
}
setUp();
