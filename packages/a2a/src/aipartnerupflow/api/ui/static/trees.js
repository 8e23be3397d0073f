// The trees list: counts per status, status filter, search by name or id, owner (admins),
// sorting and paging, all answered by tasks.page and tasks.count.
import { rpc } from "./api.js";
import { badge, duration, el, replace, seconds, STATUSES, when } from "./dom.js";

const PAGE_SIZES = [25, 50, 100, 250, 1000];

function readState(params) {
  const size = Number(params.get("size"));
  return {
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    search: params.get("search") || "",
    user: params.get("user") || "",
    order: params.get("order") === "oldest" ? "oldest" : "newest",
    size: PAGE_SIZES.includes(size) ? size : 50,
    page: Math.max(0, Number.parseInt(params.get("page") || "0", 10) || 0),
  };
}

function writeState(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== "" && !(key === "page" && value === 0)) params.set(key, String(value));
  }
  history.replaceState(null, "", `#/trees?${params}`);
}

export function renderTrees({ view, session, params, flash }) {
  const state = readState(params);
  let generation = 0;
  const chips = el("div", { class: "chips", role: "group", "aria-label": "status" });
  const search = el("input", {
    type: "search",
    id: "tree-search",
    placeholder: "Search name or id",
    value: state.search,
    "aria-label": "search",
  });
  const owner = el("input", {
    type: "text",
    id: "tree-owner",
    placeholder: "Owner (all)",
    value: state.user,
    "aria-label": "owner",
  });
  const order = el(
    "select",
    { id: "tree-order", "aria-label": "order" },
    el("option", { value: "newest" }, "Newest first"),
    el("option", { value: "oldest" }, "Oldest first"),
  );
  order.value = state.order;
  const size = el("select", { id: "tree-size", "aria-label": "page size" }, PAGE_SIZES.map((n) => el("option", { value: n }, `${n} per page`)));
  size.value = String(state.size);
  const body = el("tbody", { id: "trees-body" });
  const pager = el("div", { class: "pager", id: "pager" });
  const headings = ["Name", "Id", "Status", session.admin ? "Owner" : null, "Progress", "Created", "Duration"].filter(Boolean);
  const table = el("table", { class: "trees" }, el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))), body);

  replace(
    view,
    el("h1", {}, "Task trees"),
    chips,
    el("div", { class: "filters" }, search, session.admin ? owner : null, order, size),
    table,
    pager,
  );

  async function load() {
    const mine = ++generation;
    const started = performance.now();
    writeState(state);
    const filters = { root_only: true };
    if (state.search) filters.search = state.search;
    if (session.admin && state.user) filters.user_id = state.user;
    view.dataset.loading = "true";
    let page;
    let counts;
    try {
      [page, counts] = await Promise.all([
        rpc("tasks.page", {
          ...filters,
          ...(state.status ? { status: state.status } : {}),
          order: state.order,
          limit: state.size,
          offset: state.page * state.size,
        }),
        rpc("tasks.count", filters),
      ]);
    } catch (error) {
      if (mine === generation) {
        flash(error.message, "error");
        view.dataset.loading = "false";
      }
      return;
    }
    if (mine !== generation) return;
    drawChips(counts);
    drawRows(page.tasks);
    drawPager(state.status ? counts[state.status] || 0 : counts.total || 0, page.next_cursor !== null);
    view.dataset.loading = "false";
    view.dataset.renderMs = String(Math.round(performance.now() - started));
    view.dataset.rows = String(page.tasks.length);
  }

  function drawChips(counts) {
    const entries = [["", "all", counts.total || 0], ...STATUSES.map((s) => [s, s.replace("_", " "), counts[s] || 0])];
    replace(
      chips,
      entries.map(([value, label, count]) =>
        el(
          "button",
          {
            type: "button",
            class: `chip${value === state.status ? " active" : ""}${value ? ` status-${value}` : ""}`,
            "data-status": value || "all",
            "aria-pressed": String(value === state.status),
            onclick: () => {
              state.status = value;
              state.page = 0;
              load();
            },
          },
          `${label} `,
          el("span", { class: "count" }, String(count)),
        ),
      ),
    );
  }

  function drawRows(tasks) {
    const rows = document.createDocumentFragment();
    for (const task of tasks) {
      const link = el("a", { href: `#/tree/${encodeURIComponent(task.id)}` }, task.name || task.id);
      rows.append(
        el(
          "tr",
          { "data-id": task.id },
          el("td", {}, link),
          el("td", { class: "mono" }, task.id),
          el("td", {}, badge(task.status)),
          session.admin ? el("td", {}, task.user_id || "—") : null,
          el("td", {}, `${Math.round((task.progress || 0) * 100)}%`),
          el("td", {}, when(task.created_at)),
          el("td", {}, duration(seconds(task.started_at, task.completed_at))),
        ),
      );
    }
    if (!tasks.length) {
      rows.append(el("tr", {}, el("td", { colspan: headings.length, class: "empty" }, "No trees match.")));
    }
    body.replaceChildren(rows);
  }

  function drawPager(total, more) {
    const pages = Math.max(1, Math.ceil(total / state.size));
    replace(
      pager,
      el("button", { type: "button", id: "prev-page", disabled: state.page === 0, onclick: () => { state.page -= 1; load(); } }, "‹ Previous"),
      el("span", { id: "page-info" }, `Page ${state.page + 1} of ${pages} · ${total} trees`),
      el("button", { type: "button", id: "next-page", disabled: !more, onclick: () => { state.page += 1; load(); } }, "Next ›"),
    );
  }

  let typing;
  const refilter = () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.search = search.value.trim();
      state.user = owner.value.trim();
      state.page = 0;
      load();
    }, 250);
  };
  search.addEventListener("input", refilter);
  owner.addEventListener("input", refilter);
  order.addEventListener("change", () => { state.order = order.value; state.page = 0; load(); });
  size.addEventListener("change", () => { state.size = Number(size.value); state.page = 0; load(); });
  load();
  return () => { generation++; clearTimeout(typing); };
}
