// Small DOM helpers shared by the views: elements without innerHTML (text is always text,
// never markup: what people write cannot inject anything), forms, and the error banner.

import { ApiError } from "./api.js";

/**
 * h("button", { class: "primary", onclick: fn, "aria-label": "Send" }, "Send")
 * Attributes starting with "on" become listeners; `null`/`false` attributes are left out;
 * children are nodes or strings (strings become text nodes).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

let uniqueIds = 0;

/** An id no other element of the page has (for aria-describedby and the like). */
export function uniqueId(prefix = "r") {
  uniqueIds += 1;
  return `${prefix}-${uniqueIds}`;
}

/**
 * A labelled field: a <label> naming the control (by `for`, so that its name is the label's
 * text alone), the control, and an optional line of help (`hint`) that describes it.
 * `tag: "textarea"` or `tag: "select"` (with `options: [[value, text], …]`) make other
 * controls; `value` is the control's initial value.
 */
export function field(label, attributes = {}) {
  const { tag, options, hint, value, ...rest } = attributes;
  const id = rest.id || uniqueId("field");
  const hintId = hint ? `${id}-hint` : null;
  const own = { ...rest, id, "aria-describedby": hintId };
  let control;
  if (tag === "textarea") {
    control = h("textarea", own);
  } else if (tag === "select") {
    control = h("select", own, (options || []).map(([v, text]) => h("option", { value: v }, text)));
  } else {
    control = h("input", own);
  }
  if (value !== undefined && value !== null) control.value = value;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hintId ? h("span", { id: hintId, class: "hint" }, hint) : null,
  );
}

/** A labelled checkbox: the box before its text, both clickable. */
export function checkbox(label, attributes = {}) {
  return h("label", { class: "check" }, h("input", { type: "checkbox", ...attributes }), h("span", {}, label));
}

/**
 * A form that submits with Enter or its button: the default is prevented, the submit
 * buttons are disabled while `action(values, form)` runs, and its error is shown with the
 * invalid fields marked. Answers the form.
 */
export function onSubmit(form, action) {
  // Rapport judges the input, and its problem names each invalid field in the alert
  // region, where a screen reader hears it (the browser's own bubbles are not announced).
  form.noValidate = true;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = [...form.querySelectorAll("button:not([type=button])")];
    buttons.forEach((button) => (button.disabled = true));
    for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
    try {
      clearAlerts();
      await action(values(form), form);
    } catch (error) {
      showError(error, form);
    } finally {
      buttons.forEach((button) => (button.disabled = false));
    }
  });
  return form;
}

/** Apply the person's theme ("system", "light" or "dark") to the page, and remember it. */
export function applyTheme(theme) {
  const chosen = theme === "light" || theme === "dark" ? theme : "system";
  document.documentElement.dataset.theme = chosen;
  localStorage.setItem("rapport.theme", chosen);
}

/** The form's fields as an object of strings (checkboxes as booleans). */
export function values(form) {
  const out = {};
  for (const element of form.elements) {
    if (!element.name) continue;
    out[element.name] = element.type === "checkbox" ? element.checked : element.value;
  }
  return out;
}

/** The form control an invalid field of a problem is about (by its name), if any. */
function controlFor(form, item) {
  if (!form) return null;
  const names = (item.loc || item.location || []).filter((part) => part !== "body" && part !== "query");
  for (const name of names.reverse()) {
    const control = form.elements.namedItem(String(name));
    if (control && control.nodeType === 1) return control;
  }
  return null;
}

function labelOf(control) {
  const label = control && control.labels && control.labels[0];
  return label ? label.textContent : null;
}

/**
 * What the person reads for an error: the API's problem detail, then each invalid field
 * (named by its label when `form` holds it).
 */
export function describe(error, form = null) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  const problem = error.problem;
  const errors = problem.errors || [];
  // With the fields listed one by one, the title says the rest (the detail repeats them).
  const lines = [errors.length ? problem.title || problem.detail : problem.detail || problem.title];
  if (!lines[0]) lines[0] = `Error ${error.status}`;
  for (const item of errors) {
    const where =
      labelOf(controlFor(form, item)) ||
      (item.loc || item.location || []).filter((part) => part !== "body").join(".");
    lines.push(where ? `${where}: ${item.msg || item.message}` : item.msg || item.message);
  }
  return lines.join("\n");
}

/**
 * Show an error in the page's alert region (announced by screen readers). With `form`,
 * the fields the problem names are marked invalid and the first one is focused.
 */
export function showError(error, form = null) {
  const alerts = document.getElementById("alerts");
  const text = describe(error, form);
  if (form && error instanceof ApiError) {
    const invalid = (error.problem.errors || []).map((item) => controlFor(form, item)).filter(Boolean);
    invalid.forEach((control) => control.setAttribute("aria-invalid", "true"));
    if (invalid.length) invalid[0].focus();
  }
  const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss" }, "×");
  const item = h("div", { class: "alert error" }, h("p", {}, text), close);
  close.addEventListener("click", () => item.remove());
  alerts.replaceChildren(item);
  return item;
}

/** A short confirmation in the alert region, gone after a few seconds. */
export function notify(text) {
  const alerts = document.getElementById("alerts");
  const item = h("div", { class: "alert info" }, h("p", {}, text));
  alerts.replaceChildren(item);
  setTimeout(() => item.remove(), 4000);
}

export function clearAlerts() {
  document.getElementById("alerts").replaceChildren();
}

/** Run an async action, showing its error if it fails; answers its result or undefined. */
export async function attempt(action) {
  try {
    clearAlerts();
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

/** Relative time for lists ("5 min ago"), absolute in the title attribute. */
export function when(iso) {
  const date = new Date(iso);
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  if (Math.abs(seconds) < 60) return format.format(-seconds, "second");
  if (Math.abs(seconds) < 3600) return format.format(-Math.round(seconds / 60), "minute");
  if (Math.abs(seconds) < 86400) return format.format(-Math.round(seconds / 3600), "hour");
  return date.toLocaleDateString();
}
