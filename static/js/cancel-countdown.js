/* Cancellation window: count down the time left to ask to cancel (K-B1).
 *
 * Progressive enhancement: the server renders the time left and the closing time, and refuses
 * a request after the window whatever the page says. This only keeps the figure live and, at
 * zero, hides the button and says the window has closed. The server's clock is the reference:
 * `data-countdown-now` and `data-countdown-to` are seconds since the epoch on the server.
 */
(function () {
  "use strict";

  var clock = document.querySelector("[data-countdown-to]");
  if (!clock) {
    return;
  }
  var endsAt = Number(clock.getAttribute("data-countdown-to")) * 1000;
  var serverNow = Number(clock.getAttribute("data-countdown-now")) * 1000;
  if (!endsAt || !serverNow) {
    return;
  }
  var offset = serverNow - Date.now(); // the server's clock minus this device's
  var timer = null;

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function expire() {
    var actions = document.querySelectorAll("[data-countdown-action]");
    var notes = document.querySelectorAll("[data-countdown-expired]");
    for (var i = 0; i < actions.length; i++) {
      actions[i].hidden = true;
      actions[i].style.display = "none"; // `.actions` is display: flex, which beats [hidden]
    }
    for (var j = 0; j < notes.length; j++) {
      notes[j].hidden = false;
    }
  }

  function render() {
    var left = Math.max(0, Math.floor((endsAt - (Date.now() + offset)) / 1000));
    clock.textContent = Math.floor(left / 60) + " min " + pad(left % 60) + " s";
    if (left === 0) {
      if (timer !== null) {
        window.clearInterval(timer);
      }
      expire();
      return false;
    }
    return true;
  }

  if (render()) {
    timer = window.setInterval(render, 1000);
  }
})();
