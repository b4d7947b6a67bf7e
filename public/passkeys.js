// Passkey ceremonies: the part of WebAuthn that must run in the browser.
//
// A passkey form (app/src/pages/passkeys.rs) carries its purpose and the URL of its options. Its
// button asks the server for the options (which keeps the challenge in the session), hands them to
// the browser's authenticator, puts the answer in the form's hidden `credential` field and submits
// the form: a plain post, which the server answers like every form, with a redirect (errors come
// back as `?error=` on the form's page). Listening on the document keeps this working whether the
// form was rendered by the server or by the hydrated app.
(() => {
  "use strict";

  // The pages show passkey buttons only on a document marked so (style/main.css).
  document.documentElement.classList.add("passkeys-js");

  const say = (form, text) => {
    const status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = text;
  };

  const supported = () =>
    typeof window.PublicKeyCredential === "function" &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

  async function run(form, button) {
    if (!supported()) {
      say(form, "This browser cannot use passkeys.");
      return;
    }
    const purpose = form.dataset.passkey;
    button.disabled = true;
    say(form, "Waiting for your passkey…");
    try {
      const body = new URLSearchParams({
        csrf_token: form.elements.csrf_token.value,
        purpose,
        next: form.elements.next ? form.elements.next.value : "",
      });
      const response = await fetch(form.dataset.options, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const start = await response.json();
      if (start.go) {
        window.location.assign(start.go);
        return;
      }
      const options = JSON.parse(start.options);
      const credential =
        purpose === "register"
          ? await navigator.credentials.create({
              publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
            })
          : await navigator.credentials.get({
              publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
            });
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      say(form, "Checking…");
      form.submit();
    } catch (error) {
      button.disabled = false;
      say(
        form,
        error && error.name === "NotAllowedError"
          ? "No passkey was used (cancelled, timed out, or none for this site). Try again."
          : error && error.name === "InvalidStateError"
            ? "This device already holds a passkey for your account."
            : `The passkey could not be used: ${(error && error.message) || error}`,
      );
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-passkey-start]");
    const form = button && button.closest("form[data-passkey]");
    if (!form) return;
    event.preventDefault();
    run(form, button);
  });

  // Enter in a field (a new passkey's name) starts the ceremony rather than posting an empty answer.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.passkey) return;
    if (form.elements.credential.value) return;
    event.preventDefault();
    const button = form.querySelector("[data-passkey-start]");
    if (button && !button.disabled) run(form, button);
  });
})();
