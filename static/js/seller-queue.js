/* Seller queue: refresh the order list every 10 s without a full reload.
 *
 * Progressive enhancement: the page works without this file (the "Refresh" link reloads it).
 * The server marks incoming (placed) orders with `alert-new`; cards already seen on screen get
 * `seen` so only orders that just arrived pulse again. No sound, no external code.
 */
(function () {
  "use strict";

  var INTERVAL_MS = 10000;
  var region = document.getElementById("seller-queue");
  if (!region || !window.fetch) {
    return;
  }
  var url = region.getAttribute("data-fragment-url");
  var status = document.getElementById("seller-queue-status");
  var baseTitle = document.title;
  var lastHtml = region.innerHTML;
  var seen = incomingIds();
  var timer = null;
  var stopped = false;
  var inFlight = false;

  function incomingIds() {
    var ids = {};
    var cards = region.querySelectorAll(".alert-new[data-order-id]");
    for (var i = 0; i < cards.length; i++) {
      ids[cards[i].getAttribute("data-order-id")] = true;
    }
    return ids;
  }

  function markSeen(previous) {
    var cards = region.querySelectorAll(".alert-new[data-order-id]");
    for (var i = 0; i < cards.length; i++) {
      if (previous[cards[i].getAttribute("data-order-id")]) {
        cards[i].classList.add("seen");
      }
    }
  }

  function incomingCount() {
    var list = region.querySelector("[data-incoming]");
    return list ? parseInt(list.getAttribute("data-incoming"), 10) || 0 : 0;
  }

  function showStatus(text) {
    if (status) {
      status.textContent = text;
    }
    var count = incomingCount();
    document.title = (count ? "(" + count + " new) " : "") + baseTitle;
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function swap(html) {
    if (html !== lastHtml) {
      var previous = seen;
      region.innerHTML = html;
      lastHtml = html;
      markSeen(previous);
      seen = incomingIds();
    }
    showStatus("Live · updated " + clock());
  }

  function stop(text) {
    stopped = true;
    window.clearTimeout(timer);
    showStatus(text);
  }

  function schedule() {
    window.clearTimeout(timer);
    if (!stopped && !document.hidden) {
      timer = window.setTimeout(poll, INTERVAL_MS);
    }
  }

  function poll() {
    if (inFlight || stopped) {
      return;
    }
    inFlight = true;
    fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        if (response.redirected || response.status === 403 || response.status === 404) {
          // Signed out, or no longer a partner of this restaurant: a reload explains why.
          stop("Live updates stopped · reload the page");
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null && !stopped) {
          swap(html);
        }
      })
      .catch(function () {
        showStatus("Could not refresh at " + clock() + " · retrying");
      })
      .then(function () {
        inFlight = false;
        schedule();
      });
  }

  // A button was pressed: the page is about to change, do not swap the list under it.
  region.addEventListener("submit", function () {
    stopped = true;
    window.clearTimeout(timer);
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      window.clearTimeout(timer);
    } else {
      poll();
    }
  });

  // Back to this page from the browser's page cache: catch up at once.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      stopped = false;
      poll();
    }
  });

  showStatus("Live · updates every " + INTERVAL_MS / 1000 + " s");
  schedule();
})();
