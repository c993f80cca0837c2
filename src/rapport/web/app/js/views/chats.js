// #/chats: the person's conversations, newest activity first, live from the stream; start
// a direct conversation or a group; search messages.
//
// Accessible names (the browser tests select by these):
//   heading "Chats"
//   each conversation: a link named by the conversation's display name (a direct one:
//     the other person's name); beside it the preview, the time and a badge "N unread"
//   button "New conversation" (aria-expanded) opens the form "New conversation":
//     radio "Direct conversation" (default) / radio "Group";
//     direct: select "Contact"; group: text "Group name" and checkboxes named by each
//     contact inside the group "Members"; button "Start", button "Cancel"
//   search: landmark "search" with field "Search messages" and button "Search";
//     results: list "Search results", each a link to its conversation
//   button "More conversations" when there are more

import { api, session } from "../api.js";
import { stream } from "../stream.js";
import { attempt, h, showError, when } from "../ui.js";
import { conversationName, conversationNameById, listPeopleContacts, senderName } from "../chat/people.js";
import { preview, snippetNodes, unreadBadge } from "../chat/text.js";

const PAGE = 100;
// Events that change what the list shows: a reload gives exact unread counts and order.
const LIVE_EVENTS = [
  "message.created",
  "message.edited",
  "message.deleted",
  "receipt.read",
  "conversation.created",
  "conversation.changed",
  "conversation.deleted",
  "participant.joined",
  "participant.left",
  "participant.changed",
];

export async function render(main) {
  const list = h("ul", { class: "list chat-list", "aria-label": "Conversations" });
  const empty = h("p", { class: "muted" }, "No conversations yet. Start one with “New conversation”.");
  const more = h("button", { type: "button", hidden: true }, "More conversations");
  const newButton = h("button", { type: "button", class: "primary", "aria-expanded": "false" }, "New conversation");
  const newArea = h("div", {});
  const search = searchArea();

  main.replaceChildren(
    h("div", { class: "chats-head row" }, h("h1", {}, "Chats"), newButton),
    newArea,
    search.element,
    list,
    empty,
    more,
  );

  let items = [];
  let next = null;
  let shownCount = PAGE;
  let reloadTimer = null;
  let generation = 0;

  async function load() {
    const mine = ++generation;
    const page = await api.get("/v1/conversations", { limit: shownCount });
    if (mine !== generation) return;
    items = page.items;
    next = page.next;
    await draw();
  }

  async function draw() {
    const mine = generation;
    const rows = await Promise.all(items.map(row));
    if (mine !== generation) return;
    list.replaceChildren(...rows);
    empty.hidden = items.length > 0;
    more.hidden = !next;
  }

  async function row(item) {
    const [name, who] = await Promise.all([
      conversationName(item),
      item.last_message && item.type !== "direct" ? senderName(item.last_message.sender_id) : Promise.resolve(null),
    ]);
    const mineLast = item.last_message && item.last_message.sender_id === session.userId;
    const text = preview(item.last_message);
    const lead = item.last_message && !item.last_message.is_deleted ? (mineLast ? "You" : who) : null;
    return h(
      "li",
      { class: item.unread_count ? "chat-item unread" : "chat-item", dataset: { id: item.id } },
      h(
        "div",
        { class: "chat-item-top" },
        h("a", { href: `#/chats/${encodeURIComponent(item.id)}`, class: "chat-name" }, name),
        h("time", { datetime: item.last_activity_at, title: new Date(item.last_activity_at).toLocaleString() }, when(item.last_activity_at)),
      ),
      h(
        "div",
        { class: "chat-item-bottom" },
        h("span", { class: "chat-preview muted" }, lead ? `${lead}: ${text}` : text),
        unreadBadge(item.unread_count),
      ),
    );
  }

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load().catch(showError), 150);
  }

  more.addEventListener("click", () => {
    shownCount += PAGE;
    attempt(load);
  });

  newButton.addEventListener("click", async () => {
    if (newArea.firstChild) {
      closeNew();
      return;
    }
    newButton.setAttribute("aria-expanded", "true");
    const form = await newConversationForm(closeNew);
    if (form) {
      newArea.replaceChildren(form);
      const first = form.querySelector("input, select");
      if (first) first.focus();
    } else {
      newButton.setAttribute("aria-expanded", "false");
    }
  });

  function closeNew() {
    newArea.replaceChildren();
    newButton.setAttribute("aria-expanded", "false");
    newButton.focus();
  }

  const stops = LIVE_EVENTS.map((type) => stream.on(type, reloadSoon));
  stops.push(stream.on("resync", reloadSoon));
  const tick = setInterval(() => {
    for (const time of list.querySelectorAll("time")) time.textContent = when(time.getAttribute("datetime"));
  }, 60000);

  // Not awaited: the shell focuses the view when render() returns, before any typing.
  attempt(load);

  return () => {
    stops.forEach((stop) => stop());
    clearTimeout(reloadTimer);
    clearInterval(tick);
    generation += 1;
  };
}

async function newConversationForm(close) {
  let contacts;
  try {
    contacts = await listPeopleContacts();
  } catch (error) {
    showError(error);
    return null;
  }
  const fields = h("div", { class: "new-fields" });
  const start = h("button", { type: "submit", class: "primary" }, "Start");
  const cancel = h("button", { type: "button" }, "Cancel");
  const kindName = "kind";
  const direct = h("input", { type: "radio", name: kindName, value: "direct", checked: true });
  const group = h("input", { type: "radio", name: kindName, value: "group" });
  const form = h(
    "form",
    { class: "card new-conversation", "aria-labelledby": "new-conversation-title" },
    h("h2", { id: "new-conversation-title" }, "New conversation"),
    h(
      "fieldset",
      { class: "kinds" },
      h("legend", {}, "Kind"),
      h("label", {}, direct, " Direct conversation"),
      h("label", {}, group, " Group"),
    ),
    fields,
    h("div", { class: "row" }, start, cancel),
  );

  // Only the chosen kind's fields are in the page, so each label names one control.
  function showFields() {
    if (!contacts.length) {
      fields.replaceChildren(h("p", { class: "muted" }, "You have no contacts yet: add some under People first."));
      start.disabled = true;
      return;
    }
    start.disabled = false;
    if (direct.checked) {
      // The label is beside the select, not around it: around it, the chosen option's
      // text would join the select's accessible name.
      fields.replaceChildren(
        h(
          "div",
          { class: "field" },
          h("label", { for: "new-contact" }, "Contact"),
          h(
            "select",
            { id: "new-contact", name: "contact", required: true },
            contacts.map(({ contact, name }) => h("option", { value: contact.contact_user_id }, name)),
          ),
        ),
      );
    } else {
      fields.replaceChildren(
        h(
          "div",
          { class: "field" },
          h("label", { for: "new-group-name" }, "Group name"),
          h("input", { id: "new-group-name", name: "name", required: true, maxlength: 200, autocomplete: "off" }),
        ),
        h(
          "fieldset",
          { class: "members" },
          h("legend", {}, "Members"),
          contacts.map(({ contact, name }) =>
            h("label", { class: "member" }, h("input", { type: "checkbox", name: "member", value: contact.contact_user_id }), ` ${name}`),
          ),
        ),
      );
    }
  }
  direct.addEventListener("change", showFields);
  group.addEventListener("change", showFields);
  cancel.addEventListener("click", close);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    if (direct.checked) {
      body = { type: "direct", participant_ids: [form.elements.contact.value] };
    } else {
      const members = [...form.querySelectorAll('input[name="member"]:checked')].map((box) => box.value);
      if (!members.length) {
        showError(new Error("Choose at least one member for the group."));
        return;
      }
      body = { type: "group", name: form.elements.name.value.trim(), participant_ids: members };
    }
    start.disabled = true;
    const made = await attempt(() => api.post("/v1/conversations", body));
    start.disabled = false;
    if (made) location.hash = `#/chats/${encodeURIComponent(made.id)}`;
  });
  showFields();
  return form;
}

function searchArea() {
  const input = h("input", { id: "search-messages", type: "search", name: "q", required: true, maxlength: 200, autocomplete: "off" });
  const results = h("ul", { class: "list search-results", "aria-label": "Search results" });
  const summary = h("p", { class: "muted", role: "status" });
  let next = null;
  let query = "";
  const moreButton = h("button", { type: "button", hidden: true }, "More results");
  const form = h(
    "form",
    { class: "search-form", role: "search" },
    h("div", { class: "field" }, h("label", { for: "search-messages" }, "Search messages"), input),
    h("button", { type: "submit" }, "Search"),
  );
  const element = h("section", { class: "chat-search" }, form, summary, results, moreButton);

  async function hitRow(hit) {
    const [name, who] = await Promise.all([conversationNameById(hit.conversation_id), senderName(hit.sender_id)]);
    return h(
      "li",
      {},
      h("a", { href: `#/chats/${encodeURIComponent(hit.conversation_id)}` }, name),
      h("span", { class: "muted" }, ` · ${who} · `, h("time", { datetime: hit.created_at }, when(hit.created_at))),
      h("p", { class: "hit-snippet" }, snippetNodes(hit.snippet)),
    );
  }

  async function run(cursor) {
    const page = await api.get("/v1/messages/search", { q: query, limit: 20, cursor });
    const rows = await Promise.all(page.items.map(hitRow));
    if (cursor) results.append(...rows);
    else results.replaceChildren(...rows);
    next = page.next;
    moreButton.hidden = !next;
    const count = results.children.length;
    summary.textContent = count ? `${count} message${count === 1 ? "" : "s"} found` : "No messages found";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    query = input.value.trim();
    if (!query) return;
    attempt(() => run(null));
  });
  moreButton.addEventListener("click", () => attempt(() => run(next)));
  return { element };
}
