// People (#/people): finding people, contact requests both ways, contacts (message,
// remove, block) and the people one blocks.
//
// Accessible names (the browser tests select by these):
//   h1 "People"; h2 "Find people", "Contact requests", "Contacts", "Blocked people";
//   h3 "Received", "Sent" (under "Contact requests")
//   search: form role=search; field "Find people"; button "Search"; list "Search results",
//           each item a button "Add contact" (or the text "Contact" / "Request sent")
//   lists "Received requests" (buttons "Accept", "Reject"), "Sent requests" (button "Cancel request"),
//         "Contacts" (buttons "Message", "Remove", "Block"), "Blocked people" (button "Unblock")
//   Each list item starts with the person's display name (then @username).

import { api } from "../api.js";
import { stream } from "../stream.js";
import { field, h, notify, onSubmit, showError, when } from "../ui.js";

// Names of people seen before, kept so that someone one has blocked (whose profile is then
// hidden) still shows under their name.
const NAMES_KEY = "rapport.names";
const names = new Map(Object.entries(JSON.parse(localStorage.getItem(NAMES_KEY) || "{}")));

function keepName(userId, profile) {
  const known = { display_name: profile.display_name, username: profile.username };
  names.set(userId, known);
  localStorage.setItem(NAMES_KEY, JSON.stringify(Object.fromEntries([...names].slice(-500))));
  return known;
}

async function person(userId) {
  try {
    return keepName(userId, await api.get(`/v1/users/${userId}/profile`));
  } catch {
    return names.get(userId) || { display_name: "Someone", username: null };
  }
}

async function people(userIds) {
  const unique = [...new Set(userIds)];
  const found = await Promise.all(unique.map(person));
  return new Map(unique.map((id, i) => [id, found[i]]));
}

function who(profile, ...more) {
  return h(
    "div",
    { class: "who" },
    h("strong", {}, profile.display_name),
    profile.username ? h("span", { class: "muted" }, `@${profile.username}`) : null,
    ...more,
  );
}

function button(text, action, attributes = {}) {
  const element = h("button", { type: "button", ...attributes }, text);
  element.addEventListener("click", async () => {
    element.disabled = true;
    try {
      await action();
    } catch (error) {
      showError(error);
    } finally {
      element.disabled = false;
    }
  });
  return element;
}

function list(label, items, empty) {
  return items.length ? h("ul", { class: "list", "aria-label": label }, items) : h("p", { class: "muted" }, empty);
}

function section(title, id) {
  const heading = h("h2", { id, tabindex: "-1" }, title);
  const body = h("div", {});
  const element = h("section", { class: "card" }, heading, body);
  return { element, heading, body };
}

export function render(main) {
  const state = { contacts: [], incoming: [], outgoing: [], blocks: [], profiles: new Map(), results: null };

  const find = section("Find people", "find-heading");
  const requests = section("Contact requests", "requests-heading");
  const contacts = section("Contacts", "contacts-heading");
  const blocked = section("Blocked people", "blocked-heading");
  const resultsBox = h("div", {});
  const found = h("p", { role: "status", class: "muted" });

  const search = h(
    "form",
    { role: "search", class: "inline" },
    field("Find people", {
      name: "q",
      type: "search",
      maxlength: 100,
      required: true,
      autocomplete: "off",
      hint: "A name, a word of their bio, or @username.",
    }),
    h("button", { class: "primary" }, "Search"),
  );
  onSubmit(search, async (values) => {
    const page = await api.get("/v1/users/search", { q: values.q.trim(), limit: 20 });
    page.items.forEach((item) => keepName(item.user_id, item));
    state.results = page.items;
    found.textContent = page.items.length ? `${page.items.length} found.` : "No one found.";
    drawResults();
  });
  find.body.append(search, found, resultsBox);

  // After an action, the focus goes to its section's heading: the button it was on is gone.
  async function settle(where) {
    await refresh();
    where.heading.focus();
  }

  function relation(userId) {
    if (state.contacts.some((c) => c.contact_user_id === userId)) return "Contact";
    if (state.outgoing.some((r) => r.addressee_id === userId)) return "Request sent";
    if (state.blocks.some((b) => b.blocked_id === userId)) return "Blocked";
    return null;
  }

  function drawResults() {
    if (state.results === null) return;
    const items = state.results.map((item) => {
      const known = relation(item.user_id);
      const action = known
        ? h("span", { class: "tag" }, known)
        : button(
            "Add contact",
            async () => {
              const made = await api.post("/v1/contact-requests", { user_id: item.user_id });
              notify(
                made.status === "accepted"
                  ? `${item.display_name} had asked you already: you are now contacts.`
                  : `Contact request sent to ${item.display_name}.`,
              );
              await settle(find);
            },
            { class: "primary" },
          );
      return h(
        "li",
        { class: "item" },
        who(item, item.bio ? h("span", {}, item.bio) : null),
        h("div", { class: "actions" }, action),
      );
    });
    resultsBox.replaceChildren(items.length ? list("Search results", items, "") : "");
  }

  function drawRequests() {
    const incoming = state.incoming.map((request) => {
      const profile = state.profiles.get(request.requester_id);
      const answer = (verb, done) =>
        button(
          verb === "accept" ? "Accept" : "Reject",
          async () => {
            await api.post(`/v1/contact-requests/${request.id}/${verb}`);
            notify(done);
            await settle(requests);
          },
          { class: verb === "accept" ? "primary" : "danger" },
        );
      return h(
        "li",
        { class: "item" },
        who(
          profile,
          request.message ? h("span", {}, request.message) : null,
          h("span", { class: "muted" }, `Asked ${when(request.created_at)}`),
        ),
        h(
          "div",
          { class: "actions" },
          answer("accept", `You and ${profile.display_name} are now contacts.`),
          answer("reject", `Request from ${profile.display_name} rejected.`),
        ),
      );
    });
    const outgoing = state.outgoing.map((request) => {
      const profile = state.profiles.get(request.addressee_id);
      return h(
        "li",
        { class: "item" },
        who(profile, h("span", { class: "muted" }, `Sent ${when(request.created_at)}`)),
        h(
          "div",
          { class: "actions" },
          button("Cancel request", async () => {
            await api.post(`/v1/contact-requests/${request.id}/cancel`);
            notify(`Request to ${profile.display_name} cancelled.`);
            await settle(requests);
          }),
        ),
      );
    });
    requests.body.replaceChildren(
      h("h3", {}, "Received"),
      list("Received requests", incoming, "No requests waiting for you."),
      h("h3", {}, "Sent"),
      list("Sent requests", outgoing, "No requests waiting for an answer."),
    );
  }

  function contactName(contact) {
    if (contact.contact_user_id) return state.profiles.get(contact.contact_user_id);
    const name = [contact.first_name, contact.last_name].filter(Boolean).join(" ") || contact.email || "Contact";
    return { display_name: contact.nickname || name, username: null };
  }

  function drawContacts() {
    const items = state.contacts.map((contact) => {
      const profile = contactName(contact);
      const userId = contact.contact_user_id;
      const actions = h("div", { class: "actions" });
      if (userId) {
        actions.append(
          button(
            "Message",
            async () => {
              const conversation = await api.post("/v1/conversations", { type: "direct", participant_ids: [userId] });
              location.hash = `#/chats/${conversation.id}`;
            },
            { class: "primary" },
          ),
        );
      }
      actions.append(
        button("Remove", async () => {
          await api.del(`/v1/contacts/${contact.id}`);
          notify(`${profile.display_name} removed from your contacts.`);
          await settle(contacts);
        }),
      );
      if (userId) {
        actions.append(
          button(
            "Block",
            async () => {
              await api.put(`/v1/blocks/${userId}`);
              notify(`${profile.display_name} is blocked: they can no longer write to you.`);
              await settle(blocked);
            },
            { class: "danger" },
          ),
        );
      }
      return h("li", { class: "item" }, who(profile), actions);
    });
    contacts.body.replaceChildren(list("Contacts", items, "No contacts yet: find people above and add them."));
  }

  function drawBlocked() {
    const items = state.blocks.map((block) => {
      const profile = state.profiles.get(block.blocked_id);
      return h(
        "li",
        { class: "item" },
        who(profile, h("span", { class: "muted" }, `Blocked ${when(block.created_at)}`)),
        h(
          "div",
          { class: "actions" },
          button("Unblock", async () => {
            await api.del(`/v1/blocks/${block.blocked_id}`);
            notify(`${profile.display_name} is unblocked.`);
            await settle(blocked);
          }),
        ),
      );
    });
    blocked.body.replaceChildren(list("Blocked people", items, "You block no one."));
  }

  async function refresh() {
    const [contactList, incoming, outgoing, blocks] = await Promise.all([
      api.all("/v1/contacts"),
      api.all("/v1/contact-requests", { direction: "incoming", status: "pending" }),
      api.all("/v1/contact-requests", { direction: "outgoing", status: "pending" }),
      api.all("/v1/blocks"),
    ]);
    state.profiles = await people([
      ...contactList.map((c) => c.contact_user_id).filter(Boolean),
      ...incoming.map((r) => r.requester_id),
      ...outgoing.map((r) => r.addressee_id),
      ...blocks.map((b) => b.blocked_id),
    ]);
    Object.assign(state, { contacts: contactList, incoming, outgoing, blocks });
    drawRequests();
    drawContacts();
    drawBlocked();
    drawResults();
  }

  main.append(
    h("h1", {}, "People"),
    find.element,
    requests.element,
    contacts.element,
    blocked.element,
  );

  // Requests made and answered elsewhere (the other person, another tab) show at once.
  let pending = null;
  const later = () => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(showError), 150);
  };
  const unsubscribe = [
    "contact_request.received",
    "contact_request.sent",
    "contact_request.accepted",
    "contact_request.rejected",
    "contact_request.cancelled",
    "resync",
  ].map((type) => stream.on(type, later));

  return refresh()
    .catch(showError)
    .then(() => () => {
      clearTimeout(pending);
      unsubscribe.forEach((off) => off());
    });
}
