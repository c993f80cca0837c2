// One message as a list item: who and when, the quote it replies to, its text or
// pictures, its reactions, and its actions as always-present buttons (keyboard and
// screen readers reach them like any button).
//
// Accessible names: "Reply to message", "React with 👍" (and each of QUICK_REACTIONS,
// aria-pressed when one's own), "Pin message" / "Unpin message", and on one's own
// messages "Edit message", "Delete message". A reaction's count is a button "👍 2"
// (pressed when one's own). Editing: a textarea "New text", buttons "Save", "Cancel editing".

import { h, showError, when } from "../ui.js";
import { objectUrl } from "./media.js";
import { senderName } from "./people.js";

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮"];

/**
 * ctx: { me, isPinned(id), quote(replyToId) -> Promise<{who, text}|null>,
 *        onReply(m), onEdit(m), onDelete(m), onReact(m, emoji, on), onPin(m, on) }
 */
export function renderMessage(message, ctx) {
  const mine = message.sender_id === ctx.me;
  const item = h("li", {
    class: `msg${mine ? " mine" : ""}${message.is_deleted ? " deleted" : ""}`,
    dataset: { id: message.id, seq: String(message.seq) },
  });
  const who = h("strong", { class: "sender" }, mine ? "You" : "…");
  if (!mine) senderName(message.sender_id).then((name) => (who.textContent = name));
  const head = h(
    "div",
    { class: "msg-head" },
    who,
    " ",
    h("time", { datetime: message.created_at, title: new Date(message.created_at).toLocaleString() }, when(message.created_at)),
    message.is_edited && !message.is_deleted ? h("span", { class: "muted" }, " (edited)") : null,
    ctx.isPinned(message.id) ? h("span", { class: "pin-mark" }, " 📌", h("span", { class: "visually-hidden" }, "pinned")) : null,
  );
  item.append(head);

  if (message.reply_to_id) {
    const quote = h("blockquote", { class: "quote" }, "…");
    ctx.quote(message.reply_to_id).then((found) => {
      quote.textContent = found ? `${found.who}: ${found.text}` : "A message that is no longer here";
    });
    item.append(quote);
  }

  if (message.is_deleted) {
    item.append(h("p", { class: "msg-text muted" }, h("em", {}, "This message was deleted.")));
    return item;
  }
  if (message.content) item.append(h("p", { class: "msg-text" }, message.content));
  else if (message.content_encrypted) item.append(h("p", { class: "msg-text muted" }, h("em", {}, "Encrypted message")));
  const files = message.attachments || [];
  if (files.length) item.append(h("div", { class: "msg-files" }, files.map(attachment)));

  const reactions = (message.reactions || []).filter((r) => r.count > 0);
  if (reactions.length) {
    item.append(
      h(
        "div",
        { class: "reactions" },
        reactions.map((r) =>
          h(
            "button",
            {
              type: "button",
              class: "reaction",
              "aria-pressed": r.reacted ? "true" : "false",
              title: r.reacted ? "Take your reaction back" : "React too",
              dataset: { action: `count-${r.emoji}` },
              onclick: () => ctx.onReact(message, r.emoji, !r.reacted),
            },
            `${r.emoji} ${r.count}`,
          ),
        ),
      ),
    );
  }

  const mineReacted = new Set(reactions.filter((r) => r.reacted).map((r) => r.emoji));
  const button = (action, label, text, onclick, extra = {}) =>
    h("button", { type: "button", class: "act", "aria-label": label, title: label, dataset: { action }, onclick, ...extra }, text);
  const pinned = ctx.isPinned(message.id);
  item.append(
    h(
      "div",
      { class: "msg-actions" },
      button("reply", "Reply to message", "↩", () => ctx.onReply(message)),
      QUICK_REACTIONS.map((emoji) =>
        button(`react-${emoji}`, `React with ${emoji}`, emoji, () => ctx.onReact(message, emoji, !mineReacted.has(emoji)), {
          "aria-pressed": mineReacted.has(emoji) ? "true" : "false",
        }),
      ),
      button("pin", pinned ? "Unpin message" : "Pin message", pinned ? "Unpin" : "Pin", () => ctx.onPin(message, !pinned)),
      mine ? button("edit", "Edit message", "Edit", () => ctx.onEdit(message)) : null,
      mine ? button("delete", "Delete message", "Delete", () => ctx.onDelete(message)) : null,
    ),
  );
  return item;
}

function attachment(file) {
  if (file.kind === "image" && file.status !== "quarantined" && file.status !== "failed") {
    const holder = h("span", { class: "picture-loading muted" }, "Loading picture…");
    objectUrl(file.id).then(
      (url) => {
        const image = h("img", { src: url, alt: file.file_name ? `Picture: ${file.file_name}` : "Picture", class: "picture" });
        if (file.width && file.height) {
          image.width = file.width;
          image.height = file.height;
        }
        holder.replaceWith(image);
      },
      (error) => {
        holder.textContent = `Picture not available (${error.message})`;
      },
    );
    return holder;
  }
  if (file.status === "quarantined" || file.status === "failed") {
    return h("span", { class: "muted" }, `${file.file_name}: not available`);
  }
  return h(
    "button",
    {
      type: "button",
      class: "link file",
      onclick: async () => {
        try {
          const url = await objectUrl(file.id);
          const link = h("a", { href: url, download: file.file_name });
          document.body.append(link);
          link.click();
          link.remove();
        } catch (error) {
          showError(error);
        }
      },
    },
    `📎 Download ${file.file_name}`,
  );
}

/** The same item rebuilt, keeping the keyboard focus on the same action. */
export function replaceMessage(old, message, ctx) {
  const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  const item = renderMessage(message, ctx);
  old.replaceWith(item);
  if (focused) {
    const again = item.querySelector(`[data-action="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  return item;
}

/** A message being sent: what the person wrote, marked as not yet sent. */
export function renderPending({ text, pictureName, clientId }) {
  return h(
    "li",
    { class: "msg mine pending", dataset: { clientId } },
    h("div", { class: "msg-head" }, h("strong", { class: "sender" }, "You"), " ", h("span", { class: "muted" }, "Sending…")),
    text ? h("p", { class: "msg-text" }, text) : null,
    pictureName ? h("p", { class: "muted" }, `📷 ${pictureName}`) : null,
  );
}
