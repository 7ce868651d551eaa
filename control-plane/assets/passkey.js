// Passkeys: the pages' only script. A form marked data-webauthn="create" or "get" carries the
// options the server made (data-options, JSON); on submit the browser is asked for a passkey,
// and its answer goes to the server in the form's "credential" field. Without this script
// (or WebAuthn) the rest of every page works as before.
"use strict";
(function () {
  function decode(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function encode(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creation(options) {
    var p = options.publicKey;
    p.challenge = decode(p.challenge);
    p.user.id = decode(p.user.id);
    (p.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: p };
  }
  function request(options) {
    var p = options.publicKey;
    p.challenge = decode(p.challenge);
    (p.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: p };
  }
  function created(c) {
    return {
      id: c.id,
      rawId: encode(c.rawId),
      type: c.type,
      extensions: c.getClientExtensionResults(),
      response: {
        attestationObject: encode(c.response.attestationObject),
        clientDataJSON: encode(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : []
      }
    };
  }
  function asserted(c) {
    return {
      id: c.id,
      rawId: encode(c.rawId),
      type: c.type,
      extensions: c.getClientExtensionResults(),
      response: {
        authenticatorData: encode(c.response.authenticatorData),
        clientDataJSON: encode(c.response.clientDataJSON),
        signature: encode(c.response.signature),
        userHandle: c.response.userHandle ? encode(c.response.userHandle) : null
      }
    };
  }
  function fail(form, message) {
    var box = form.querySelector("[data-webauthn-error]");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var button = form.querySelector("button");
    if (!window.PublicKeyCredential) {
      if (button) button.disabled = true;
      fail(form, "This browser cannot use passkeys.");
      return;
    }
    form.addEventListener("submit", function (ev) {
      if (form.dataset.ready === "1") return;
      ev.preventDefault();
      var options = JSON.parse(form.dataset.options);
      var create = form.dataset.webauthn === "create";
      var asked = create
        ? navigator.credentials.create(creation(options))
        : navigator.credentials.get(request(options));
      asked.then(function (c) {
        form.querySelector("input[name=credential]").value = JSON.stringify(create ? created(c) : asserted(c));
        form.dataset.ready = "1";
        form.submit();
      }, function () {
        fail(form, "No passkey was used. Try again, or use another way.");
      });
    });
  });
})();
