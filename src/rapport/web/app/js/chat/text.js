// How messages read in lists: a one-line preview, and a search hit's snippet turned into
// text and <mark> elements (the snippet is HTML; it never reaches innerHTML).

import { h } from "../ui.js";

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'", "#x27": "'" };

function unescape(text) {
  return text.replace(/&(#?\w+);/g, (whole, name) => {
    if (ENTITIES[name] !== undefined) return ENTITIES[name];
    if (/^#\d+$/.test(name)) return String.fromCodePoint(Number(name.slice(1)));
    if (/^#x[0-9a-f]+$/i.test(name)) return String.fromCodePoint(parseInt(name.slice(2), 16));
    return whole;
  });
}

/** The snippet's text, with its matches in <mark>. */
export function snippetNodes(snippet) {
  const parts = String(snippet || "").split(/<(\/?)mark>/);
  // split with one group: text, slash, text, slash, …
  const nodes = [];
  let marked = false;
  for (let i = 0; i < parts.length; i += 1) {
    if (i % 2 === 1) {
      marked = parts[i] !== "/";
      continue;
    }
    const text = unescape(parts[i].replace(/<[^>]*>/g, ""));
    if (text) nodes.push(marked ? h("mark", {}, text) : text);
  }
  return nodes;
}

/** One line saying what a message is. */
export function preview(message, limit = 80) {
  if (!message) return "No messages yet";
  if (message.is_deleted) return "Message deleted";
  if (message.content_encrypted) return "Encrypted message";
  let text = (message.content || "").replace(/\s+/g, " ").trim();
  const files = message.attachments || [];
  if (!text && files.length) text = files.some((f) => f.kind === "image") ? "📷 Picture" : "📎 File";
  if (!text) text = message.type === "location" ? "📍 Location" : "Message";
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** "5 unread" as a badge: the number shown, the words for screen readers. */
export function unreadBadge(count) {
  if (!count) return null;
  return h("span", { class: "badge" }, String(count), h("span", { class: "visually-hidden" }, " unread"));
}
