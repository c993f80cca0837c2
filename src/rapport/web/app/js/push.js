// Web Push for this browser: the subscription the service worker receives pushes on,
// registered with Rapport (POST /v1/push-subscriptions) and forgotten on sign-out, so that
// the next person signing in here gets none of the previous one's notifications.

import { api } from "./api.js";

/** Why push cannot work here, or null when it can (the server may still have no key). */
export function unsupported() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return "This browser does not support push notifications.";
  }
  if (!window.isSecureContext) return "Push notifications need a secure (https) connection.";
  return null;
}

async function registration() {
  return navigator.serviceWorker.ready;
}

/** The browser's current push subscription, or null. */
export async function current() {
  if (unsupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration("/");
  return reg ? reg.pushManager.getSubscription() : null;
}

function keyBytes(base64url) {
  const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/**
 * Ask for permission, subscribe with the server's VAPID key and register the
 * subscription. Throws an Error whose message says why when it cannot.
 */
export async function enable() {
  const reason = unsupported();
  if (reason) throw new Error(reason);
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error("Notifications are blocked for this site: allow them in the browser's site settings.");
  }
  const { public_key: publicKey } = await api.get("/v1/push/vapid-public-key", undefined, { auth: false });
  const reg = await registration();
  let subscription = await reg.pushManager.getSubscription();
  if (!subscription) {
    subscription = await reg.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(publicKey),
    });
  }
  return api.post("/v1/push-subscriptions", subscription.toJSON());
}

/** Forget this browser's subscription, at Rapport and in the browser. */
export async function disable() {
  const subscription = await current();
  if (!subscription) return;
  const mine = await api.all("/v1/push-subscriptions");
  for (const item of mine.filter((each) => each.endpoint === subscription.endpoint)) {
    await api.del(`/v1/push-subscriptions/${item.id}`);
  }
  await subscription.unsubscribe();
}

/** Whether this browser's subscription is registered for the signed-in person. */
export async function enabled() {
  const subscription = await current();
  if (!subscription) return false;
  const mine = await api.all("/v1/push-subscriptions");
  return mine.some((each) => each.endpoint === subscription.endpoint && each.is_active);
}
