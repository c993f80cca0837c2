// #/chats/:id: one conversation. History newest at the bottom, older pages loaded when
// scrolled to the top; send, reply, edit, delete, react, pin; typing, read receipts and
// presence live from the stream; a picture attached.
//
// Accessible names (the browser tests select by these):
//   heading: the conversation's display name; link "Back to chats"
//   presence line (direct conversations): "Online", "Away", "Busy", "Last seen …", "Offline"
//   button "Pinned messages" (aria-expanded) shows the region "Pinned messages", each
//     pin with buttons "Go to pinned message" and "Unpin this pinned message"
//   the history: role=log named "History", holding a list; button "Load older messages"
//   each message: see js/chat/message.js ("Reply to message", "React with 👍",
//     "Pin message"/"Unpin message", "Edit message", "Delete message"; editing: "New text",
//     "Save", "Cancel editing")
//   one's newest message carries the receipt: "Sent", "Delivered", "Read" (direct) or
//     "Read by Bob, Carol" (groups)
//   typing line (role=status): "Bob is typing…"
//   composer: textarea "Message" (Enter sends, Shift+Enter a new line), file input
//     "Attach a picture", button "Send"; replying: "Replying to …" with "Cancel reply";
//     a chosen picture: its name with "Remove picture"

import { ApiError, api, session } from "../api.js";
import { stream } from "../stream.js";
import { attempt, h, showError, when } from "../ui.js";
import { uploadPicture } from "../chat/media.js";
import { renderMessage, renderPending, replaceMessage } from "../chat/message.js";
import { conversationName, forgetConversation, nameOf, senderName } from "../chat/people.js";
import { preview } from "../chat/text.js";
import { typingIn, typingOut } from "../chat/typing.js";

const PAGE = 40;
const NEAR_EDGE_PX = 120;
// Events that change a message already shown: it is read again, as history gives it.
// Work the person did not ask for (live updates) shows its error without clearing the
// one already shown (attempt() clears it: the refusal of a send must stay readable).
const background = (work) => Promise.resolve().then(work).catch(showError);

const MESSAGE_EVENTS = [
  "message.edited",
  "message.deleted",
  "reaction.added",
  "reaction.removed",
  "message.stream.ended",
  "message.threaded",
];

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function render(main, params) {
  const conversationId = params.id;
  const base = `/v1/conversations/${encodeURIComponent(conversationId)}`;
  const me = session.userId;

  // ---- state ----
  let conversation = null;
  let other = null; // the other person of a direct conversation
  const messages = new Map(); // id → message, those shown
  const items = new Map(); // id → <li>
  const pendings = new Map(); // client_message_id → <li>
  let older = null; // the cursor of the next older page, null at the start
  let loadingOlder = false;
  let pinned = new Set();
  let myReadSeq = 0;
  const readSeqs = new Map(); // participant → read_seq, from receipts and receipt.read events
  const deliveredSeqs = new Map();
  let editing = null; // id of the message being edited in place
  let deferred = null; // an update of the edited message, drawn once editing ends
  let replying = null; // the message replied to
  let picture = null; // the File chosen
  let retry = null; // { clientId, text, picture, fileId }: a failed send, sent again as itself
  let closed = false;
  const refreshing = new Map(); // id → whether it must be read again once the current read ends

  // ---- page ----
  const title = h("h1", { class: "chat-title" }, "Conversation");
  const presence = h("p", { class: "presence muted" });
  const pinsButton = h("button", { type: "button", "aria-expanded": "false", "aria-controls": "pins" }, "Pinned messages");
  const pinsList = h("ul", { class: "list pins" });
  const pinsArea = h(
    "section",
    { id: "pins", class: "pins-area card", hidden: true, "aria-labelledby": "pins-title" },
    h("h2", { id: "pins-title" }, "Pinned messages"),
    pinsList,
  );
  const olderButton = h("button", { type: "button", class: "older", hidden: true }, "Load older messages");
  const list = h("ol", { class: "list messages" });
  const emptyNote = h("p", { class: "muted empty-note", hidden: true }, "No messages yet.");
  const log = h(
    "div",
    { class: "log", role: "log", "aria-live": "polite", "aria-label": "History", tabindex: "0" },
    olderButton,
    emptyNote,
    list,
  );
  const typingLine = h("p", { class: "typing muted", role: "status", "aria-live": "polite" });

  const textarea = h("textarea", { id: "composer-text", name: "content", rows: 1, maxlength: 10000, autocomplete: "off" });
  const fileInput = h("input", { id: "composer-file", type: "file", accept: "image/*", class: "visually-hidden" });
  const replyBar = h("div", { class: "reply-bar", hidden: true });
  const pictureBar = h("div", { class: "picture-bar", hidden: true });
  const sendButton = h("button", { type: "submit", class: "primary send" }, "Send");
  const composer = h(
    "form",
    { class: "composer" },
    replyBar,
    pictureBar,
    h(
      "div",
      { class: "composer-row" },
      // The input first: its focus shows on the label drawn as its button (chat.css).
      fileInput,
      h(
        "label",
        { class: "attach", for: "composer-file", title: "Attach a picture" },
        h("span", { "aria-hidden": "true" }, "📎"),
        h("span", { class: "visually-hidden" }, "Attach a picture"),
      ),
      h("label", { class: "visually-hidden", for: "composer-text" }, "Message"),
      textarea,
      sendButton,
    ),
  );

  main.replaceChildren(
    h(
      "div",
      { class: "chat" },
      h(
        "div",
        { class: "chat-head" },
        h("a", { href: "#/chats", class: "back", "aria-label": "Back to chats" }, "←"),
        h("div", { class: "chat-head-text" }, title, presence),
        pinsButton,
      ),
      pinsArea,
      log,
      typingLine,
      composer,
    ),
  );

  const typingOutgoing = typingOut(conversationId);
  const typingIncoming = typingIn(conversationId, typingLine);

  // ---- messages in the list ----
  const ctx = {
    me,
    isPinned: (id) => pinned.has(id),
    quote: async (id) => {
      let found = messages.get(id);
      if (!found) {
        try {
          found = await api.get(`${base}/messages/${encodeURIComponent(id)}`);
        } catch {
          return null;
        }
      }
      return { who: await senderName(found.sender_id), text: preview(found, 60) };
    },
    onReply: (message) => startReply(message),
    onEdit: (message) => startEdit(message),
    onDelete: (message) =>
      attempt(async () => {
        await api.del(`${base}/messages/${encodeURIComponent(message.id)}`);
        await refresh(message.id);
        textarea.focus();
      }),
    onReact: (message, emoji, on) =>
      attempt(async () => {
        const path = `${base}/messages/${encodeURIComponent(message.id)}/reactions/${encodeURIComponent(emoji)}`;
        if (on) await api.put(path);
        else await api.del(path);
        await refresh(message.id);
      }),
    onPin: (message, on) =>
      attempt(async () => {
        const path = `${base}/pins/${encodeURIComponent(message.id)}`;
        if (on) await api.put(path);
        else await api.del(path);
        await loadPins();
      }),
  };

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_EDGE_PX;
  }

  function toBottom() {
    log.scrollTop = log.scrollHeight;
  }

  /** Show a message: update it where it is, take a pending one's place, or insert it by seq. */
  function upsert(message) {
    if (message.conversation_id && message.conversation_id !== conversationId) return;
    const known = items.get(message.id);
    messages.set(message.id, message);
    if (known) {
      if (editing === message.id) {
        deferred = message;
        return;
      }
      items.set(message.id, replaceMessage(known, message, ctx));
      updateReceipt();
      return;
    }
    const follow = nearBottom();
    const item = renderMessage(message, ctx);
    items.set(message.id, item);
    const pending = message.client_message_id ? pendings.get(message.client_message_id) : null;
    if (pending) {
      pendings.delete(message.client_message_id);
      pending.replaceWith(item);
    } else {
      let after = null;
      for (const existing of [...list.children].reverse()) {
        if (existing.dataset.seq && Number(existing.dataset.seq) < message.seq) {
          after = existing;
          break;
        }
      }
      if (after) after.after(item);
      else list.prepend(item);
      // Pending ones stay last: they come after everything already sent.
      for (const waiting of pendings.values()) list.append(waiting);
    }
    if (follow || message.sender_id === me) toBottom();
    emptyNote.hidden = true;
    updateReceipt();
    markReadSoon();
  }

  /** Read one message again (an event said it changed); reads are not run twice at once. */
  async function refresh(id) {
    if (refreshing.has(id)) {
      refreshing.set(id, true);
      return;
    }
    refreshing.set(id, false);
    try {
      do {
        refreshing.set(id, false);
        const message = await api.get(`${base}/messages/${encodeURIComponent(id)}`);
        if (closed) return;
        upsert(message);
      } while (refreshing.get(id));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    } finally {
      refreshing.delete(id);
    }
  }

  function newest() {
    let found = null;
    for (const message of messages.values()) if (!found || message.seq > found.seq) found = message;
    return found;
  }

  // ---- receipts: under one's newest message ----
  async function updateReceipt() {
    for (const old of list.querySelectorAll(".receipt")) old.remove();
    let own = null;
    for (const message of messages.values()) {
      if (message.sender_id === me && !message.is_deleted && (!own || message.seq > own.seq)) own = message;
    }
    if (!own || !items.get(own.id)) return;
    const line = h("p", { class: "receipt muted" });
    items.get(own.id).append(line);
    const readers = [...readSeqs].filter(([user, seq]) => user !== me && seq >= own.seq).map(([user]) => user);
    const delivered = [...deliveredSeqs].some(([user, seq]) => user !== me && seq >= own.seq);
    if (conversation && conversation.type === "direct") {
      line.textContent = readers.length ? "Read" : delivered ? "Delivered" : "Sent";
      return;
    }
    if (!readers.length) {
      line.textContent = delivered ? "Delivered" : "Sent";
      return;
    }
    const names = await Promise.all(readers.slice(0, 5).map(nameOf));
    const rest = readers.length > 5 ? ` and ${readers.length - 5} more` : "";
    line.textContent = `Read by ${names.join(", ")}${rest}`;
  }

  async function loadReceipts() {
    let own = null;
    for (const message of messages.values()) {
      if (message.sender_id === me && !message.is_deleted && (!own || message.seq > own.seq)) own = message;
    }
    if (!own) return;
    const receipts = await api.get(`${base}/messages/${encodeURIComponent(own.id)}/receipts`, { limit: 200 });
    for (const reader of receipts.read_by) {
      readSeqs.set(reader.user_id, Math.max(readSeqs.get(reader.user_id) || 0, own.seq));
      deliveredSeqs.set(reader.user_id, Math.max(deliveredSeqs.get(reader.user_id) || 0, own.seq));
    }
    for (const reached of receipts.delivered_to) {
      deliveredSeqs.set(reached.user_id, Math.max(deliveredSeqs.get(reached.user_id) || 0, own.seq));
    }
    updateReceipt();
  }

  // ---- marking read: the newest message seen in a focused tab ----
  let readTimer = null;
  function markReadSoon() {
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 300);
  }

  function markRead() {
    if (closed || document.visibilityState !== "visible" || !document.hasFocus()) return;
    const last = newest();
    if (!last || last.seq <= myReadSeq) return;
    const item = items.get(last.id);
    if (!item) return;
    const seen = item.getBoundingClientRect();
    const box = log.getBoundingClientRect();
    if (seen.top >= box.bottom || seen.bottom <= box.top) return;
    const before = myReadSeq;
    myReadSeq = last.seq;
    const frame = { type: "read", conversation_id: conversationId, message_id: last.id };
    const sent =
      stream.state === "live"
        ? stream.send(frame).catch(() => api.post(`${base}/read`, { message_id: last.id }))
        : api.post(`${base}/read`, { message_id: last.id });
    sent.catch((error) => {
      myReadSeq = before;
      if (!(error instanceof ApiError && error.status === 0)) showError(error);
    });
  }

  // ---- loading ----
  async function loadConversation() {
    forgetConversation(conversationId);
    conversation = await api.get(base);
    other = conversation.type === "direct" ? conversation.direct_with : null;
    myReadSeq = Math.max(myReadSeq, conversation.membership ? conversation.membership.read_seq : 0);
    title.textContent = await conversationName(conversation);
    document.title = `${title.textContent} · Rapport`;
  }

  async function loadNewest() {
    const page = await api.get(`${base}/messages`, { limit: PAGE });
    if (closed) return;
    // A page drawn at once is not news: screen readers wait until it is all there.
    log.setAttribute("aria-busy", "true");
    messages.clear();
    items.clear();
    list.replaceChildren(...pendings.values());
    older = page.next;
    for (const message of [...page.items].reverse()) upsert(message);
    olderButton.hidden = !older;
    emptyNote.hidden = messages.size > 0 || pendings.size > 0;
    toBottom();
    log.setAttribute("aria-busy", "false");
    await fillUp();
  }

  async function loadOlder() {
    if (!older || loadingOlder) return;
    loadingOlder = true;
    try {
      const page = await api.get(`${base}/messages`, { before: older, limit: PAGE });
      if (closed) return;
      log.setAttribute("aria-busy", "true");
      // Keep what the person sees where it is while older messages go above it.
      const fromBottom = log.scrollHeight - log.scrollTop;
      for (const message of page.items) {
        if (items.has(message.id)) continue;
        messages.set(message.id, message);
        const item = renderMessage(message, ctx);
        items.set(message.id, item);
        list.prepend(item);
      }
      log.scrollTop = log.scrollHeight - fromBottom;
      older = page.next;
      olderButton.hidden = !older;
    } finally {
      loadingOlder = false;
      log.setAttribute("aria-busy", "false");
    }
  }

  /** Older pages until the log can scroll (else no scroll would ever ask for them). */
  async function fillUp() {
    while (older && !closed && log.scrollHeight <= log.clientHeight + NEAR_EDGE_PX) await loadOlder();
  }

  async function loadPins() {
    const page = await api.get(`${base}/pins`, { limit: 200 });
    if (closed) return;
    const before = pinned;
    pinned = new Set(page.items.map((pin) => pin.message.id));
    for (const id of new Set([...before, ...pinned])) {
      if (before.has(id) !== pinned.has(id) && messages.has(id) && editing !== id) {
        items.set(id, replaceMessage(items.get(id), messages.get(id), ctx));
      }
    }
    updateReceipt();
    pinsButton.textContent = pinned.size ? `Pinned messages (${pinned.size})` : "Pinned messages";
    const rows = await Promise.all(
      page.items.map(async (pin) =>
        h(
          "li",
          {},
          h("strong", {}, await senderName(pin.message.sender_id)),
          ": ",
          preview(pin.message, 100),
          h(
            "div",
            { class: "row" },
            h("button", { type: "button", class: "link", onclick: () => attempt(() => goTo(pin.message.id)) }, "Go to pinned message"),
            h("button", { type: "button", class: "link", onclick: () => ctx.onPin(pin.message, false) }, "Unpin this pinned message"),
          ),
        ),
      ),
    );
    pinsList.replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, "Nothing is pinned.")]));
  }

  async function goTo(id) {
    while (!items.has(id) && older) await loadOlder();
    const item = items.get(id);
    if (!item) return;
    item.scrollIntoView({ block: "center" });
    const action = item.querySelector("button");
    if (action) action.focus();
  }

  async function loadPresence() {
    if (!other) {
      presence.textContent = conversation ? `${conversation.member_count} members` : "";
      return;
    }
    const answer = await api.get("/v1/presence", { user_ids: other });
    const found = answer.items.find((item) => item.user_id === other);
    if (found) showPresence(found);
  }

  function showPresence(state) {
    const labels = { online: "Online", away: "Away", busy: "Busy" };
    if (labels[state.status]) presence.textContent = labels[state.status];
    else if (state.last_seen_at) presence.textContent = `Last seen ${when(state.last_seen_at)}`;
    else presence.textContent = "Offline";
  }

  async function loadAll() {
    await loadConversation();
    await Promise.all([loadNewest(), loadPins()]);
    await Promise.all([loadReceipts(), loadPresence()]);
    markReadSoon();
  }

  // ---- reply, edit ----
  function startReply(message) {
    replying = message;
    senderName(message.sender_id).then((who) => {
      if (replying !== message) return;
      replyBar.replaceChildren(
        h("span", { class: "reply-text" }, `Replying to ${who}: ${preview(message, 60)}`),
        h("button", { type: "button", class: "link", onclick: cancelReply }, "Cancel reply"),
      );
      replyBar.hidden = false;
    });
    textarea.focus();
  }

  function cancelReply() {
    replying = null;
    replyBar.hidden = true;
    replyBar.replaceChildren();
    textarea.focus();
  }

  function startEdit(message) {
    if (editing) return;
    const item = items.get(message.id);
    if (!item) return;
    editing = message.id;
    const text = h("textarea", { rows: 2, maxlength: 10000, "aria-label": "New text" });
    text.value = message.content;
    const save = h("button", { type: "submit", class: "primary" }, "Save");
    const cancel = h("button", { type: "button" }, "Cancel editing");
    const form = h("form", { class: "edit-form" }, text, h("div", { class: "row" }, save, cancel));
    const shown = item.querySelector(".msg-text");
    if (shown) shown.replaceWith(form);
    else item.querySelector(".msg-head").after(form);

    function finish() {
      editing = null;
      const latest = deferred || messages.get(message.id);
      deferred = null;
      items.set(message.id, replaceMessage(items.get(message.id), latest, ctx));
      const again = items.get(message.id).querySelector('[data-action="edit"]');
      if (again) again.focus();
      updateReceipt();
    }
    cancel.addEventListener("click", finish);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Escape") finish();
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      save.disabled = true;
      const changed = await attempt(() =>
        api.patch(`${base}/messages/${encodeURIComponent(message.id)}`, { content: text.value.trim() }),
      );
      save.disabled = false;
      if (!changed) return; // the error is shown; the text stays to try again
      messages.set(changed.id, changed);
      deferred = changed;
      finish();
    });
    text.focus();
  }

  // ---- composing and sending ----
  function showPicture() {
    if (!picture) {
      pictureBar.hidden = true;
      pictureBar.replaceChildren();
      return;
    }
    pictureBar.replaceChildren(
      h("span", {}, `📷 ${picture.name}`),
      h(
        "button",
        {
          type: "button",
          class: "link",
          onclick: () => {
            picture = null;
            fileInput.value = "";
            showPicture();
            textarea.focus();
          },
        },
        "Remove picture",
      ),
    );
    pictureBar.hidden = false;
  }

  fileInput.addEventListener("change", () => {
    const chosen = fileInput.files && fileInput.files[0];
    if (!chosen) return;
    if (chosen.type && !chosen.type.startsWith("image/")) {
      showError(new Error("Choose a picture (an image file)."));
      fileInput.value = "";
      return;
    }
    picture = chosen;
    showPicture();
    textarea.focus();
  });

  function grow() {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
  }

  textarea.addEventListener("input", () => {
    grow();
    if (textarea.value.trim()) typingOutgoing.input();
    else typingOutgoing.stop();
  });
  textarea.addEventListener("blur", () => {
    // Focus moving elsewhere in the page ends typing; the window losing focus does not
    // (the person may come back to it): there the idle timer ends it.
    setTimeout(() => {
      if (document.hasFocus() && document.activeElement !== textarea) typingOutgoing.stop();
    }, 0);
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
    if (event.key === "Escape" && replying) cancelReply();
  });

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    const chosen = picture;
    if (!text && !chosen) return;
    typingOutgoing.stop();
    // A send that failed goes again under the same client id: if it did arrive, the
    // server answers with that message instead of making a second one.
    const again = retry && retry.text === text && retry.picture === chosen ? retry : null;
    const clientId = again ? again.clientId : newClientId();
    const replyTo = replying;
    let fileId = again ? again.fileId : null;

    textarea.value = "";
    grow();
    picture = null;
    fileInput.value = "";
    showPicture();
    replying = null;
    replyBar.hidden = true;
    const pending = renderPending({ text, pictureName: chosen ? chosen.name : null, clientId });
    pendings.set(clientId, pending);
    list.append(pending);
    emptyNote.hidden = true;
    toBottom();

    try {
      if (chosen && !fileId) fileId = (await uploadPicture(chosen)).id;
      const body = { content: text, client_message_id: clientId, type: fileId ? "image" : "text" };
      if (fileId) body.attachments = [fileId];
      if (replyTo) body.reply_to = replyTo.id;
      const message = await api.post(`${base}/messages`, body);
      retry = null;
      if (!closed) upsert(message);
    } catch (error) {
      // Nothing is lost: the text, picture and reply come back to the composer.
      pendings.delete(clientId);
      pending.remove();
      retry = { clientId, text, picture: chosen, fileId };
      if (!closed) {
        if (!textarea.value) {
          textarea.value = text;
          grow();
        }
        if (chosen && !picture) {
          picture = chosen;
          showPicture();
        }
        if (replyTo && !replying) startReply(replyTo);
      }
      showError(error);
    }
  });

  // ---- scrolling, focus ----
  let scrollTimer = null;
  log.addEventListener("scroll", () => {
    if (log.scrollTop < NEAR_EDGE_PX && older && !loadingOlder) background(loadOlder);
    clearTimeout(scrollTimer);
    scrollTimer = setTimeout(markReadSoon, 150);
  });
  olderButton.addEventListener("click", () => attempt(loadOlder));
  pinsButton.addEventListener("click", () => {
    const open = pinsArea.hidden;
    pinsArea.hidden = !open;
    pinsButton.setAttribute("aria-expanded", String(open));
    if (open) attempt(loadPins);
  });
  const onFocus = () => markReadSoon();
  window.addEventListener("focus", onFocus);
  document.addEventListener("visibilitychange", onFocus);

  // ---- live ----
  const mineEvent = (event) => event.scope && event.scope.kind === "conversation" && event.scope.id === conversationId;
  const ofConversation = (event) => mineEvent(event) || (event.payload && event.payload.conversation_id === conversationId);
  const stops = [
    stream.on("message.created", (event) => {
      if (!mineEvent(event)) return;
      const id = event.payload.message_id;
      if (event.payload.sender_id) typingIncoming.forget(event.payload.sender_id);
      if (items.has(id) || event.payload.thread_id) return; // threads are not shown here
      background(() => refresh(id));
    }),
    ...MESSAGE_EVENTS.map((type) =>
      stream.on(type, (event) => {
        if (!mineEvent(event) || !items.has(event.payload.message_id)) return;
        background(() => refresh(event.payload.message_id));
      }),
    ),
    stream.on("pin.added", (event) => mineEvent(event) && background(loadPins)),
    stream.on("pin.removed", (event) => mineEvent(event) && background(loadPins)),
    stream.on("receipt.read", (event) => {
      if (!ofConversation(event)) return;
      const { user_id: user, read_seq: readSeq, delivered_seq: deliveredSeq } = event.payload;
      if (user === me) {
        myReadSeq = Math.max(myReadSeq, readSeq);
        return;
      }
      readSeqs.set(user, Math.max(readSeqs.get(user) || 0, readSeq));
      deliveredSeqs.set(user, Math.max(deliveredSeqs.get(user) || 0, deliveredSeq || 0));
      updateReceipt();
    }),
    stream.on("receipt.delivered", (event) => {
      if (!ofConversation(event)) return;
      const { user_id: user, delivered_seq: seq } = event.payload;
      deliveredSeqs.set(user, Math.max(deliveredSeqs.get(user) || 0, seq));
      updateReceipt();
    }),
    stream.on("conversation.changed", (event) => ofConversation(event) && background(loadConversation)),
    stream.on("conversation.deleted", (event) => {
      if (!ofConversation(event)) return;
      showError(new Error("This conversation was deleted."));
      composer.hidden = true;
    }),
    stream.on("presence", (frame) => {
      if (other && frame.user_id === other) showPresence(frame);
    }),
    stream.on("resync", () => background(loadAll)),
  ];
  const tick = setInterval(() => {
    for (const time of list.querySelectorAll("time")) time.textContent = when(time.getAttribute("datetime"));
  }, 60000);

  // Not awaited: the shell moves focus to the view once render() returns, and must do so
  // before the person can start typing, not after the history has loaded.
  attempt(loadAll);

  return () => {
    closed = true;
    typingOutgoing.stop();
    typingIncoming.stop();
    stops.forEach((stop) => stop());
    clearInterval(tick);
    clearTimeout(readTimer);
    clearTimeout(scrollTimer);
    window.removeEventListener("focus", onFocus);
    document.removeEventListener("visibilitychange", onFocus);
  };
}
