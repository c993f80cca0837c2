// Names of people and conversations, each asked once per page load. Messages, events and
// conversation list items carry ids only; the names come from profiles.

import { api, session } from "../api.js";

const names = new Map();
const conversations = new Map();

/** A person's display name (their profile's), or "Someone" when it is not visible. */
export function nameOf(userId) {
  if (!userId) return Promise.resolve("Rapport");
  if (!names.has(userId)) {
    const asked = api
      .get(`/v1/users/${encodeURIComponent(userId)}/profile`)
      .then((profile) => profile.display_name || profile.username || "Someone")
      .catch(() => {
        names.delete(userId); // asked again next time: the profile may become visible
        return "Someone";
      });
    names.set(userId, asked);
  }
  return names.get(userId);
}

/** "You" for the signed-in person, their name for anyone else. */
export function senderName(userId) {
  return userId && userId === session.userId ? Promise.resolve("You") : nameOf(userId);
}

/** A conversation as GET /v1/conversations/{id} gives it, asked once per page load. */
export function getConversation(conversationId) {
  if (!conversations.has(conversationId)) {
    const asked = api.get(`/v1/conversations/${encodeURIComponent(conversationId)}`).catch((error) => {
      conversations.delete(conversationId);
      throw error;
    });
    conversations.set(conversationId, asked);
  }
  return conversations.get(conversationId);
}

/** Forget what was kept of a conversation (its name or members changed). */
export function forgetConversation(conversationId) {
  conversations.delete(conversationId);
}

/** The other person of a direct conversation (list items lack `direct_with`). */
export async function otherOf(conversation) {
  if (conversation.direct_with !== undefined) return conversation.direct_with;
  return (await getConversation(conversation.id)).direct_with;
}

/** What a conversation is called: its name, or the other person's for a direct one. */
export async function conversationName(conversation) {
  if (conversation.name) return conversation.name;
  if (conversation.type === "direct") {
    try {
      return await nameOf(await otherOf(conversation));
    } catch {
      return "Direct conversation";
    }
  }
  return conversation.type === "group" ? "Group" : "Conversation";
}

/** What the conversation of this id is called (search results know only the id). */
export async function conversationNameById(conversationId) {
  try {
    return await conversationName(await getConversation(conversationId));
  } catch {
    return "Conversation";
  }
}

/** A contact's name: their own naming of them, else the linked person's profile. */
export async function contactName(contact) {
  if (contact.nickname) return contact.nickname;
  const full = [contact.first_name, contact.last_name].filter(Boolean).join(" ");
  if (full) return full;
  if (contact.contact_user_id) {
    const name = await nameOf(contact.contact_user_id);
    if (name !== "Someone") return name;
  }
  return contact.email || contact.phone || "Someone";
}

/** All of the signed-in person's contacts that are people with an account here. */
export async function listPeopleContacts() {
  const out = [];
  let cursor = null;
  do {
    const page = await api.get("/v1/contacts", { limit: 200, cursor });
    out.push(...page.items.filter((contact) => contact.contact_user_id));
    cursor = page.next || null;
  } while (cursor && out.length < 1000);
  const named = await Promise.all(out.map(async (contact) => ({ contact, name: await contactName(contact) })));
  return named.sort((a, b) => a.name.localeCompare(b.name));
}
