// Picking a date in a filter form means a custom period.
document.querySelectorAll("form.filters").forEach(function (form) {
  var kind = form.querySelector("select[name=period]");
  form.querySelectorAll("input[type=date]").forEach(function (input) {
    input.addEventListener("change", function () { if (kind) { kind.value = "custom"; } });
  });
});
