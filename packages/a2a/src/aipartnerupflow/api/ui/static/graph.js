// The dependency graph: tasks in columns by dependency depth (a task sits right of every task
// it depends on), ordered to keep edges short, drawn as SVG. Parent links are dashed.
import { svg } from "./dom.js";

const NODE_W = 190;
const NODE_H = 58;
const COL_GAP = 80;
const ROW_GAP = 18;
const PAD = 16;

/** The ids a task depends on (dependencies are {id, required} objects or plain ids). */
export function dependencyIds(task) {
  return (task.dependencies || [])
    .map((dep) => (typeof dep === "string" ? dep : dep && dep.id))
    .filter((id) => typeof id === "string");
}

/** Columns and rows for `tasks` (in tree order); cycles and outside ids are ignored. */
export function layout(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const deps = new Map(tasks.map((t) => [t.id, dependencyIds(t).filter((id) => byId.has(id) && id !== t.id)]));
  const dependents = new Map(tasks.map((t) => [t.id, []]));
  const waiting = new Map();
  for (const [id, list] of deps) {
    waiting.set(id, list.length);
    for (const dep of list) dependents.get(dep).push(id);
  }
  const column = new Map();
  const queue = tasks.filter((t) => waiting.get(t.id) === 0).map((t) => t.id);
  for (const id of queue) column.set(id, 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    for (const next of dependents.get(id)) {
      column.set(next, Math.max(column.get(next) || 0, column.get(id) + 1));
      waiting.set(next, waiting.get(next) - 1);
      if (waiting.get(next) === 0) queue.push(next);
    }
  }
  for (const t of tasks) if (!column.has(t.id)) column.set(t.id, 0); // in a cycle: leave at 0
  const order = new Map(tasks.map((t, i) => [t.id, i]));
  const columns = [];
  for (const t of tasks) (columns[column.get(t.id)] ||= []).push(t.id);
  const row = new Map();
  columns.forEach((ids, c) => {
    const key = (id) => {
      const list = deps.get(id);
      if (c === 0 || !list.length) return order.get(id);
      return list.reduce((sum, dep) => sum + (row.get(dep) ?? 0), 0) / list.length;
    };
    ids.sort((a, b) => key(a) - key(b) || order.get(a) - order.get(b));
    ids.forEach((id, r) => row.set(id, r));
  });
  const rows = Math.max(1, ...columns.map((ids) => ids.length));
  const positions = new Map();
  for (const t of tasks) {
    positions.set(t.id, {
      x: PAD + column.get(t.id) * (NODE_W + COL_GAP),
      y: PAD + row.get(t.id) * (NODE_H + ROW_GAP),
    });
  }
  return {
    positions,
    deps,
    width: PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * COL_GAP,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP,
  };
}

function curve(from, to) {
  const x1 = from.x + NODE_W;
  const y1 = from.y + NODE_H / 2;
  const x2 = to.x;
  const y2 = to.y + NODE_H / 2;
  const bend = Math.max(30, (x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
}

function short(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The graph as an <svg>; `onSelect(id)` is called when a task is clicked. */
export function drawGraph(tasks, selected, onSelect) {
  const { positions, deps, width, height } = layout(tasks);
  const root = svg("svg", {
    class: "graph",
    id: "graph",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "dependency graph",
  });
  root.append(
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))),
  );
  const byId = new Map(tasks.map((t) => [t.id, t]));
  for (const t of tasks) {
    if (t.parent_id && byId.has(t.parent_id) && !deps.get(t.id).includes(t.parent_id)) {
      const a = positions.get(t.parent_id);
      const b = positions.get(t.id);
      const d = a.x === b.x ? `M${a.x + 12},${a.y + NODE_H} L${b.x + 12},${b.y}` : curve(a, b);
      root.append(svg("path", { class: "edge parent", d }));
    }
    for (const dep of deps.get(t.id)) {
      root.append(svg("path", { class: "edge dependency", "data-from": dep, "data-to": t.id, d: curve(positions.get(dep), positions.get(t.id)), "marker-end": "url(#arrow)" }));
    }
  }
  for (const t of tasks) {
    const { x, y } = positions.get(t.id);
    const progress = Math.max(0, Math.min(1, Number(t.progress) || 0));
    const node = svg(
      "g",
      { class: `node status-${t.status}${t.id === selected ? " selected" : ""}`, transform: `translate(${x},${y})`, "data-task-id": t.id, "data-status": t.status, tabindex: 0, role: "button" },
      svg("title", {}, `${t.name} (${t.id}): ${t.status}`),
      svg("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 8 }),
      svg("text", { class: "name", x: 10, y: 20 }, short(t.name || t.id, 24)),
      svg("text", { class: "meta", x: 10, y: 38 }, `${t.status.replace("_", " ")} · attempt ${t.attempts || 0}`),
      svg("rect", { class: "bar-bg", x: 10, y: 46, width: NODE_W - 20, height: 4, rx: 2 }),
      svg("rect", { class: "bar", x: 10, y: 46, width: (NODE_W - 20) * progress, height: 4, rx: 2 }),
    );
    node.addEventListener("click", () => onSelect(t.id));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") onSelect(t.id);
    });
    root.append(node);
  }
  return root;
}
