// Small progressive enhancements: e-signature dialogs and live decay-corrected activity.
"use strict";
document.addEventListener("click", function (event) {
  var opener = event.target.closest("[data-dialog]");
  if (opener) {
    var dialog = document.getElementById(opener.getAttribute("data-dialog"));
    if (dialog && dialog.showModal) {
      dialog.showModal();
      var pw = dialog.querySelector("input[type=password]");
      if (pw) { pw.focus(); }
    }
    return;
  }
  var closer = event.target.closest("[data-close]");
  if (closer) { closer.closest("dialog").close(); }
});

// a signature that was refused: open its dialog again, with the message next to the password
document.querySelectorAll("dialog[data-open]").forEach(function (dialog) {
  if (dialog.showModal) {
    dialog.showModal();
    var pw = dialog.querySelector("input[type=password]");
    if (pw) { pw.focus(); }
  }
});

// A(t) = A_ref * exp(-ln2 * (t - t_ref) / T_half) (radioactive decay law).
function decayFactor(halfLifeH, fromMs, toMs) {
  return Math.exp(-Math.LN2 * (toMs - fromMs) / 3600000 / halfLifeH);
}

function updateLive() {
  var form = document.getElementById("dispense-form");
  var chosen = form ? form.querySelector("[name=batch_id]").value : "";
  var dose = form ? parseFloat(form.querySelector("[name=activity_mbq]").value) : NaN;
  var plannedText = form ? form.querySelector("[name=planned_time]").value : "";
  // the planned time is entered in the site's time zone (its UTC offset is rendered by the server)
  var offsetMin = form ? parseFloat(form.dataset.utcOffsetMin) : 0;
  var plannedMs = plannedText ? Date.parse(plannedText + ":00Z") - offsetMin * 60000 : NaN;
  var now = Date.now();
  document.querySelectorAll(".live").forEach(function (el) {
    var half = parseFloat(el.dataset.halfLifeH);
    var ref = Date.parse(el.dataset.referenceTime);
    var cRef = parseFloat(el.dataset.concentrationRef);
    var ml = parseFloat(el.dataset.remainingMl);
    var cNow = cRef * decayFactor(half, ref, now);
    el.querySelector(".live-activity").textContent = (cNow * ml).toFixed(1);
    el.querySelector(".live-concentration").textContent = cNow.toFixed(2);
    var vol = el.querySelector(".live-volume");
    if (!isNaN(dose) && !isNaN(plannedMs) && dose > 0) {
      var cPlanned = cRef * decayFactor(half, ref, plannedMs);
      vol.textContent = (dose / cPlanned).toFixed(3);
    } else {
      vol.textContent = "–";
    }
    el.hidden = chosen !== "" && chosen !== el.dataset.batch;
  });
}
if (document.querySelector(".live")) {
  updateLive();
  setInterval(updateLive, 1000);
  document.addEventListener("input", updateLive);
  document.addEventListener("change", updateLive);
}
