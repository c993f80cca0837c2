// Signing in, creating an account and verifying its e-mail (#/login, #/register, #/verify),
// and signing out (`signOut`, used by the account screen).
//
// Accessible names (the browser tests select by these):
//   #/login     h1 "Sign in"; fields "Email", "Password"; button "Sign in";
//               second step (two-factor): h2 "Two-factor check"; field "Authentication code";
//               button "Use a recovery code instead" → field "Recovery code"; button "Continue";
//               second step (an unusual sign-in of an account without two-factor): h2 "Confirm it is you";
//               field "Sign-in code"; button "Continue"
//               links "Create an account", "Verify your e-mail"
//   #/register  h1 "Create an account"; fields "Name", "Email", "Password"; button "Create account";
//               link "Sign in"
//   #/verify    h1 "Verify your e-mail"; fields "Email", "Code"; buttons "Verify", "Send a new code";
//               link "Sign in"

import { api, device, session } from "../api.js";
import { field, h, notify, onSubmit, showError } from "../ui.js";
import * as push from "../push.js";

// What registration leaves for the verification step (this tab only): the address, and
// the name to set on the profile once the account exists.
const PENDING = "rapport.pending";

function pending() {
  return JSON.parse(sessionStorage.getItem(PENDING) || "{}");
}

function remember(values) {
  sessionStorage.setItem(PENDING, JSON.stringify({ ...pending(), ...values }));
}

const DEMO_PASSWORD = "rapport-demo-password";

function demoNote() {
  return h(
    "div",
    { class: "note" },
    h(
      "p",
      {},
      "Trying Rapport locally? ",
      h("code", {}, "make serve"),
      " creates demo accounts ready to use: ",
      h("code", {}, "alice@example.com"),
      ", ",
      h("code", {}, "bob@example.com"),
      " and ",
      h("code", {}, "carol@example.com"),
      ", each with the password ",
      h("code", {}, DEMO_PASSWORD),
      ".",
    ),
  );
}

function codeNote() {
  return h(
    "div",
    { class: "note" },
    h(
      "p",
      {},
      "We e-mail a six-digit code to the address. " +
        "In a local install without a mail server, the code is in the server's log.",
    ),
  );
}

/** Sign out here: the session ends at Rapport, and this browser forgets its push subscription and tokens. */
export async function signOut() {
  try {
    await push.disable();
  } catch {
    /* the subscription dies with the session's tokens anyway */
  }
  try {
    await api.post("/v1/auth/logout");
  } catch {
    /* an expired or revoked session is signed out already */
  }
  session.clear();
}

function loginView(main) {
  const email = field("Email", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = field("Password", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = h("form", {}, email, password, h("button", { class: "primary" }, "Sign in"));
  const step = h("div", {});
  const remembered = pending().email;
  if (remembered) email.querySelector("input").value = remembered;
  onSubmit(form, async (values) => {
    try {
      const answer = await api.post("/v1/auth/login", { ...values, ...device() }, { auth: false });
      if (answer.mfa_required) {
        form.hidden = true;
        if (answer.factor === "email" || answer.factor === "sms") codeStep(step, answer);
        else secondStep(step, answer.mfa_token);
        return;
      }
      session.save(answer);
    } catch (error) {
      if (error.slug === "email-not-verified") {
        remember({ email: values.email });
        showError(error, form);
        return;
      }
      throw error;
    }
  });
  main.append(
    h("h1", {}, "Sign in"),
    form,
    step,
    h(
      "p",
      {},
      "New here? ",
      h("a", { href: "#/register" }, "Create an account"),
      ". Have a code? ",
      h("a", { href: "#/verify" }, "Verify your e-mail"),
      ".",
    ),
    demoNote(),
  );
}

function secondStep(container, mfaToken) {
  let recovery = false;
  const codeField = field("Authentication code", {
    name: "code",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    maxlength: 6,
    required: true,
    hint: "The six digits your authenticator app shows for Rapport.",
  });
  const recoveryField = field("Recovery code", {
    name: "recovery_code",
    autocomplete: "off",
    hint: "One of the codes you saved when you turned on two-factor.",
  });
  recoveryField.hidden = true;
  const toggle = h("button", { type: "button", class: "link" }, "Use a recovery code instead");
  toggle.addEventListener("click", () => {
    recovery = !recovery;
    codeField.hidden = recovery;
    recoveryField.hidden = !recovery;
    codeField.querySelector("input").required = !recovery;
    recoveryField.querySelector("input").required = recovery;
    toggle.textContent = recovery ? "Use an authentication code instead" : "Use a recovery code instead";
    (recovery ? recoveryField : codeField).querySelector("input").focus();
  });
  const form = h("form", {}, codeField, recoveryField, h("button", { class: "primary" }, "Continue"));
  onSubmit(form, async (values) => {
    const factor = recovery ? { recovery_code: values.recovery_code } : { code: values.code };
    const body = { mfa_token: mfaToken, ...factor, ...device() };
    const pair = await api.post("/v1/auth/login/totp", body, { auth: false });
    session.save(pair);
  });
  const heading = h("h2", { tabindex: "-1" }, "Two-factor check");
  container.replaceChildren(
    heading,
    h("p", {}, "This account has two-factor authentication on."),
    form,
    h("p", {}, toggle),
  );
  codeField.querySelector("input").focus();
}

// A sign-in the server held as unusual (far from the last one, or from a risky address),
// of an account without two-factor: it sent a one-time code by e-mail or SMS.
function codeStep(container, challenge) {
  const where = challenge.factor === "sms" ? "by SMS to your phone" : "to your e-mail address";
  const codeField = field("Sign-in code", {
    name: "code",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    maxlength: 6,
    required: true,
    hint: `The six digits we just sent ${where}.`,
  });
  const form = h("form", {}, codeField, h("button", { class: "primary" }, "Continue"));
  onSubmit(form, async (values) => {
    const body = { mfa_token: challenge.mfa_token, code: values.code, ...device() };
    session.save(await api.post("/v1/auth/login/step-up", body, { auth: false }));
  });
  container.replaceChildren(
    h("h2", { tabindex: "-1" }, "Confirm it is you"),
    h("p", {}, `This sign-in looks unusual, so we sent a code ${where}.`),
    form,
  );
  codeField.querySelector("input").focus();
}

function registerView(main) {
  const form = h(
    "form",
    {},
    field("Name", {
      name: "name",
      autocomplete: "name",
      maxlength: 80,
      hint: "Shown to the people you talk to. Optional: you can set it later.",
    }),
    field("Email", { name: "email", type: "email", autocomplete: "email", required: true }),
    field("Password", {
      name: "password",
      type: "password",
      autocomplete: "new-password",
      required: true,
      hint: "A long passphrase is best; common passwords are refused.",
    }),
    h("button", { class: "primary" }, "Create account"),
  );
  onSubmit(form, async (values) => {
    const body = { email: values.email, password: values.password };
    const answer = await api.post("/v1/auth/register", body, { auth: false });
    remember({ email: values.email, name: values.name.trim() || null, sent: answer.detail });
    location.hash = "#/verify";
  });
  main.append(
    h("h1", {}, "Create an account"),
    form,
    codeNote(),
    h("p", {}, "Already have an account? ", h("a", { href: "#/login" }, "Sign in"), "."),
    demoNote(),
  );
}

async function nameTheProfile(pair, name) {
  // Set with the new tokens before they are kept: keeping them moves the person on.
  try {
    await api.patch(
      "/v1/profile",
      { display_name: name },
      { auth: false, headers: { Authorization: `Bearer ${pair.access_token}` } },
    );
  } catch (error) {
    showError(error);
  }
}

function verifyView(main) {
  const remembered = pending();
  const form = h(
    "form",
    {},
    field("Email", { name: "email", type: "email", autocomplete: "email", required: true, value: remembered.email }),
    field("Code", {
      name: "code",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      maxlength: 6,
      required: true,
      hint: "The six digits from the e-mail.",
    }),
    h("button", { class: "primary" }, "Verify"),
  );
  onSubmit(form, async (values) => {
    const pair = await api.post(
      "/v1/auth/verify-email",
      { email: values.email, code: values.code, ...device() },
      { auth: false },
    );
    const name = pending().name;
    if (name) await nameTheProfile(pair, name);
    sessionStorage.removeItem(PENDING);
    session.save(pair);
  });
  const resend = h("button", { type: "button" }, "Send a new code");
  resend.addEventListener("click", async () => {
    const email = form.elements.namedItem("email");
    if (!email.value) {
      email.setAttribute("aria-invalid", "true");
      showError(new Error("Email: enter the address to send the code to."));
      email.focus();
      return;
    }
    resend.disabled = true;
    try {
      const answer = await api.post("/v1/auth/verify-email/resend", { email: email.value }, { auth: false });
      remember({ email: email.value });
      notify(answer.detail);
    } catch (error) {
      showError(error, form);
    } finally {
      resend.disabled = false;
    }
  });
  // What registering answered, said once here (the alert region is cleared on the way).
  const sent = remembered.sent ? h("p", { role: "status" }, remembered.sent) : null;
  if (remembered.sent) remember({ sent: null });
  main.append(
    h("h1", {}, "Verify your e-mail"),
    sent,
    form,
    h("p", { class: "actions" }, resend),
    codeNote(),
    h("p", {}, "Verified already? ", h("a", { href: "#/login" }, "Sign in"), "."),
    demoNote(),
  );
}

export function render(main, params) {
  if (params.route === "/register") registerView(main);
  else if (params.route === "/verify") verifyView(main);
  else loginView(main);
}
