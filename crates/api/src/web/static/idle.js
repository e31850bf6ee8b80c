// phivault: the idle-logoff warning. The server ends a session after the idle timeout its
// page states (data-idle-seconds on <body>); shortly before, this warns with a countdown
// and offers to stay signed in; at the timeout it removes the page (so no record stays on
// screen) and goes to the sign-in page, which brings the person back here afterwards.
// No inline script, no storage, nothing but this page's own session.
(function () {
  "use strict";
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "", 10);
  if (!(idle > 0)) { return; }
  var csrfField = document.querySelector("form.signout input[name=csrf]");
  var csrf = csrfField ? csrfField.value : "";
  var warnBefore = Math.min(60, Math.floor(idle / 2));
  var deadline = Date.now() + idle * 1000;
  var dialog = null;
  var countdown = null;
  var stayButton = null;
  var before = null;

  function signInAgain() {
    var back = location.pathname;
    // The page goes first: nothing of the record survives on screen or in the DOM.
    body.replaceChildren();
    document.title = "Signed out · phivault";
    location.replace("/login?next=" + encodeURIComponent(back));
  }

  function hideWarning() {
    if (dialog) { dialog.remove(); dialog = null; countdown = null; stayButton = null; }
    // Back to where the person was before the warning took the focus.
    if (before && document.contains(before) && before.focus) { before.focus(); }
    before = null;
  }

  // The dialog is modal: while it shows, Tab stays on its one control, and Escape means
  // "stay signed in" (the only way out of it short of the timeout).
  document.addEventListener("keydown", function (event) {
    if (!dialog) { return; }
    if (event.key === "Tab") {
      event.preventDefault();
      stayButton.focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      keepAlive();
    }
  }, true);

  function showWarning() {
    if (dialog) { return; }
    dialog = document.createElement("div");
    dialog.className = "idle-warning";
    dialog.setAttribute("role", "alertdialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-labelledby", "idle-title");
    dialog.setAttribute("aria-describedby", "idle-text");
    var title = document.createElement("h2");
    title.id = "idle-title";
    title.textContent = "You will be signed out soon";
    var text = document.createElement("p");
    text.id = "idle-text";
    countdown = document.createElement("strong");
    text.append("To protect patients' privacy you will be signed out in ", countdown,
      " seconds because nothing has been done on this page.");
    var stay = document.createElement("button");
    stay.type = "button";
    stay.textContent = "Stay signed in";
    stay.addEventListener("click", keepAlive);
    dialog.append(title, text, stay);
    before = document.activeElement;
    stayButton = stay;
    body.append(dialog);
    stay.focus();
  }

  function keepAlive() {
    fetch("/session/keepalive", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf }
    }).then(function (response) {
      if (response.status === 204) {
        deadline = Date.now() + idle * 1000;
        hideWarning();
      } else {
        signInAgain();
      }
    }, signInAgain);
  }

  function tick() {
    var left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) { signInAgain(); return; }
    if (left <= warnBefore) {
      showWarning();
      countdown.textContent = String(left);
    }
    setTimeout(tick, 1000);
  }
  setTimeout(tick, 1000);
})();
