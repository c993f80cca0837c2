// The one way the client talks to Rapport's REST API: JSON in and out, the access token
// on every call, one refresh when it has expired, and every error a problem+json object
// (RFC 9457) that the views show as it is.

const STORE_KEY = "rapport.tokens";

/** An API answer that was not a success: `problem` is the problem+json the server sent. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** The problem's slug: the last part of its type URN ("invalid-credentials"). */
  get slug() {
    return String(this.problem.type || "").split(":").pop();
  }
}

const listeners = new Set();
let tokens = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
let refreshing = null;

export const session = {
  /** The signed-in person's tokens (TokenPair), or null. */
  get tokens() {
    return tokens;
  },
  get userId() {
    return tokens ? tokens.user_id : null;
  },
  /** Keep the tokens of a sign-in or a refresh (in this browser only). */
  save(pair) {
    tokens = pair;
    localStorage.setItem(STORE_KEY, JSON.stringify(pair));
    listeners.forEach((fn) => fn(pair));
  },
  clear() {
    tokens = null;
    localStorage.removeItem(STORE_KEY);
    listeners.forEach((fn) => fn(null));
  },
  /** Call fn(tokens | null) whenever the person signs in or out (also in another tab). */
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

window.addEventListener("storage", (event) => {
  if (event.key !== STORE_KEY) return;
  tokens = JSON.parse(event.newValue || "null");
  listeners.forEach((fn) => fn(tokens));
});

async function refresh() {
  // One refresh at a time: concurrent calls that all met a 401 wait for the same one.
  if (!refreshing) {
    const refreshToken = tokens && tokens.refresh_token;
    refreshing = (async () => {
      if (!refreshToken) return false;
      const response = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
      if (!response.ok) {
        session.clear();
        return false;
      }
      session.save(await response.json());
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      /* fall through */
    }
  }
  return { type: "about:blank", title: response.statusText || "Error", status: response.status, detail: "" };
}

/**
 * Call the API. `body` is sent as JSON unless it is a Blob/FormData; `query` becomes the
 * query string (null and undefined values left out). Answers the parsed JSON, or null for
 * 204. Throws ApiError for every non-2xx answer, and for a network failure an ApiError of
 * status 0 ("You are offline").
 */
export async function request(method, path, { body, query, headers = {}, auth = true, retry = true } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null) continue;
      (Array.isArray(value) ? value : [value]).forEach((v) => params.append(key, String(v)));
    }
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = { method, headers: { Accept: "application/json, application/problem+json", ...headers } };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof FormData) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  if (auth && tokens) init.headers.Authorization = `Bearer ${tokens.access_token}`;
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, {
      type: "urn:rapport:problem:offline",
      title: "You are offline",
      status: 0,
      detail: "Rapport could not be reached. Check your connection and try again.",
    });
  }
  if (response.status === 401 && auth && retry && tokens && (await refresh())) {
    return request(method, path, { body, query, headers, auth, retry: false });
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response;
}

export const api = {
  get: (path, query, options = {}) => request("GET", path, { ...options, query }),
  post: (path, body, options = {}) => request("POST", path, { ...options, body }),
  put: (path, body, options = {}) => request("PUT", path, { ...options, body }),
  patch: (path, body, options = {}) => request("PATCH", path, { ...options, body }),
  del: (path, options = {}) => request("DELETE", path, options),
  /**
   * Every item of a paginated list (`{items, next}`), following `next` cursors, up to
   * `max` items: for the short lists a screen shows whole (contacts, sessions, blocks).
   */
  async all(path, query = {}, { max = 1000 } = {}) {
    const items = [];
    let cursor = null;
    do {
      const page = await request("GET", path, { query: { limit: 200, ...query, cursor } });
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < max);
    return items;
  },
};

/** What this browser calls itself when it signs in: its sessions list shows it. */
export function device() {
  const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "";
  return { device_type: "web", device_name: `Web browser${platform ? ` on ${platform}` : ""}`.slice(0, 100) };
}
