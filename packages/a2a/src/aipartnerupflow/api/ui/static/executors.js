// Installed executors (the agent card's skills) with their input schemas, and a form made
// from each schema that creates and runs a one-task tree.
import { agentCard, rpc } from "./api.js";
import { el, pretty, replace } from "./dom.js";

/** The task an executor skill's first example describes (its schemas), or null. */
function exampleTask(skill) {
  try {
    const example = JSON.parse(skill.examples?.[0] || "null");
    return example?.tasks?.[0] || null;
  } catch {
    return null;
  }
}

function fieldFor(name, schema, required) {
  const id = `field-${name.replace(/\W+/g, "-")}`;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  const label = el("label", { for: id }, name, required ? el("span", { class: "required", title: "required" }, " *") : null);
  const hint = schema.description ? el("small", { class: "muted" }, schema.description) : null;
  let input;
  let read;
  if (Array.isArray(schema.enum)) {
    input = el("select", { id, name }, required ? null : el("option", { value: "" }, "—"), schema.enum.map((v) => el("option", { value: JSON.stringify(v) }, String(v))));
    read = () => (input.value === "" ? undefined : JSON.parse(input.value));
  } else if (type === "boolean") {
    input = el("input", { id, name, type: "checkbox", checked: schema.default === true });
    read = () => input.checked;
  } else if (type === "integer" || type === "number") {
    input = el("input", { id, name, type: "number", step: type === "integer" ? "1" : "any", value: schema.default ?? "", min: schema.minimum, max: schema.maximum, required });
    read = () => (input.value === "" ? undefined : Number(input.value));
  } else if (type === "string") {
    input = el("input", { id, name, type: "text", value: schema.default ?? "", required, maxlength: schema.maxLength });
    read = () => (input.value === "" ? undefined : input.value);
  } else {
    input = el("textarea", { id, name, rows: 3, spellcheck: "false", placeholder: "JSON", required }, schema.default !== undefined ? JSON.stringify(schema.default, null, 2) : "");
    read = () => {
      if (input.value.trim() === "") return undefined;
      try {
        return JSON.parse(input.value);
      } catch (error) {
        throw new Error(`${name}: not valid JSON (${error.message})`);
      }
    };
  }
  return { node: el("div", { class: "field" }, label, input, hint), read };
}

function runForm(skill, task, flash) {
  const schema = task?.schemas?.input_schema;
  const properties = schema && typeof schema === "object" ? schema.properties || {} : {};
  const required = new Set(schema?.required || []);
  const nameField = fieldFor("task name", { type: "string", default: `${skill.id} task` }, true);
  const fields = Object.entries(properties).map(([name, sub]) => [name, fieldFor(name, sub || {}, required.has(name))]);
  const raw = !schema ? fieldFor("inputs", { type: "object", description: "This executor does not describe its inputs: give them as JSON." }, false) : null;
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "run-form", "data-executor": skill.id }, nameField.node, fields.map(([, f]) => f.node), raw?.node, el("button", { type: "submit" }, "Create and run"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const inputs = raw ? raw.read() || {} : {};
      for (const [name, f] of fields) {
        const value = f.read();
        if (value !== undefined) inputs[name] = value;
      }
      const created = await rpc("tasks.create", { tasks: [{ name: nameField.read() || `${skill.id} task`, schemas: { method: skill.id }, inputs }] });
      flash(`Created ${created.id}; running it.`);
      location.hash = `#/tree/${encodeURIComponent(created.id)}?run=1`;
    } catch (problem) {
      const details = Array.isArray(problem.data) ? ` (${problem.data.join("; ")})` : "";
      error.textContent = problem.message + details;
    }
  });
  return form;
}

export function renderExecutors({ view, flash }) {
  const list = el("div", { class: "executors", id: "executors" }, el("p", { class: "muted" }, "Loading…"));
  replace(view, el("h1", {}, "Executors"), list);
  let left = false;
  agentCard()
    .then((card) => {
      if (left) return;
      const skills = (card.skills || []).filter((s) => (s.tags || []).includes("executor"));
      if (!skills.length) {
        replace(list, el("p", { class: "muted" }, "No executors are installed."));
        return;
      }
      replace(
        list,
        skills.map((skill) => {
          const task = exampleTask(skill);
          const dangerous = (skill.tags || []).includes("dangerous");
          const schema = task?.schemas?.input_schema;
          return el(
            "details",
            { class: "executor", "data-executor": skill.id },
            el("summary", {}, el("strong", {}, skill.name), " ", el("span", { class: "mono muted" }, skill.id), dangerous ? el("span", { class: "badge danger" }, "dangerous") : null),
            el("p", {}, skill.description),
            el("h3", {}, "Input schema"),
            el("pre", { class: "schema" }, schema ? pretty(schema) : "not described"),
            el("h3", {}, "Run it"),
            runForm(skill, task, flash),
          );
        }),
      );
    })
    .catch((error) => replace(list, el("p", { class: "error" }, error.message)));
  return () => (left = true);
}
