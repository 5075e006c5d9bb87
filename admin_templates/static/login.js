// A dashboard URL may carry the token in its fragment (never sent to the server):
// fill the form with it, drop it from the address bar and sign in.
(function () {
  "use strict";
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (!match) return;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  var field = document.getElementById("token");
  field.value = decodeURIComponent(match[1]);
  document.getElementById("login-form").submit();
})();
