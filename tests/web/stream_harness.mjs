// Drives the web client's js/stream.js in Node.js against a scripted WebSocket and fetch:
// what a browser tab would meet, without a browser. Run by test_chat_modules.py with the
// client's api.js and stream.js copied beside a package.json of "type": "module"; its
// first argument is that directory. Prints "ok <check>" for each check; any failure
// throws (exit code 1).

import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";

const directory = process.argv[2];

// ---- the browser around the module ----
class Storage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

const windowListeners = new Map();
const connection = { textContent: "" };
const sockets = [];
const calls = [];
let meAnswers = [];

class FakeSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = FakeSocket.CONNECTING;
    this.sent = [];
    this.listeners = new Map();
    sockets.push(this);
  }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }
  fire(type, event) {
    for (const fn of this.listeners.get(type) || []) fn(event);
  }
  send(data) {
    assert.equal(this.readyState, FakeSocket.OPEN, "a frame written to a socket that is not open");
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    if (this.readyState === FakeSocket.CLOSED) return;
    this.readyState = FakeSocket.CLOSED;
    this.fire("close", { code });
  }
  // what the server does
  accept() {
    this.readyState = FakeSocket.OPEN;
    this.fire("open", {});
  }
  frame(body) {
    this.fire("message", { data: JSON.stringify(body) });
  }
  drop(code) {
    this.readyState = FakeSocket.CLOSED;
    this.fire("close", { code });
  }
}
FakeSocket.CONNECTING = 0;
FakeSocket.OPEN = 1;
FakeSocket.CLOSING = 2;
FakeSocket.CLOSED = 3;

function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

globalThis.WebSocket = FakeSocket;
globalThis.localStorage = new Storage();
globalThis.sessionStorage = new Storage();
globalThis.navigator = { onLine: true };
globalThis.location = { protocol: "http:", host: "rapport.test" };
globalThis.document = { getElementById: (id) => (id === "connection" ? connection : null) };
globalThis.window = {
  addEventListener(type, fn) {
    if (!windowListeners.has(type)) windowListeners.set(type, new Set());
    windowListeners.get(type).add(fn);
  },
  removeEventListener(type, fn) {
    if (windowListeners.has(type)) windowListeners.get(type).delete(fn);
  },
};
globalThis.fetch = async (url, init = {}) => {
  calls.push({ url, authorization: (init.headers || {}).Authorization });
  if (url === "/v1/auth/refresh") {
    return json(200, { access_token: "access-2", refresh_token: "refresh-2", user_id: "user-1" });
  }
  if (url === "/v1/auth/me") return meAnswers.shift() || json(200, { id: "user-1" });
  return json(404, { type: "urn:rapport:problem:not-found", title: "Not found", status: 404 });
};

function fireWindow(type) {
  for (const fn of windowListeners.get(type) || []) fn({ type });
}

async function until(condition, what) {
  const deadline = Date.now() + 10000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function ok(name) {
  console.log(`ok ${name}`);
}

localStorage.setItem("rapport.tokens", JSON.stringify({ access_token: "access-1", refresh_token: "refresh-1", user_id: "user-1" }));
const moduleUrl = (name, query = "") => pathToFileURL(path.join(directory, name)).href + query;
const { stream } = await import(moduleUrl("stream.js"));
const { ApiError } = await import(moduleUrl("api.js"));

const received = [];
const statuses = [];
const resyncs = [];
stream.on("message.created", (event, position) => received.push([event.payload.n, position]));
stream.on("status", (state) => statuses.push(state));
stream.on("resync", (frame) => resyncs.push(frame.position));

// ---- the first connection: from now, the bearer subprotocol, live after caught_up ----
stream.start();
let socket = sockets.at(-1);
assert.equal(socket.url, "ws://rapport.test/v1/stream");
assert.deepEqual(socket.protocols, ["rapport.v1", "rapport.bearer.access-1"]);
assert.equal(connection.textContent, "Connecting…");
ok("connects with the bearer subprotocol, from now");

socket.accept();
socket.frame({ type: "ready", user_id: "user-1", position: 10 });
const created = (position, n) => ({
  type: "event",
  position,
  event: { type: "message.created", scope: { kind: "conversation", id: "c" }, payload: { n }, actor_id: null, created_at: "" },
});
socket.frame(created(11, "a"));
socket.frame(created(12, "b"));
socket.frame({ type: "caught_up", position: 12 });
assert.equal(stream.state, "live");
assert.equal(connection.textContent, "");
assert.deepEqual(received, [["a", "11"], ["b", "12"]]);
socket.frame(created(12, "b"));
socket.frame(created(11, "a"));
assert.equal(received.length, 2);
ok("dispatches each event once, in order, and says nothing once live");

socket.frame({ type: "ping" });
assert.deepEqual(socket.sent.at(-1), { type: "pong" });
ok("answers ping with pong");

// ---- frames with a ref: the ack resolves, the error frame rejects with its problem ----
const sending = stream.send({ type: "send", conversation_id: "c", message: { content: "hi" } });
const sentFrame = socket.sent.at(-1);
assert.equal(sentFrame.type, "send");
assert.ok(sentFrame.ref);
socket.frame({ type: "ack", ref: sentFrame.ref, status: 201, body: { id: "m1" } });
assert.deepEqual(await sending, { id: "m1" });
const refused = stream.send({ type: "send", conversation_id: "c", message: { content: "hi" } });
const problem = { type: "urn:rapport:problem:cannot-send", title: "Cannot send", status: 403, detail: "Blocked." };
socket.frame({ type: "error", ref: socket.sent.at(-1).ref, problem });
await assert.rejects(refused, (error) => error instanceof ApiError && error.status === 403 && error.slug === "cannot-send");
await stream.send({ type: "typing", conversation_id: "c", typing: true });
assert.deepEqual(socket.sent.at(-1), { type: "typing", conversation_id: "c", typing: true });
ok("resolves a ref by its ack, rejects it by its error frame; typing needs no ack");

// ---- a dropped connection: says so, reconnects from the last position ----
const waiting = stream.send({ type: "read", conversation_id: "c", message_id: "m1" });
socket.drop(1006);
await assert.rejects(waiting, (error) => error instanceof ApiError && error.status === 0);
assert.equal(connection.textContent, "Reconnecting…");
await until(() => sockets.length === 2, "a second socket after the drop");
socket = sockets.at(-1);
assert.equal(socket.url, "ws://rapport.test/v1/stream?since=12");
socket.accept();
socket.frame({ type: "ready", user_id: "user-1", position: 12 });
socket.frame(created(13, "c"));
socket.frame({ type: "caught_up", position: 13 });
assert.deepEqual(received.at(-1), ["c", "13"]);
assert.equal(received.length, 3);
assert.equal(connection.textContent, "");
ok("after a drop: Reconnecting…, then resumes from the last position, nothing twice");

// ---- the browser goes offline: the socket goes, the line says so; back online: resume ----
fireWindow("offline");
assert.equal(socket.readyState, FakeSocket.CLOSED);
assert.equal(connection.textContent, "Offline — reconnecting…");
assert.equal(stream.state, "offline");
fireWindow("online");
socket = sockets.at(-1);
assert.equal(sockets.length, 3);
assert.equal(socket.url, "ws://rapport.test/v1/stream?since=13");
assert.equal(connection.textContent, "Offline — reconnecting…");
socket.accept();
socket.frame({ type: "ready", user_id: "user-1", position: 13 });
socket.frame({ type: "caught_up", position: 13 });
assert.equal(connection.textContent, "");
ok("offline and back: says Offline until live again, resumes from the last position");

// ---- 4401: one refresh through an authenticated call, then the new token ----
meAnswers = [json(401, { type: "urn:rapport:problem:token-expired", title: "Expired", status: 401 })];
socket.drop(4401);
await until(() => sockets.length === 4, "a socket after the refresh");
socket = sockets.at(-1);
assert.deepEqual(socket.protocols, ["rapport.v1", "rapport.bearer.access-2"]);
assert.equal(socket.url, "ws://rapport.test/v1/stream?since=13");
assert.ok(calls.some((call) => call.url === "/v1/auth/refresh"));
ok("4401: refreshes the token once and reconnects with the new one");

// ---- resync: the views hear it, the stream follows from its position ----
socket.accept();
socket.frame({ type: "ready", user_id: "user-1", position: 13 });
socket.frame({ type: "resync", position: 40, detail: "behind" });
assert.deepEqual(resyncs, [40]);
socket.frame(created(40, "old"));
socket.frame(created(41, "d"));
assert.deepEqual(received.at(-1), ["d", "41"]);
assert.ok(!received.some(([n]) => n === "old"));
socket.drop(4429);
await until(() => sockets.length === 5, "a socket after 4429");
assert.equal(sockets.at(-1).url, "ws://rapport.test/v1/stream?since=41");
ok("resync: views told, follows from its position; 4429 reconnects at once");

// ---- a reload: a new instance of the module resumes from the kept position ----
stream.stop();
assert.equal(connection.textContent, "");
assert.equal(sockets.at(-1).readyState, FakeSocket.CLOSED);
const reloaded = (await import(moduleUrl("stream.js", "?reload"))).stream;
reloaded.start();
assert.equal(sockets.at(-1).url, "ws://rapport.test/v1/stream?since=41");
reloaded.stop();
ok("a reload resumes from the position the tab kept");
assert.ok(statuses.includes("live") && statuses.includes("offline"));
