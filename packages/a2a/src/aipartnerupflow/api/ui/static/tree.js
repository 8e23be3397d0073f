// One tree: its dependency graph, task table, details, timeline and activity, kept live over
// the tree WebSocket, with the actions run, cancel, re-run failed and copy.
import { rpc, watchTree } from "./api.js";
import { badge, duration, el, pretty, replace, seconds, TERMINAL, when } from "./dom.js";
import { dependencyIds, drawGraph } from "./graph.js";
import { drawTimeline } from "./timeline.js";

/** The tasks of a nested tree, parents before children. */
function flatten(root) {
  const out = [];
  const stack = [root];
  while (stack.length) {
    const node = stack.pop();
    const { children, ...task } = node;
    out.push(task);
    for (let i = (children || []).length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return out;
}

function describeEvent(event, names) {
  const name = names.get(event.task_id) || event.name || event.task_id;
  switch (event.kind) {
    case "tree_started":
      return "tree started";
    case "tree_finished":
      return `tree finished: ${event.status}`;
    case "task_progress":
      return `${name}: ${Math.round((event.progress || 0) * 100)}%${event.message ? ` ${event.message}` : ""}`;
    default:
      return `${name} → ${String(event.status).replace("_", " ")}${event.error ? `: ${event.error}` : ""}`;
  }
}

/** What the tree as a whole is doing, from its tasks' statuses. */
export function treeStatus(tasks) {
  const statuses = new Set(tasks.map((t) => t.status));
  if (statuses.has("in_progress")) return "in_progress";
  if (statuses.has("pending")) return tasks.some((t) => t.started_at && t.status !== "pending") ? "in_progress" : "pending";
  for (const status of ["failed", "cancelled"]) if (statuses.has(status)) return status;
  return "completed";
}

export function renderTree({ view, params, flash }, taskId) {
  let tasks = [];
  let rootId = null;
  let selected = null;
  let stopWatch = null;
  let refetchTimer = null;
  let reconnectTimer = null;
  let left = false;
  let running = 0; // actions in flight that start runs
  let runRequested = params.get("run") === "1";
  const seen = new Map(); // task id -> newest status an event reported in this run

  const title = el("h1", { id: "tree-title" }, "Tree");
  const live = el("span", { class: "live", id: "live", "data-state": "connecting" }, "connecting");
  const actions = el("div", { class: "actions", id: "actions" });
  const graphBox = el("div", { class: "graph-box", id: "graph-box" });
  const details = el("aside", { class: "details", id: "details" });
  const table = el("tbody", { id: "tasks-body" });
  const timelineBox = el("div", { class: "timeline-box", id: "timeline-box" });
  const activity = el("ol", { class: "activity", id: "activity" });
  replace(
    view,
    el("p", {}, el("a", { href: "#/trees" }, "‹ All trees")),
    el("div", { class: "tree-head" }, title, live),
    actions,
    el("div", { class: "tree-main" }, graphBox, details),
    el("h2", {}, "Tasks"),
    el("table", { class: "tasks" }, el("thead", {}, el("tr", {}, ["Task", "Executor", "Status", "Progress", "Attempts", "Duration", "Depends on"].map((h) => el("th", {}, h)))), table),
    el("h2", {}, "Timeline"),
    timelineBox,
    el("h2", {}, "Activity"),
    activity,
  );

  const byId = () => new Map(tasks.map((t) => [t.id, t]));
  const root = () => tasks.find((t) => t.id === rootId);

  function draw() {
    const top = root();
    if (!top) return;
    const overall = treeStatus(tasks);
    title.textContent = top.name || top.id;
    title.append(" ", el("span", { class: "muted tree-label" }, "tree"), badge(overall));
    view.dataset.treeStatus = overall;
    graphBox.replaceChildren(drawGraph(tasks, selected, (id) => { selected = id; draw(); }));
    drawTable();
    drawDetails();
    timelineBox.replaceChildren(drawTimeline(tasks));
    drawActions();
  }

  function drawTable() {
    const names = byId();
    const rows = document.createDocumentFragment();
    for (const t of tasks) {
      rows.append(
        el(
          "tr",
          { "data-task-id": t.id, "data-status": t.status, class: t.id === selected ? "selected" : "", onclick: () => { selected = t.id; draw(); } },
          el("td", {}, t.name),
          el("td", { class: "mono" }, t.schemas?.method || "—"),
          el("td", {}, badge(t.status)),
          el("td", {}, `${Math.round((t.progress || 0) * 100)}%`),
          el("td", {}, String(t.attempts || 0)),
          el("td", {}, duration(seconds(t.started_at, t.completed_at))),
          el("td", {}, dependencyIds(t).map((id) => names.get(id)?.name || id).join(", ") || "—"),
        ),
      );
    }
    table.replaceChildren(rows);
  }

  function drawDetails() {
    const t = byId().get(selected) || root();
    if (!t) return;
    const field = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
    const block = (label, value, cls) => el("div", { class: `block ${cls || ""}` }, el("h3", {}, label), el("pre", {}, pretty(value)));
    replace(
      details,
      el("h2", {}, t.name),
      el(
        "dl",
        {},
        field("Id", el("span", { class: "mono" }, t.id)),
        field("Status", badge(t.status)),
        field("Executor", t.schemas?.method || "—"),
        field("Progress", `${Math.round((t.progress || 0) * 100)}%`),
        field("Attempts", String(t.attempts || 0)),
        field("Started", when(t.started_at)),
        field("Ended", when(t.completed_at)),
        field("Duration", duration(seconds(t.started_at, t.completed_at))),
        field("Owner", t.user_id || "—"),
      ),
      TERMINAL.has(t.status) ? null : el("button", { type: "button", class: "danger", id: "cancel-task", onclick: () => act("cancel", { task_id: t.id }) }, "Cancel this task"),
      t.error ? block("Error", t.error, "error-block") : null,
      block("Result", t.result),
      block("Inputs", t.inputs),
    );
  }

  function drawActions() {
    const statuses = new Set(tasks.map((t) => t.status));
    const unfinished = tasks.some((t) => !TERMINAL.has(t.status));
    const top = root();
    const button = (id, label, onclick, enabled, cls = "") => el("button", { type: "button", id, class: cls, disabled: !enabled, onclick }, label);
    replace(
      actions,
      button("run-tree", "Run", () => startRun({ task_id: rootId }), top.status === "pending" && !statuses.has("in_progress") && !running),
      button("cancel-tree", "Cancel tree", () => act("cancel", { task_id: rootId }), unfinished, "danger"),
      button("rerun-failed", "Re-run failed", () => startRun({ task_id: rootId, rerun: "failed" }), !unfinished && (statuses.has("failed") || statuses.has("cancelled")) && !running),
      button("copy-tree", "Copy", copyTree, true),
      button("refresh", "Refresh", refetch, true),
    );
  }

  async function act(kind, params) {
    try {
      await rpc(`tasks.${kind}`, params);
      flash(kind === "cancel" ? "Cancellation requested." : "Done.");
    } catch (error) {
      flash(error.message, "error");
    }
    refetch();
  }

  async function copyTree() {
    try {
      const copy = await rpc("tasks.copy", { task_id: rootId });
      flash("Copied: the copy is pending until you run it.");
      location.hash = `#/tree/${encodeURIComponent(copy.id)}`;
    } catch (error) {
      flash(error.message, "error");
    }
  }

  /** Start a run (tasks.execute answers when it ends) and follow it as soon as it begins. */
  function startRun(params) {
    running++;
    seen.clear();
    drawActions();
    const done = rpc("tasks.execute", params)
      .then((result) => flash(`Run finished: ${result.status}.`))
      .catch((error) => flash(error.message, "error"))
      .finally(() => {
        running--;
        refetch();
      });
    let finished = false;
    done.finally(() => (finished = true));
    const follow = async () => {
      if (left) return;
      await refetch();
      if (!TERMINAL.has(root()?.status)) watch();
      else if (!finished) setTimeout(follow, 200);
    };
    if (live.dataset.state !== "open") setTimeout(follow, 100);
  }

  function onEvent(event) {
    const line = el("li", { "data-kind": event.kind, "data-task-id": event.task_id, "data-status": event.status }, el("time", {}, new Date((event.timestamp || Date.now() / 1000) * 1000).toLocaleTimeString()), " ", describeEvent(event, new Map(tasks.map((t) => [t.id, t.name]))));
    activity.append(line);
    const task = byId().get(event.task_id);
    if (task && event.kind !== "tree_finished" && event.kind !== "tree_started") {
      if (event.status) task.status = event.status;
      if (event.kind === "task_status") seen.set(task.id, event.status);
      if (event.kind === "task_progress" || event.status === "completed") task.progress = event.status === "completed" ? 1 : event.progress;
      if (event.result !== null && event.result !== undefined) task.result = event.result;
      if (event.error) task.error = event.error;
      draw();
    }
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(refetch, event.final ? 0 : 250);
  }

  function watch() {
    if (left || !rootId) return;
    clearTimeout(reconnectTimer);
    if (stopWatch) stopWatch();
    stopWatch = watchTree(rootId, onEvent, (state) => {
      live.dataset.state = state;
      live.textContent = { connecting: "connecting", open: "live", closed: "not live", denied: "no access" }[state];
      if (state === "open" && runRequested) {
        runRequested = false;
        startRun({ task_id: rootId });
      }
      if (state === "closed" && !left) {
        refetch().then(() => {
          if (!TERMINAL.has(root()?.status) && !left) reconnectTimer = setTimeout(watch, 1000);
        });
      }
    });
  }

  async function refetch() {
    try {
      const nested = await rpc("tasks.tree", { task_id: rootId || taskId });
      tasks = flatten(nested);
      for (const t of tasks) {
        // Stored rows may trail the event stream by a group commit: never step back.
        const heard = seen.get(t.id);
        if (heard && ((TERMINAL.has(heard) && !TERMINAL.has(t.status)) || (heard === "in_progress" && t.status === "pending"))) t.status = heard;
      }
      rootId = nested.id;
      if (!selected) selected = taskId;
      draw();
    } catch (error) {
      if (!tasks.length) replace(view, el("h1", {}, "Tree not found"), el("p", { class: "error", id: "tree-error" }, error.message), el("p", {}, el("a", { href: "#/trees" }, "‹ All trees")));
      else flash(error.message, "error");
    }
  }

  refetch().then(() => {
    if (rootId) watch();
  });
  return () => {
    left = true;
    clearTimeout(refetchTimer);
    clearTimeout(reconnectTimer);
    if (stopWatch) stopWatch();
  };
}
