// The timeline (Gantt-style): one bar per task from its start to its end (or now).
import { duration, el, seconds, svg } from "./dom.js";

const ROW_H = 24;
const LABEL_W = 170;
const WIDTH = 900;

export function drawTimeline(tasks) {
  const started = tasks.filter((t) => t.started_at && Number.isFinite(Date.parse(t.started_at)));
  if (!started.length) return el("p", { class: "muted", id: "timeline" }, "No task has started yet.");
  const now = Date.now();
  const start = Math.min(...started.map((t) => Date.parse(t.started_at)));
  const end = Math.max(...started.map((t) => (t.completed_at ? Date.parse(t.completed_at) : now)), start + 1);
  const span = end - start;
  const plot = WIDTH - LABEL_W - 90;
  const x = (ms) => LABEL_W + ((ms - start) / span) * plot;
  const height = started.length * ROW_H + 28;
  const root = svg("svg", { class: "timeline", id: "timeline", width: WIDTH, height, viewBox: `0 0 ${WIDTH} ${height}` });
  for (let i = 0; i <= 4; i++) {
    const at = LABEL_W + (plot * i) / 4;
    root.append(
      svg("line", { class: "tick", x1: at, x2: at, y1: 0, y2: height - 18 }),
      svg("text", { class: "tick-label", x: at, y: height - 4, "text-anchor": "middle" }, `+${duration((span * i) / 4000)}`),
    );
  }
  started
    .sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at))
    .forEach((t, i) => {
      const from = Date.parse(t.started_at);
      const to = t.completed_at ? Date.parse(t.completed_at) : now;
      const y = i * ROW_H + 4;
      const label = t.name.length > 22 ? `${t.name.slice(0, 21)}…` : t.name;
      root.append(
        svg("text", { class: "row-label", x: 4, y: y + 14 }, label),
        svg("rect", { class: `span status-${t.status}`, "data-task-id": t.id, x: x(from), y, width: Math.max(2, x(to) - x(from)), height: ROW_H - 8, rx: 3 }, svg("title", {}, `${t.name}: ${duration(seconds(t.started_at, t.completed_at))}`)),
        svg("text", { class: "span-label", x: x(to) + 6, y: y + 13 }, duration(seconds(t.started_at, t.completed_at))),
      );
    });
  return root;
}
