// The server API the dashboard uses: /tasks JSON-RPC, the tree WebSocket, the agent card,
// and the login endpoints. The login lives in an HttpOnly cookie this code never sees.

const UI_HEADER = "x-apflow-ui";
let nextId = 1;

/** An error answer of the API, with its JSON-RPC code (or HTTP status). */
export class ApiError extends Error {
  constructor(message, code, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/** Handlers told when the login has gone (HTTP 401). */
const unauthorizedHandlers = [];
export function onUnauthorized(handler) {
  unauthorizedHandlers.push(handler);
}

async function send(path, init) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...init,
    headers: { [UI_HEADER]: "1", ...(init.headers || {}) },
  });
  if (response.status === 401) {
    unauthorizedHandlers.forEach((handler) => handler());
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { response, body };
}

/** Call a /tasks JSON-RPC method; its result, or an ApiError. */
export async function rpc(method, params = {}) {
  const id = nextId++;
  const { response, body } = await send("/tasks", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
  });
  if (!response.ok) {
    throw new ApiError(body?.message || `HTTP ${response.status}`, response.status);
  }
  if (body?.error) throw new ApiError(body.error.message, body.error.code, body.error.data);
  return body?.result;
}

/** Who is logged in: {auth, user_id, admin}, or null when nobody is. */
export async function session() {
  const { response, body } = await send("/ui/session", { method: "GET" });
  return response.ok ? body : null;
}

/** Log in with a bearer token; the session, or an ApiError saying why not. */
export async function login(token) {
  const { response, body } = await send("/ui/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (!response.ok) throw new ApiError(body?.message || `HTTP ${response.status}`, response.status);
  return body;
}

export async function logout() {
  await send("/ui/logout", { method: "POST" });
}

/** The agent card (public): one skill per installed executor. */
export async function agentCard() {
  const response = await fetch("/.well-known/agent-card.json", { credentials: "same-origin" });
  if (!response.ok) throw new ApiError(`agent card: HTTP ${response.status}`, response.status);
  return response.json();
}

/**
 * Follow a tree's events over the WebSocket. `onEvent(event)` gets each event in order,
 * `onState(state)` gets "connecting" | "open" | "closed" | "denied". Returns a stop function.
 */
export function watchTree(rootId, onEvent, onState) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws/trees/${encodeURIComponent(rootId)}`);
  let stopped = false;
  onState("connecting");
  socket.addEventListener("open", () => onState("open"));
  socket.addEventListener("message", (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch (error) {
      console.error("bad event", error);
    }
  });
  socket.addEventListener("close", (close) => {
    if (!stopped) onState(close.code === 4401 || close.code === 4404 ? "denied" : "closed");
  });
  return () => {
    stopped = true;
    socket.close();
  };
}
