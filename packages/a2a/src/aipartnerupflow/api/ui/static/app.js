// The dashboard's entry: the login, the navigation and the router (#/trees, #/tree/<id>,
// #/executors).
import { login, logout, onUnauthorized, session } from "./api.js";
import { replace } from "./dom.js";
import { renderExecutors } from "./executors.js";
import { renderTree } from "./tree.js";
import { renderTrees } from "./trees.js";

const view = document.getElementById("view");
const loginSection = document.getElementById("login");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const logoutButton = document.getElementById("logout");
let current = { session: null, leave: null };

/** Show a short message at the bottom of the page. */
export function flash(text, kind = "info") {
  const box = document.getElementById("flash");
  box.textContent = text;
  box.className = `flash ${kind}`;
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (box.hidden = true), 6000);
}

function showLogin(message = "") {
  leaveView();
  current.session = null;
  view.hidden = true;
  replace(view);
  nav.hidden = true;
  logoutButton.hidden = true;
  who.textContent = "";
  loginSection.hidden = false;
  document.getElementById("login-error").textContent = message;
  document.body.dataset.page = "login";
}

function showApp(found) {
  current.session = found;
  loginSection.hidden = true;
  nav.hidden = false;
  view.hidden = false;
  logoutButton.hidden = !found.auth;
  who.textContent = found.auth ? `${found.user_id}${found.admin ? " (admin)" : ""}` : "local operator (no auth)";
  route();
}

function leaveView() {
  if (current.leave) current.leave();
  current.leave = null;
}

async function route() {
  if (!current.session) return;
  leaveView();
  const hash = location.hash || "#/trees";
  const [path, query = ""] = hash.slice(1).split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.nav === (parts[0] === "tree" ? "trees" : parts[0]));
  }
  replace(view);
  const context = { view, session: current.session, params, flash };
  let leave;
  if (parts[0] === "tree" && parts[1]) {
    document.body.dataset.page = "tree";
    leave = renderTree(context, decodeURIComponent(parts[1]));
  } else if (parts[0] === "executors") {
    document.body.dataset.page = "executors";
    leave = renderExecutors(context);
  } else {
    document.body.dataset.page = "trees";
    leave = renderTrees(context);
  }
  current.leave = leave || null;
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = document.getElementById("token");
  try {
    const found = await login(field.value.trim());
    field.value = "";
    showApp(found);
  } catch (error) {
    document.getElementById("login-error").textContent = error.message;
  }
});

logoutButton.addEventListener("click", async () => {
  await logout();
  showLogin("Logged out.");
});

onUnauthorized(() => {
  if (current.session) showLogin("Your login has expired or is no longer valid: log in again.");
});
window.addEventListener("hashchange", route);

const found = await session();
if (found) showApp(found);
else showLogin();
