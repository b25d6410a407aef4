// GoKart dashboard: the eye icon (reveal secrets) and copy buttons. Everything works without it.
(function () {
  "use strict";
  function reveal(button) {
    var shown = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", shown ? "true" : "false");
    document.querySelectorAll("[data-secret]").forEach(function (input) {
      input.type = shown ? "text" : "password";
    });
    document.querySelectorAll("[data-secret-block]").forEach(function (block) {
      block.hidden = !shown;
    });
  }
  function copy(button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    var done = function () {
      button.classList.add("copied");
      button.setAttribute("title", "Copied");
      setTimeout(function () { button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done);
    } else {
      var type = input.type;
      input.type = "text";
      input.select();
      document.execCommand("copy");
      input.type = type;
      done();
    }
  }
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-reveal], [data-copy]");
    if (!target) return;
    event.preventDefault();
    if (target.hasAttribute("data-reveal")) reveal(target); else copy(target);
  });
  // The eye is a link (it works without script); as a button it also answers the space bar.
  document.addEventListener("keydown", function (event) {
    if (event.key === " " && event.target.matches("[data-reveal]")) {
      event.preventDefault();
      reveal(event.target);
    }
  });
})();
