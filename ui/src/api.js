// Every call to the REST API goes through here: JSON in and out, the CSRF header on state
// changes, and a 401 (authentication on) sends the user to the login page.
import { reactive } from "vue";
import { router } from "./router.js";

const BASE = "/api/v1";
const CSRF_KEY = "tiercel.csrf";
const USER_KEY = "tiercel.user";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Who is logged in and what they may do: `authentication` (is it on), `user` (null when nobody
 * is logged in, or authentication is off) and `grants` (role per namespace prefix), from
 * `GET /auth/me`. Pages hide what the user's role does not allow; the server refuses it anyway.
 */
export const session = reactive({ user: sessionStorage.getItem(USER_KEY), authentication: false, grants: [], known: false });

export function setSession(user, csrf) {
  session.user = user;
  for (const [key, value] of [[USER_KEY, user], [CSRF_KEY, csrf]]) {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  }
}

let asking = null;

/** Ask the server who this is (once; `fresh` asks again, after a login or a logout). */
export function loadSession(fresh = false) {
  if (asking && !fresh) return asking;
  asking = api("/auth/me").then(
    (me) => {
      session.authentication = Boolean(me.authentication);
      session.grants = me.grants || [];
      session.known = true;
      setSession(me.authentication ? me.username : null, me.csrfToken || null);
      return session;
    },
    (e) => {
      asking = null;
      throw e;
    },
  );
  return asking;
}

const ROLES = ["viewer", "runner", "editor", "admin"];

/** Whether the user has *role* on *namespace* (on some namespace when none is given). */
export function can(role, namespace) {
  if (!session.authentication) return true;
  const need = ROLES.indexOf(role);
  return session.grants.some((g) => ROLES.indexOf(g.role) >= need && (namespace === undefined || !g.namespace
    || namespace === g.namespace || namespace.startsWith(g.namespace + ".")));
}

/** The strongest role the user has on *namespace* (for "your role is …" notes). */
export function roleOn(namespace) {
  if (!session.authentication) return "admin";
  const ranks = session.grants.filter((g) => !g.namespace || namespace === g.namespace || namespace.startsWith(g.namespace + "."))
    .map((g) => ROLES.indexOf(g.role));
  return ranks.length ? ROLES[Math.max(...ranks)] : "none";
}

export async function api(path, { method = "GET", json, yaml, form, params, raw } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (yaml !== undefined) {
    headers["Content-Type"] = "application/x-yaml";
    body = yaml;
  } else if (form !== undefined) {
    body = form;
  }
  if (method !== "GET") {
    const token = sessionStorage.getItem(CSRF_KEY);
    if (token) headers["X-CSRF-Token"] = token;
  }
  let url = BASE + path;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      for (const item of Array.isArray(v) ? v : [v]) if (item !== undefined && item !== null && item !== "") q.append(k, item);
    }
    if ([...q].length) url += "?" + q;
  }
  const res = await fetch(url, { method, headers, body, credentials: "same-origin" });
  if (res.status === 401 && !path.startsWith("/auth/")) {
    const next = router.currentRoute.value.fullPath;
    setSession(null, null);
    if (router.currentRoute.value.name !== "login") router.push({ name: "login", query: { next } });
    throw new ApiError(401, { message: "login required" });
  }
  if (raw) return res;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Server-sent events that reconnect after a dropped connection (the caller de-duplicates by id). */
export function follow(path, handlers) {
  let source;
  let closed = false;
  const open = () => {
    source = new EventSource(BASE + path);
    for (const [event, fn] of Object.entries(handlers)) {
      source.addEventListener(event, (e) => fn(JSON.parse(e.data), e));
    }
    source.addEventListener("end", () => close());
    source.onerror = () => {
      if (closed) return;
      source.close();
      setTimeout(() => !closed && open(), 500);
    };
  };
  const close = () => {
    closed = true;
    source && source.close();
  };
  open();
  return close;
}

/** The address of a file of an execution (a `tiercel://` URI), as a download. */
export function fileUrl(executionId, uri) {
  return `${BASE}/executions/${encodeURIComponent(executionId)}/file?path=${encodeURIComponent(uri)}`;
}

export const TERMINAL = ["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"];
