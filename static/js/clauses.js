/* Clause links ("Why? L-2.1"): show the clause's text in a small popover (D-9).
 *
 * Progressive enhancement: every clause link already goes to its anchor on /policy/ and has
 * the clause's text as its `title` (a mouse shows it on hover). This adds a popover with the
 * text for keyboard focus and for a tap on a touch screen, where there is no hover: the first
 * tap shows the text, the popover's own link (or a second tap) opens the policy. Escape, a tap
 * elsewhere or moving focus away closes it.
 */
(function () {
  "use strict";

  var popover = null;
  var owner = null;
  var touch = window.matchMedia && window.matchMedia("(hover: none)").matches;

  function build() {
    popover = document.createElement("div");
    popover.id = "clause-popover";
    popover.className = "clause-popover";
    popover.setAttribute("role", "tooltip");
    popover.hidden = true;
    popover.appendChild(document.createElement("p"));
    var more = document.createElement("a");
    more.className = "clause-popover-more";
    popover.appendChild(more);
    document.body.appendChild(popover);
  }

  function show(link) {
    if (!popover) {
      build();
    }
    var id = link.textContent.trim();
    var text = popover.firstChild;
    var label = document.createElement("strong");
    label.textContent = id + " ";
    text.textContent = "";
    text.appendChild(label);
    text.appendChild(document.createTextNode(link.getAttribute("data-clause-text")));
    popover.lastChild.textContent = "Read " + id + " in the policy";
    popover.lastChild.href = link.href;
    popover.hidden = false;
    link.setAttribute("aria-describedby", popover.id);
    owner = link;
    place(link);
  }

  function place(link) {
    var box = link.getBoundingClientRect();
    var width = Math.min(320, document.documentElement.clientWidth - 16);
    var left = Math.max(8, Math.min(box.left, document.documentElement.clientWidth - width - 8));
    popover.style.width = width + "px";
    popover.style.left = left + window.scrollX + "px";
    popover.style.top = box.bottom + window.scrollY + 6 + "px";
  }

  function hide() {
    if (popover && owner) {
      popover.hidden = true;
      owner.removeAttribute("aria-describedby");
      owner = null;
    }
  }

  function clauseLink(target) {
    var link = target.closest ? target.closest("a.clause") : null;
    return link && link.getAttribute("data-clause-text") ? link : null;
  }

  document.addEventListener("click", function (event) {
    var link = clauseLink(event.target);
    if (link && touch && owner !== link) {
      event.preventDefault();
      show(link);
    } else if (!link && popover && !popover.contains(event.target)) {
      hide();
    }
  });

  function keyboardFocus(element) {
    // A tap or click focuses the link too; only keyboard focus opens the popover here, so
    // that the first tap opens it and the second one follows the link.
    try {
      return element.matches(":focus-visible");
    } catch (error) {
      return !touch;
    }
  }

  document.addEventListener("focusin", function (event) {
    var link = clauseLink(event.target);
    if (link && keyboardFocus(link)) {
      show(link);
    } else if (popover && !popover.contains(event.target)) {
      hide();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      hide();
    }
  });
})();
