// Warden in cookie mode from a page on another origin: plain fetch, no build step.
//
// The access and refresh tokens live in HttpOnly cookies that this script never sees.
// It keeps only the two CSRF tokens, in memory, and sends them in X-CSRF-TOKEN:
//   csrf_token          on every unsafe request (POST, PUT, PATCH, DELETE),
//   refresh_csrf_token  on POST /auth/refresh.
// After a reload they are fetched again from GET /auth/csrf.
"use strict";

const API = (new URLSearchParams(location.search).get("api") || "http://localhost:8000")
  .replace(/\/+$/, "");

let csrf = null;
let challenge = null; // a login's second-factor challenge (202), until answered
let pendingFactor = null; // the authenticator app being set up
let refreshCsrf = null;
let refreshing = null; // the refresh in flight, shared by every request that got a 401
let generation = 0; // bumped whenever the tokens change, i.e. after every refresh

const $ = (id) => document.getElementById(id);

// ---- talking to the API ------------------------------------------------------------

/** A problem+json answer (RFC 9457): `status`, `code`, `detail`. */
class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_error";
  }
}

function keepCsrf(body) {
  csrf = body.csrf_token ?? null;
  refreshCsrf = body.refresh_csrf_token ?? null;
  generation += 1;
}

function send(path, method, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-TOKEN"] = csrf;
  return fetch(API + path, {
    method,
    credentials: "include", // send and accept the cookies
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Trade the refresh cookie for new cookies; parallel callers share one request. */
function refresh() {
  if (!refreshCsrf) return Promise.resolve(false);
  refreshing ??= fetch(`${API}/api/v1/auth/refresh`, {
    method: "POST",
    credentials: "include",
    headers: { "X-CSRF-TOKEN": refreshCsrf },
  })
    .then(async (response) => {
      keepCsrf(response.ok ? await response.json() : {}); // failed: the session is over
      return response.ok;
    })
    .catch(() => false)
    .finally(() => { refreshing = null; });
  return refreshing;
}

// 401s about what the user typed, not about the session: no refresh, no sign-out.
const INPUT_PROBLEMS = ["invalid_code", "invalid_challenge", "invalid_credentials"];

async function aboutTheSession(response) {
  const problem = await response.clone().json().catch(() => ({}));
  return !INPUT_PROBLEMS.includes(problem.code);
}

/** Call the API; on 401 refresh once and retry. Returns the JSON body, throws ApiError. */
async function api(path, { method = "GET", body, refreshOn401 = true } = {}) {
  const sentIn = generation;
  let response = await send(path, method, body);
  // A 401 to a request sent before the last refresh just retries with the new cookies.
  if (
    response.status === 401 &&
    refreshOn401 &&
    (await aboutTheSession(response)) &&
    (sentIn !== generation || (await refresh()))
  ) {
    response = await send(path, method, body);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// ---- the page ----------------------------------------------------------------------

function showStatus(message, kind = "info", code = "") {
  $("status").textContent = message;
  $("status").dataset.kind = kind;
  $("status").dataset.code = code;
}

function showError(error) {
  if (error instanceof ApiError) {
    showStatus(`${error.status} ${error.code}: ${error.message}`, "error", error.code);
  } else {
    // CORS refusals and unreachable servers look the same to a page: a TypeError.
    showStatus(
      `Network error (${error.message}). Is the API running at ${API}, ` +
        `and is ${location.origin} listed in its CORS_ORIGINS?`,
      "error",
      "network_error",
    );
  }
}

function setSignedIn(signedIn) {
  $("auth-state").textContent = signedIn ? "Signed in" : "Signed out";
  if (!signedIn) {
    keepCsrf({});
    renderProfile(null);
    renderSessions([]);
  }
}

/** Run a UI action: errors go to the status area; a final 401 means signed out. */
async function run(action) {
  try {
    await action();
  } catch (error) {
    showError(error);
    if (error.status === 401 && !INPUT_PROBLEMS.includes(error.code)) setSignedIn(false);
  }
}

function renderProfile(user) {
  $("profile-email").textContent = user?.email ?? "";
  $("profile-name").textContent = user?.full_name ?? "";
  $("profile-role").textContent = user?.role ?? "";
  $("profile-verified").textContent = user ? String(user.email_verified) : "";
}

function renderSessions(sessions) {
  $("sessions").replaceChildren(
    ...sessions.map((session) => {
      const item = document.createElement("li");
      item.dataset.testid = "session";
      item.dataset.sessionId = session.id;
      item.dataset.current = String(session.current);
      const seen = new Date(session.last_used_at).toLocaleString();
      item.textContent = `${session.user_agent ?? "unknown client"} from ${session.ip ?? "?"}, last used ${seen} `;
      if (session.current) {
        item.classList.add("current");
        item.append("(this browser)");
      } else {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.textContent = "Revoke";
        revoke.dataset.testid = "revoke-session";
        revoke.addEventListener("click", () => run(() => revokeSession(session.id)));
        item.append(revoke);
      }
      return item;
    }),
  );
}

async function loadProfile() {
  renderProfile(await api("/api/v1/users/me"));
  setSignedIn(true);
}

async function loadSessions() {
  renderSessions(await api("/api/v1/auth/sessions"));
}

async function loadAccount() {
  // In parallel: when the access cookie has expired both get a 401 and share one refresh.
  await Promise.all([loadProfile(), loadSessions()]);
}

async function revokeSession(id) {
  await api(`/api/v1/auth/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  await loadSessions();
  showStatus("Session revoked.", "ok");
}

function formValue(id) {
  return $(id).value.trim();
}

$("register-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const body = { email: formValue("register-email"), password: $("register-password").value };
    if (formValue("register-name")) body.full_name = formValue("register-name");
    const user = await api("/api/v1/auth/register", { method: "POST", body, refreshOn401: false });
    // 201 is the new user; 202 {detail} when the API runs REGISTRATION_ENUMERATION_SAFE.
    showStatus(user.email ? `Registered ${user.email}. You can log in now.` : user.detail, "ok");
  });
});

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const body = { email: formValue("login-email"), password: $("login-password").value };
    const answer = await api("/api/v1/auth/login?mode=cookie", {
      method: "POST",
      body,
      refreshOn401: false,
    });
    $("login-password").value = "";
    if (answer.challenge) {
      // 202: the account has a second factor; no cookie yet until a code answers this.
      challenge = answer.challenge;
      $("second-factor-form").hidden = false;
      $("second-factor-code").focus();
      showStatus("Enter the code from your authenticator app.", "info");
      return;
    }
    keepCsrf(answer);
    await loadAccount();
    showStatus("Logged in.", "ok");
  });
});

$("second-factor-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const body = { challenge, code: formValue("second-factor-code") };
    keepCsrf(
      await api("/api/v1/auth/login/second-factor?mode=cookie", {
        method: "POST",
        body,
        refreshOn401: false,
      }),
    );
    challenge = null;
    $("second-factor-code").value = "";
    $("second-factor-form").hidden = true;
    await loadAccount();
    showStatus("Logged in.", "ok");
  });
});

// ---- setting up an authenticator app ------------------------------------------------

$("totp-start").addEventListener("click", () =>
  run(async () => {
    const enrolment = await api("/api/v1/auth/factors/totp", {
      method: "POST",
      body: { password: $("totp-password").value, label: "Browser example" },
    });
    $("totp-password").value = "";
    pendingFactor = enrolment.id;
    // An <img> shows the SVG without running anything in it.
    $("totp-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(enrolment.qr_svg)}`;
    $("totp-secret").textContent = enrolment.secret;
    $("totp-enrolment").hidden = false;
    showStatus("Scan the code, then confirm with a code from the app.", "info");
  }),
);

$("totp-confirm-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const { recovery_codes: codes } = await api(
      `/api/v1/auth/factors/totp/${encodeURIComponent(pendingFactor)}/confirm`,
      { method: "POST", body: { code: formValue("totp-code") } },
    );
    // Shown this once: the API keeps only their hashes.
    $("recovery-codes").replaceChildren(
      ...codes.map((code) => {
        const item = document.createElement("li");
        item.textContent = code;
        return item;
      }),
    );
    $("totp-enrolment").hidden = true;
    $("totp-secret").textContent = "";
    $("totp-code").value = "";
    await loadSessions(); // confirming ended the other sessions
    showStatus("Authenticator app set up. Keep the recovery codes: each works once.", "ok");
  });
});

$("load-profile").addEventListener("click", () =>
  run(async () => {
    await loadProfile();
    showStatus("Profile loaded.", "ok");
  }),
);

$("load-sessions").addEventListener("click", () =>
  run(async () => {
    await loadSessions();
    showStatus("Sessions loaded.", "ok");
  }),
);

$("logout").addEventListener("click", () =>
  run(async () => {
    await api("/api/v1/auth/logout", { method: "POST" });
    setSignedIn(false);
    showStatus("Logged out.", "ok");
  }),
);

// ---- identity providers and emailed sign-in --------------------------------------

/** A sign-in answer: cookies and CSRF values, or a 202 second-factor challenge. */
async function signedIn(answer) {
  if (answer.challenge) {
    showStatus(`A second factor is required (${answer.factors.join(", ")}).`, "info", "challenge");
    return;
  }
  keepCsrf(answer);
  await loadAccount();
  showStatus("Signed in.", "ok");
}

async function showProviders() {
  let providers;
  try {
    providers = await api("/api/v1/auth/providers", { refreshOn401: false });
  } catch {
    return; // none configured: the API does not serve the list (404)
  }
  // The provider sends the browser back here; Warden allows only its configured origins.
  const back = location.href.split("#")[0];
  $("providers").replaceChildren(
    ...providers.map((provider) => {
      const link = document.createElement("a");
      link.className = "button";
      link.dataset.testid = `provider-${provider.name}`;
      link.textContent = `Continue with ${provider.title}`;
      link.href =
        `${API}/api/v1/auth/providers/${encodeURIComponent(provider.name)}/authorize` +
        `?return_to=${encodeURIComponent(back)}`;
      return link;
    }),
  );
  $("providers-section").hidden = providers.length === 0;
}

/** Back from a provider: trade the single-use code in the fragment for the cookies. */
async function finishProviderSignIn() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname + location.search); // the code goes once
  if (fragment.get("linked")) showStatus(`Linked ${fragment.get("linked")}.`, "ok");
  if (!fragment.get("code")) return false;
  const body = { code: fragment.get("code") };
  await signedIn(
    await api("/api/v1/auth/providers/sign-in?mode=cookie", { method: "POST", body, refreshOn401: false }),
  );
  return true;
}

$("email-signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const body = { email: formValue("email-signin-email") };
    const answer = await api("/api/v1/auth/email-signin", { method: "POST", body, refreshOn401: false });
    showStatus(answer.detail, "ok", "mailed");
  });
});

$("email-code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const body = { email: formValue("email-signin-email"), code: formValue("email-code") };
    await signedIn(
      await api("/api/v1/auth/email-signin/redeem?mode=cookie", { method: "POST", body, refreshOn401: false }),
    );
    $("email-code").value = "";
  });
});

// On load: the cookies may still hold a session (e.g. after a reload). The CSRF tokens
// were lost with the page, so read them again; null means no cookie session.
async function start() {
  $("api-base").textContent = API;
  await showProviders();
  if (await finishProviderSignIn()) return;
  keepCsrf(await api("/api/v1/auth/csrf", { refreshOn401: false }));
  if (!refreshCsrf) {
    showStatus("Not logged in.", "info");
    return;
  }
  await loadAccount();
  showStatus("Welcome back: session restored.", "ok");
}

run(start);
