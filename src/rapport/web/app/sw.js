// Rapport's service worker (served at /sw.js, scope /): the client's shell for starting
// offline, and Web Push notifications.
//
// The shell (/, /app/*, the manifest) is fetched from the network first and kept in the
// cache, which answers only when the network does not: a new version shows at once, and
// the last one seen starts without a connection. Nothing else is ever cached: not the API
// (/v1/…), whose answers belong to one person and one moment, nor the docs or media.

const CACHE = "rapport-shell-v1";
const SHELL = [
  "/",
  "/manifest.webmanifest",
  "/app/app.css",
  "/app/chat.css",
  "/app/icons/icon.svg",
  "/app/icons/icon-192.png",
  "/app/js/main.js",
  "/app/js/api.js",
  "/app/js/ui.js",
  "/app/js/stream.js",
  "/app/js/push.js",
  "/app/js/views/auth.js",
  "/app/js/views/account.js",
  "/app/js/views/people.js",
  "/app/js/views/chats.js",
  "/app/js/views/conversation.js",
];

self.addEventListener("install", (event) => {
  // One file missing must not keep the worker from installing: each is cached on its own.
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => Promise.allSettled(SHELL.map((path) => cache.add(new Request(path, { cache: "no-cache" })))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return url.pathname === "/" || url.pathname === "/manifest.webmanifest" || url.pathname.startsWith("/app/");
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached =
      (await cache.match(request, { ignoreSearch: true })) ||
      (request.mode === "navigate" && (await cache.match("/")));
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !isShell(url)) return;
  event.respondWith(networkFirst(request));
});

// --- Web Push -------------------------------------------------------------------------------
// Rapport's payload (rapport.notifications._webpush.payload): {title, body, url, tag, data},
// `url` a path of the API's terms ("/conversations/<id>", "/contacts/requests",
// "/settings/security"), which this client shows at its own routes.

function clientRoute(url) {
  const path = typeof url === "string" ? url : "";
  const conversation = path.match(/^\/conversations\/([0-9a-fA-F-]{32,36})/);
  if (conversation) return `#/chats/${conversation[1]}`;
  if (path.startsWith("/contacts")) return "#/people";
  if (path.startsWith("/settings")) return "#/account";
  return "#/chats";
}

self.addEventListener("push", (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { body: event.data ? event.data.text() : "" };
  }
  const options = {
    body: payload.body || "",
    icon: "/app/icons/icon-192.png",
    badge: "/app/icons/icon-192.png",
    data: { hash: clientRoute(payload.url), ...(payload.data || {}) },
  };
  // One notification per tag (a conversation's messages): the newest replaces the last.
  if (payload.tag) Object.assign(options, { tag: payload.tag, renotify: true });
  event.waitUntil(self.registration.showNotification(payload.title || "Rapport", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const hash = (event.notification.data && event.notification.data.hash) || "#/chats";
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
      if (open) {
        await open.focus();
        open.postMessage({ type: "open", hash });
        return;
      }
      await self.clients.openWindow(`/${hash}`);
    })(),
  );
});
