// Passkeys (WebAuthn) on top of app.js: add one while signed in, sign in with one.
//
// Warden sends the ceremony options as JSON with every binary member base64url-encoded,
// and takes the browser's answer back in the same form; these helpers convert both ways.
"use strict";

function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0)).buffer;
}

function toBase64url(buffer) {
  const binary = String.fromCharCode(...new Uint8Array(buffer));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list) {
  return (list ?? []).map((item) => ({ ...item, id: fromBase64url(item.id) }));
}

function creationOptions(options) {
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    user: { ...options.user, id: fromBase64url(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  };
}

function requestOptions(options) {
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  };
}

function credentialJson(credential) {
  const response = {};
  for (const name of ["clientDataJSON", "attestationObject", "authenticatorData", "signature"]) {
    if (credential.response[name]) response[name] = toBase64url(credential.response[name]);
  }
  if (credential.response.userHandle) {
    response.userHandle = toBase64url(credential.response.userHandle);
  }
  if (credential.response.getTransports) response.transports = credential.response.getTransports();
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
  };
}

function renderPasskeys(passkeys) {
  $("passkeys").replaceChildren(
    ...passkeys.map((passkey) => {
      const item = document.createElement("li");
      item.dataset.testid = "passkey";
      item.dataset.passkeyId = passkey.id;
      const used = passkey.last_used_at ? new Date(passkey.last_used_at).toLocaleString() : "never";
      item.textContent = `${passkey.name}, last used ${used}`;
      return item;
    }),
  );
}

async function loadPasskeys() {
  renderPasskeys(await api("/api/v1/auth/passkeys"));
}

async function addPasskey() {
  const started = await api("/api/v1/auth/passkeys/register/options", { method: "POST" });
  const credential = await navigator.credentials.create({
    publicKey: creationOptions(started.options),
  });
  const body = { ceremony: started.ceremony, credential: credentialJson(credential) };
  if (formValue("passkey-name")) body.name = formValue("passkey-name");
  await api("/api/v1/auth/passkeys/register/verify", { method: "POST", body });
  await loadPasskeys();
  showStatus("Passkey added.", "ok");
}

/**
 * Sign in with a passkey: no email, the authenticator offers the passkeys it holds. After a
 * password login answered 202, the passkey answers that login's challenge instead.
 */
async function signInWithPasskey() {
  const start = challenge ? { challenge } : {};
  const started = await api("/api/v1/auth/passkeys/authenticate/options", {
    method: "POST",
    body: start,
    refreshOn401: false,
  });
  const credential = await navigator.credentials.get({
    publicKey: requestOptions(started.options),
  });
  const body = { ...start, ceremony: started.ceremony, credential: credentialJson(credential) };
  keepCsrf(
    await api("/api/v1/auth/passkeys/authenticate/verify?mode=cookie", {
      method: "POST",
      body,
      refreshOn401: false,
    }),
  );
  challenge = null; // app.js: the login's challenge, now answered
  $("second-factor-form").hidden = true;
  await loadAccount();
  await loadPasskeys();
  showStatus("Signed in with a passkey.", "ok");
}

$("add-passkey").addEventListener("click", () => run(addPasskey));
$("passkey-sign-in").addEventListener("click", () => run(signInWithPasskey));
$("load-passkeys").addEventListener("click", () =>
  run(async () => {
    await loadPasskeys();
    showStatus("Passkeys loaded.", "ok");
  }),
);
