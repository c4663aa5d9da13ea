// Progressive touches only: every page works without this file.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.value || source.textContent).then(function () {
    var note = document.getElementById(button.getAttribute("data-copy") + "-copied");
    if (note) note.hidden = false;
  });
});
// After htmx swaps in new content, move focus to a heading marked for it, so screen readers hear the change.
document.addEventListener("htmx:afterSettle", function (event) {
  var target = event.detail.target.querySelector("[data-focus]");
  if (target) target.focus();
});
