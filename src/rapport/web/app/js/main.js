// The client's shell: a hash router (#/chats/…) so that any path works without the server
// knowing the client's routes, the navigation, and the stream started once signed in.
// Each view module exports `render(main, params)` that fills <main> and may answer a
// cleanup function, called when the person leaves the view.

import { api, session } from "./api.js";
import { stream } from "./stream.js";
import { h, clearAlerts, applyTheme, showError } from "./ui.js";

// route pattern → [module path, whether it needs a signed-in person]
const ROUTES = [
  ["/login", "./views/auth.js", false],
  ["/register", "./views/auth.js", false],
  ["/verify", "./views/auth.js", false],
  ["/chats", "./views/chats.js", true],
  ["/chats/:id", "./views/conversation.js", true],
  ["/people", "./views/people.js", true],
  ["/account", "./views/account.js", true],
];

let cleanup = null;
// Each navigation's number: a slow view that finishes after the person went elsewhere
// must not fill the page of the view that replaced it.
let navigation = 0;

function match(path) {
  for (const [pattern, module, needsSession] of ROUTES) {
    const names = [];
    const regex = new RegExp(
      "^" + pattern.replace(/:(\w+)/g, (_, name) => (names.push(name), "([^/]+)")) + "$",
    );
    const found = path.match(regex);
    if (found) {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
      return { pattern, module, needsSession, params };
    }
  }
  return null;
}

function renderNav() {
  const nav = document.getElementById("nav");
  if (!session.tokens) {
    nav.replaceChildren(
      h("a", { href: "#/login" }, "Sign in"),
      h("a", { href: "#/register" }, "Create an account"),
    );
  } else {
    nav.replaceChildren(
      h("a", { href: "#/chats" }, "Chats"),
      h("a", { href: "#/people" }, "People"),
      h("a", { href: "#/account" }, "Account"),
    );
  }
  const current = location.hash.replace(/^#/, "") || "/";
  for (const link of nav.querySelectorAll("a")) {
    if (current.startsWith(link.getAttribute("href").slice(1))) link.setAttribute("aria-current", "page");
  }
}

export function go(path) {
  if (location.hash !== "#" + path) location.hash = path;
  else route();
}

/** The view's heading takes the focus, so that a screen reader starts reading the new view there. */
function focusView(main) {
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Rapport` : "Rapport";
  const target = heading || main;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: false });
}

async function route() {
  const hash = location.hash;
  // Only "#/…" is a route: any other fragment is an anchor in the page.
  if (hash && !hash.startsWith("#/")) return;
  const path = hash.replace(/^#/, "") || "/";
  const found = match(path);
  if (!found || (found.needsSession && !session.tokens)) {
    go(session.tokens ? "/chats" : "/login");
    return;
  }
  if (!found.needsSession && session.tokens) {
    go("/chats");
    return;
  }
  const mine = ++navigation;
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  clearAlerts();
  renderNav();
  const main = document.getElementById("main");
  main.replaceChildren();
  let done;
  try {
    const view = await import(found.module);
    if (mine !== navigation) return;
    done = await view.render(main, { ...found.params, route: found.pattern });
  } catch (error) {
    if (mine !== navigation) return;
    main.replaceChildren(h("h1", {}, "This screen could not be shown"));
    showError(error);
  }
  if (mine !== navigation) {
    if (typeof done === "function") done();
    return;
  }
  cleanup = done;
  focusView(main);
}

async function loadTheme() {
  try {
    const settings = await api.get("/v1/settings");
    applyTheme(settings.theme);
  } catch {
    /* the theme kept from last time stays */
  }
}

function signedIn() {
  stream.start();
  loadTheme();
}

// Only a change between signed in and signed out moves the person: a refresh of the
// tokens (session.save with new ones) leaves the view as it is.
let wasSignedIn = Boolean(session.tokens);
session.onChange((tokens) => {
  const now = Boolean(tokens);
  if (now === wasSignedIn) return;
  wasSignedIn = now;
  if (now) signedIn();
  else {
    stream.stop();
    // The theme was the person's choice; the next one starts from the system's.
    applyTheme("system");
  }
  route();
});

// The skip link moves the focus without touching the route in the fragment.
document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

window.addEventListener("hashchange", route);

applyTheme(localStorage.getItem("rapport.theme"));
if (session.tokens) signedIn();
route();

// The service worker: the shell offline, and Web Push. A click on a notification asks
// the open client to show where it leads.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* without it the client works, only not offline */
  });
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === "open" && typeof data.hash === "string" && data.hash.startsWith("#/")) {
      location.hash = data.hash;
    }
  });
}
