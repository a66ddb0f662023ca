// The mesh grid: fetched from /api/grid, drawn with textContent only, refreshed on a timer.
"use strict";
const SYMBOLS = { ok: "✓", warn: "▲", bad: "✖", stale: "⌛", failed: "!", none: "–" };
const CAPTIONS = {
  twamp: "TWAMP: round trip | loss",
  owamp: "OWAMP: to the destination | from it",
};
window.otwampGridLoads = 0;

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function pairLink(cell) {
  const query = new URLSearchParams({
    source: cell.source, destination: cell.destination, protocol: cell.protocol,
  });
  return "pair?" + query.toString();
}

function drawCell(cell) {
  const key = `${cell.protocol} ${cell.source} ${cell.destination}`;
  const link = element("a", { class: "cell", href: pairLink(cell), "data-key": key });
  const words = [`${cell.source} to ${cell.destination}`];
  for (const half of cell.halves) {
    const span = element("span", {
      class: "half", "data-state": half.state, "data-half": half.name, title: half.reason,
    }, `${SYMBOLS[half.state]} ${half.text}`);
    link.append(span);
    words.push(`${half.name}: ${half.state}, ${half.reason}`);
  }
  link.setAttribute("aria-label", words.join("; "));
  return link;
}

function drawGrid(grid) {
  const table = element("table", { class: "grid", "data-protocol": grid.protocol });
  table.append(element("caption", {}, CAPTIONS[grid.protocol]));
  const head = element("tr");
  head.append(element("th", { scope: "col" }, "from \\ to"));
  for (const destination of grid.destinations) head.append(element("th", { scope: "col" }, destination));
  table.append(head);
  const byPair = new Map(grid.cells.map((cell) => [`${cell.source} ${cell.destination}`, cell]));
  for (const source of grid.sources) {
    const row = element("tr");
    row.append(element("th", { scope: "row" }, source));
    for (const destination of grid.destinations) {
      const td = element("td");
      const cell = byPair.get(`${source} ${destination}`);
      if (cell) td.append(drawCell(cell));
      row.append(td);
    }
    table.append(row);
  }
  return table;
}

function rules(data) {
  const t = data.thresholds;
  const delay = (limit) => (limit === null ? "" : ` or delay > ${(limit * 1e3).toPrecision(3)} ms`);
  document.getElementById("amber-rule").textContent = `loss > ${t.loss_amber_pct} %${delay(t.delay_amber)}`;
  document.getElementById("red-rule").textContent = `loss > ${t.loss_red_pct} %${delay(t.delay_red)}`;
  document.getElementById("stale-rule").textContent =
    `no session ended in the last ${data.stale_after} s`;
}

async function refresh() {
  const status = document.getElementById("status");
  let data;
  try {
    const response = await fetch("api/grid");
    data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
  } catch (error) {
    status.textContent = `cannot update: ${error.message}`;
    status.className = "error";
    return 10;
  }
  const focused = document.activeElement && document.activeElement.dataset.key;
  const grids = document.getElementById("grids");
  grids.replaceChildren(...data.grids.map(drawGrid));
  if (!data.grids.length) grids.append(element("p", {}, "No session in the archive's window yet."));
  if (focused) {
    const again = grids.querySelector(`a[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  rules(data);
  status.className = "";
  status.textContent = `updated ${data.now.slice(0, 19)}Z, every ${data.refresh} s`;
  window.otwampGridLoads += 1;
  return data.refresh;
}

// Arrow keys move between the cells of a grid.
document.addEventListener("keydown", (event) => {
  const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  const link = document.activeElement;
  if (!(event.key in moves) || !link.classList.contains("cell")) return;
  const td = link.parentElement;
  const rows = Array.from(td.closest("table").rows);
  let r = rows.indexOf(td.parentElement), c = td.cellIndex;
  const [dr, dc] = moves[event.key];
  for (;;) {
    r += dr; c += dc;
    if (r < 1 || r >= rows.length || c < 1 || c >= rows[r].cells.length) return;
    const next = rows[r].cells[c].querySelector("a.cell");
    if (next) { next.focus(); event.preventDefault(); return; }
  }
});

async function loop() {
  const seconds = await refresh();
  setTimeout(loop, seconds * 1000);
}
loop();
