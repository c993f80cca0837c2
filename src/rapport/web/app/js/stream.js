// The live stream (WebSocket /v1/stream, docs/REALTIME.md): one per tab while signed in.
// Interface the views use (the implementation resumes from the last position):
//   stream.start() / stream.stop()
//   stream.on(type, fn) -> unsubscribe   type: an event type ("message.created"), or
//       "typing", "presence", "status" (connection state changes), "resync"
//       an event's listener is called with (event, position); the others with the frame
//       ("status": with the new state)
//   stream.send(frame) -> Promise of the ack body (frames with a ref), docs/REALTIME.md;
//       "typing", "presence" and "pong" frames have no ack: resolved once written
//   stream.state: "offline" | "connecting" | "live"
//
// The position is kept in sessionStorage, per tab and person: a reload resumes where the
// tab was, so nothing is missed, and events at or before it are dropped, so nothing comes
// twice. The connection's state is written into p#connection for everyone to see.

import { ApiError, api, session } from "./api.js";

const POSITION_PREFIX = "rapport.stream.position.";
const ACK_TIMEOUT_MS = 15000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const NO_ACK = new Set(["typing", "presence", "pong"]);

const listeners = new Map();
const pending = new Map();
let socket = null;
let running = false;
let attempts = 0;
let everLive = false;
let refreshTried = false;
let retryTimer = null;
let refCounter = 0;

function offlineError() {
  return new ApiError(0, {
    type: "urn:rapport:problem:offline",
    title: "You are offline",
    status: 0,
    detail: "The live connection to Rapport is down; it reconnects by itself.",
  });
}

function positionKey() {
  return POSITION_PREFIX + (session.userId || "anonymous");
}

function storedPosition() {
  const raw = sessionStorage.getItem(positionKey());
  return raw !== null && /^\d+$/.test(raw) ? raw : null;
}

// Positions can pass 2^53: they stay strings and are compared as BigInt.
function isAfter(position, than) {
  if (than === null) return true;
  try {
    return BigInt(position) > BigInt(than);
  } catch {
    return true;
  }
}

function remember(position) {
  if (position === undefined || position === null) return;
  const text = String(position);
  if (isAfter(text, storedPosition())) sessionStorage.setItem(positionKey(), text);
}

function emit(type, ...args) {
  for (const fn of [...(listeners.get(type) || [])]) {
    try {
      fn(...args);
    } catch (error) {
      console.error(error);
    }
  }
}

const STATUS_TEXT = {
  offline: "Offline — reconnecting…",
  reconnecting: "Reconnecting…",
  connecting: "Connecting…",
  live: "",
};

function setState(state) {
  const shown = state === "connecting" && everLive ? "reconnecting" : state;
  const line = document.getElementById("connection");
  if (line) line.textContent = running ? STATUS_TEXT[shown] : "";
  if (stream.state === state) return;
  stream.state = state;
  emit("status", state);
}

function rejectPending() {
  for (const [ref, entry] of pending) {
    clearTimeout(entry.timer);
    entry.reject(offlineError());
    pending.delete(ref);
  }
}

function scheduleReconnect(delay) {
  clearTimeout(retryTimer);
  if (!running) return;
  const wait = delay !== undefined ? delay : BACKOFF_MS[Math.min(attempts, BACKOFF_MS.length - 1)];
  attempts += 1;
  // A little jitter, so the tabs of a restarted server do not all come back at once.
  retryTimer = setTimeout(connect, wait + Math.floor(Math.random() * wait * 0.3));
}

function handle(frame) {
  switch (frame.type) {
    case "ready":
      attempts = 0;
      refreshTried = false;
      remember(frame.position);
      break;
    case "event":
      if (!isAfter(String(frame.position), storedPosition())) return;
      remember(frame.position);
      emit(frame.event.type, frame.event, String(frame.position));
      emit("*", frame.event, String(frame.position));
      break;
    case "caught_up":
      remember(frame.position);
      everLive = true;
      setState("live");
      break;
    case "resync":
      // What was missed is gone from the outbox: follow from P, and the views reload.
      sessionStorage.setItem(positionKey(), String(frame.position));
      emit("resync", frame);
      break;
    case "typing":
    case "presence":
      emit(frame.type, frame);
      break;
    case "ack": {
      const entry = pending.get(frame.ref);
      if (!entry) return;
      pending.delete(frame.ref);
      clearTimeout(entry.timer);
      entry.resolve(frame.body);
      break;
    }
    case "error": {
      const problem = frame.problem || {};
      const entry = frame.ref !== null && frame.ref !== undefined ? pending.get(frame.ref) : null;
      if (entry) {
        pending.delete(frame.ref);
        clearTimeout(entry.timer);
        entry.reject(new ApiError(problem.status || 400, problem));
      } else if (String(problem.type || "").endsWith("invalid-position")) {
        // A position this server cannot follow from: start again from now, views reload.
        sessionStorage.removeItem(positionKey());
      }
      break;
    }
    case "ping":
      write({ type: "pong" });
      break;
    default:
      break;
  }
}

function write(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

async function afterAuthFailure() {
  // The access token may just have expired: one cheap authenticated call refreshes it
  // (api.js), then the socket tries again. A second failure in a row ends it: the
  // session no longer holds, and api.js has signed the person out.
  if (refreshTried) {
    setState("offline");
    return;
  }
  refreshTried = true;
  try {
    await api.get("/v1/auth/me");
    scheduleReconnect(0);
  } catch (error) {
    if (error instanceof ApiError && error.status === 0) scheduleReconnect();
    else setState("offline");
  }
}

function connect() {
  clearTimeout(retryTimer);
  if (!running || !session.tokens) return;
  if (socket && socket.readyState <= WebSocket.OPEN) return;
  if (!navigator.onLine) {
    setState("offline");
    return;
  }
  // While offline the line keeps saying so until the stream is live again.
  if (stream.state !== "offline") setState("connecting");
  const since = storedPosition();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/v1/stream${since !== null ? `?since=${since}` : ""}`;
  let opened;
  try {
    opened = new WebSocket(url, ["rapport.v1", `rapport.bearer.${session.tokens.access_token}`]);
  } catch {
    setState("offline");
    scheduleReconnect();
    return;
  }
  socket = opened;
  opened.addEventListener("message", (message) => {
    if (socket !== opened) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    handle(frame);
  });
  opened.addEventListener("close", (closed) => {
    if (socket !== opened) return;
    socket = null;
    rejectPending();
    if (!running) return;
    switch (closed.code) {
      case 4401:
      case 4000:
        setState("offline");
        afterAuthFailure();
        break;
      case 4429: // after a resync frame: follow again at once from its position
      case 4400:
        setState("connecting");
        scheduleReconnect(0);
        break;
      default:
        // A first drop is "Reconnecting…"; once a try has failed too, the person is offline.
        setState(attempts >= 1 || !navigator.onLine ? "offline" : "connecting");
        scheduleReconnect();
    }
  });
}

function onOnline() {
  attempts = 0;
  connect();
}

function onOffline() {
  // The browser knows before the socket does: close it, say so, and reconnect (from the
  // last position) when the network is back.
  setState("offline");
  if (socket) {
    const closing = socket;
    socket = null;
    rejectPending();
    closing.close();
  }
}

export const stream = {
  state: "offline",

  start() {
    if (running) {
      connect();
      return;
    }
    running = true;
    attempts = 0;
    refreshTried = false;
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    setState(navigator.onLine ? "connecting" : "offline");
    connect();
  },

  stop() {
    running = false;
    clearTimeout(retryTimer);
    window.removeEventListener("online", onOnline);
    window.removeEventListener("offline", onOffline);
    if (socket) {
      const closing = socket;
      socket = null;
      closing.close(1000);
    }
    rejectPending();
    everLive = false;
    setState("offline");
    const line = document.getElementById("connection");
    if (line) line.textContent = "";
  },

  on(type, fn) {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
    return () => listeners.get(type).delete(fn);
  },

  send(frame) {
    if (NO_ACK.has(frame.type)) {
      return write(frame) ? Promise.resolve(undefined) : Promise.reject(offlineError());
    }
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(offlineError());
    refCounter += 1;
    const ref = frame.ref || `r${Date.now().toString(36)}${refCounter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(ref);
        reject(offlineError());
      }, ACK_TIMEOUT_MS);
      pending.set(ref, { resolve, reject, timer });
      write({ ...frame, ref });
    });
  },
};
