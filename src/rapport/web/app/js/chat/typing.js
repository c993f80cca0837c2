// Typing indicators over the stream (frames, never stored): what this tab says while the
// person composes, and "Bob is typing…" from what the others say.

import { session } from "../api.js";
import { stream } from "../stream.js";
import { nameOf } from "./people.js";

const RESEND_MS = 3000; // say "typing" again at most this often while typing goes on
const IDLE_MS = 5000; // silence after which the person is no longer typing

/** What this tab says: call input() on each keystroke, stop() on send or blur. */
export function typingOut(conversationId) {
  let active = false;
  let lastSent = 0;
  let idle = null;
  const say = (typing) => stream.send({ type: "typing", conversation_id: conversationId, typing }).catch(() => {});
  function stop() {
    clearTimeout(idle);
    if (!active) return;
    active = false;
    say(false);
  }
  function input() {
    const now = Date.now();
    if (!active || now - lastSent > RESEND_MS) {
      active = true;
      lastSent = now;
      say(true);
    }
    clearTimeout(idle);
    idle = setTimeout(stop, IDLE_MS);
  }
  return { input, stop };
}

/** Writes who is typing in the conversation into `element` (a role=status line). */
export function typingIn(conversationId, element) {
  const typers = new Map(); // user id → timer that forgets them
  let drawn = 0;

  async function draw() {
    const mine = ++drawn;
    const names = await Promise.all([...typers.keys()].map(nameOf));
    if (mine !== drawn) return;
    if (names.length === 0) element.textContent = "";
    else if (names.length === 1) element.textContent = `${names[0]} is typing…`;
    else if (names.length === 2) element.textContent = `${names[0]} and ${names[1]} are typing…`;
    else element.textContent = "Several people are typing…";
  }

  function forget(userId) {
    if (!typers.has(userId)) return;
    clearTimeout(typers.get(userId));
    typers.delete(userId);
    draw();
  }

  const off = stream.on("typing", (frame) => {
    if (frame.conversation_id !== conversationId || frame.user_id === session.userId) return;
    if (!frame.typing) {
      forget(frame.user_id);
      return;
    }
    clearTimeout(typers.get(frame.user_id));
    const known = typers.has(frame.user_id);
    typers.set(frame.user_id, setTimeout(() => forget(frame.user_id), (frame.expires_in_ms || IDLE_MS) + 500));
    if (!known) draw();
  });

  return {
    /** Someone's message arrived: they have stopped typing it. */
    forget,
    stop() {
      off();
      typers.forEach((timer) => clearTimeout(timer));
      typers.clear();
    },
  };
}
