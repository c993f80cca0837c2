// The account screen (#/account): profile, settings, push notifications on this device,
// sessions, two-factor authentication and signing out.
//
// Accessible names (the browser tests select by these):
//   h1 "Account"; h2 "Profile", "Settings", "Notifications", "Sessions", "Two-factor authentication"
//   Profile: fields "Display name", "Username", "Bio", "Pronouns", "Who can see my profile";
//            button "Save profile"
//   Settings: checkboxes "Send read receipts", "Show when I am typing"; selects "Who sees when I am online",
//             "Who sees when I was last online", "Theme"; button "Save settings"
//   Notifications: checkbox "Push notifications on this device"
//   Sessions: list "Sessions" of items, the current one marked "This device"; others a button "End session"
//   Two-factor (off): button "Turn on two-factor" → text "Secret", link "Open in an authenticator app",
//             field "Code from your app", button "Confirm" → list "Recovery codes", button "Done"
//   Two-factor (on): field "Authentication or recovery code", button "Turn off two-factor"
//   link "Analytics dashboard" (platform administrators only: /admin/analytics)
//   button "Sign out"

import { api } from "../api.js";
import { applyTheme, checkbox, field, h, notify, onSubmit, showError, when } from "../ui.js";
import * as push from "../push.js";
import { signOut } from "./auth.js";

const AUDIENCES = [
  ["everyone", "Everyone"],
  ["contacts", "My contacts"],
  ["nobody", "Nobody"],
];

/** The fields of `values` that differ from `before`, empty text standing for null where `nullable`. */
function changes(values, before, nullable = []) {
  const out = {};
  for (const [name, value] of Object.entries(values)) {
    const wanted = nullable.includes(name) && value === "" ? null : value;
    if (wanted !== (before[name] ?? (nullable.includes(name) ? null : undefined))) out[name] = wanted;
  }
  return out;
}

function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

function profileSection(profile) {
  let current = profile;
  const form = h(
    "form",
    {},
    field("Display name", {
      name: "display_name",
      autocomplete: "name",
      maxlength: 80,
      required: true,
      value: profile.display_name,
    }),
    field("Username", {
      name: "username",
      autocomplete: "username",
      maxlength: 30,
      required: true,
      value: profile.username,
      hint: "3 to 30 letters, digits, dots or underscores; people can find you by it.",
    }),
    field("Bio", { tag: "textarea", name: "bio", maxlength: 500, rows: 3, value: profile.bio }),
    field("Pronouns", { name: "pronouns", maxlength: 40, value: profile.pronouns }),
    field("Who can see my profile", {
      tag: "select",
      name: "profile_visibility",
      value: profile.profile_visibility,
      options: [
        ["public", "Everyone"],
        ["contacts", "My contacts"],
        ["private", "Only me"],
      ],
    }),
    h("button", { class: "primary" }, "Save profile"),
  );
  onSubmit(form, async (values) => {
    const wanted = changes(values, current, ["pronouns"]);
    if (!Object.keys(wanted).length) {
      notify("Nothing changed.");
      return;
    }
    current = await api.patch("/v1/profile", wanted);
    notify("Profile saved.");
  });
  return card("Profile", form);
}

function settingsSection(settings) {
  let current = settings;
  const form = h(
    "form",
    {},
    checkbox("Send read receipts", { name: "read_receipts_enabled", checked: settings.read_receipts_enabled }),
    checkbox("Show when I am typing", {
      name: "typing_indicators_enabled",
      checked: settings.typing_indicators_enabled,
    }),
    field("Who sees when I am online", {
      tag: "select",
      name: "online_status_visibility",
      value: settings.online_status_visibility,
      options: AUDIENCES,
    }),
    field("Who sees when I was last online", {
      tag: "select",
      name: "last_seen_visibility",
      value: settings.last_seen_visibility,
      options: AUDIENCES,
    }),
    field("Theme", {
      tag: "select",
      name: "theme",
      value: settings.theme,
      options: [
        ["system", "As the system"],
        ["light", "Light"],
        ["dark", "Dark"],
      ],
    }),
    h("button", { class: "primary" }, "Save settings"),
  );
  onSubmit(form, async (values) => {
    const wanted = changes(values, current);
    if (!Object.keys(wanted).length) {
      notify("Nothing changed.");
      return;
    }
    current = await api.patch("/v1/settings", wanted);
    applyTheme(current.theme);
    notify("Settings saved.");
  });
  return card("Settings", form);
}

function pushSection() {
  const status = h("p", { class: "muted" });
  const box = checkbox("Push notifications on this device", { name: "push" });
  const input = box.querySelector("input");
  const section = card(
    "Notifications",
    h("p", {}, "Get a notification on this device for new messages and contact requests, even with Rapport closed."),
    box,
    status,
  );
  const reason = push.unsupported();
  if (reason) {
    input.disabled = true;
    status.textContent = reason;
    return section;
  }
  input.disabled = true;
  (async () => {
    try {
      await api.get("/v1/push/vapid-public-key", undefined, { auth: false });
    } catch {
      status.textContent = "This server does not send push notifications.";
      return;
    }
    try {
      input.checked = await push.enabled();
    } catch (error) {
      showError(error);
    }
    input.disabled = false;
  })();
  input.addEventListener("change", async () => {
    input.disabled = true;
    try {
      if (input.checked) {
        await push.enable();
        notify("Push notifications are on for this device.");
      } else {
        await push.disable();
        notify("Push notifications are off for this device.");
      }
    } catch (error) {
      input.checked = !input.checked;
      showError(error);
    } finally {
      input.disabled = false;
    }
  });
  return section;
}

function sessionItem(item) {
  const name = item.device_name || `${item.device_type} device`;
  const details = [`Last active ${when(item.last_active_at)}`, item.ip_address].filter(Boolean).join(" · ");
  const li = h(
    "li",
    { class: "item" },
    h(
      "div",
      { class: "who" },
      h("strong", {}, name, " ", item.current ? h("span", { class: "tag" }, "This device") : null),
      item.user_agent ? h("span", { class: "muted" }, item.user_agent) : null,
      h("span", { class: "muted", title: new Date(item.last_active_at).toLocaleString() }, details),
    ),
  );
  if (!item.current) {
    const end = h("button", { type: "button", class: "danger" }, "End session");
    end.addEventListener("click", async () => {
      end.disabled = true;
      try {
        await api.del(`/v1/auth/sessions/${item.id}`);
        li.remove();
        notify(`Signed out ${name}.`);
      } catch (error) {
        end.disabled = false;
        showError(error);
      }
    });
    li.append(h("div", { class: "actions" }, end));
  }
  return li;
}

function sessionsSection(sessions) {
  return card(
    "Sessions",
    h("p", {}, "Where your account is signed in. End a session to sign that device out at once."),
    h("ul", { class: "list", "aria-label": "Sessions" }, sessions.map(sessionItem)),
  );
}

function twoFactorSection(me) {
  const body = h("div", {});
  const section = card("Two-factor authentication", body);

  function showOff() {
    const start = h("button", { type: "button", class: "primary" }, "Turn on two-factor");
    start.addEventListener("click", async () => {
      start.disabled = true;
      try {
        enrol(await api.post("/v1/auth/totp"));
      } catch (error) {
        start.disabled = false;
        showError(error);
      }
    });
    body.replaceChildren(
      h("p", {}, "Off. With it on, signing in also asks for a code from an authenticator app on your phone."),
      start,
    );
  }

  function enrol(enrolment) {
    const form = h(
      "form",
      {},
      field("Code from your app", {
        name: "code",
        inputmode: "numeric",
        autocomplete: "one-time-code",
        maxlength: 6,
        required: true,
      }),
      h("button", { class: "primary" }, "Confirm"),
    );
    onSubmit(form, async (values) => {
      const answer = await api.post("/v1/auth/totp/confirm", { code: values.code });
      showCodes(answer.recovery_codes);
    });
    body.replaceChildren(
      h(
        "p",
        {},
        "Add Rapport to your authenticator app with this secret (or open the link on your phone), " +
          "then enter the code it shows.",
      ),
      h("p", {}, h("strong", {}, "Secret: "), h("code", { class: "secret" }, enrolment.secret)),
      h("p", {}, h("a", { href: enrolment.otpauth_uri }, "Open in an authenticator app")),
      h("p", {}, h("strong", {}, "Setup link: "), h("code", { class: "secret" }, enrolment.otpauth_uri)),
      form,
    );
    form.querySelector("input").focus();
  }

  function showCodes(codes) {
    const done = h("button", { type: "button" }, "Done");
    done.addEventListener("click", showOn);
    body.replaceChildren(
      h("p", { role: "status" }, "Two-factor authentication is on."),
      h("h3", { id: "recovery-codes" }, "Recovery codes"),
      h(
        "p",
        {},
        "Keep these somewhere safe. Each one signs you in once if you lose your phone; they are shown only now.",
      ),
      h(
        "ol",
        { class: "codes", "aria-labelledby": "recovery-codes" },
        codes.map((code) => h("li", {}, h("code", {}, code))),
      ),
      done,
    );
    done.focus();
  }

  function showOn() {
    const form = h(
      "form",
      {},
      field("Authentication or recovery code", { name: "factor", autocomplete: "one-time-code", required: true }),
      h("button", { class: "danger" }, "Turn off two-factor"),
    );
    onSubmit(form, async (values) => {
      const factor = values.factor.trim();
      await api.post("/v1/auth/totp/disable", /^\d{6}$/.test(factor) ? { code: factor } : { recovery_code: factor });
      notify("Two-factor authentication is off.");
      showOff();
    });
    body.replaceChildren(h("p", {}, "On: signing in asks for a code from your authenticator app."), form);
  }

  if (me.two_factor_enabled) showOn();
  else showOff();
  return section;
}

function failed(title, error) {
  const section = card(title, h("p", { class: "muted" }, "This part could not be loaded."));
  showError(error);
  return section;
}

export async function render(main) {
  const out = h("button", { type: "button" }, "Sign out");
  out.addEventListener("click", async () => {
    out.disabled = true;
    await signOut();
  });
  main.append(h("h1", {}, "Account"));
  const [me, profile, settings, sessions] = await Promise.allSettled([
    api.get("/v1/auth/me"),
    api.get("/v1/profile"),
    api.get("/v1/settings"),
    api.all("/v1/auth/sessions"),
  ]);
  const part = (result, title, build) =>
    result.status === "fulfilled" ? build(result.value) : failed(title, result.reason);
  main.append(
    me.status === "fulfilled"
      ? h("p", {}, "Signed in as ", h("strong", {}, me.value.email || me.value.phone_number || ""))
      : "",
    part(profile, "Profile", profileSection),
    part(settings, "Settings", settingsSection),
    pushSection(),
    part(sessions, "Sessions", sessionsSection),
    part(me, "Two-factor authentication", twoFactorSection),
    // The dashboard is a page of its own, with its own sign-in; the API refuses anyone else.
    me.status === "fulfilled" && me.value.is_admin
      ? h("p", {}, h("a", { href: "/admin/analytics" }, "Analytics dashboard"))
      : "",
    h("p", {}, out),
  );
}
