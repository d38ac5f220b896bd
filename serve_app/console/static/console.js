// Progressive enhancement only: every page and form works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Times are printed in UTC; hovering one shows it in the browser's own time zone.
  for (const t of document.querySelectorAll("time[datetime]")) {
    const local = new Date(t.getAttribute("datetime"));
    if (!Number.isNaN(local.getTime())) t.title = local.toLocaleString() + " (local time)";
  }
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", (event) => {
      const question = form.dataset.confirm;
      if (question && !window.confirm(question)) { event.preventDefault(); return; }
      // A second click sends nothing; the form's Idempotency-Key makes a resend harmless anyway.
      for (const b of form.querySelectorAll("button")) b.disabled = true;
    });
  }
});
