// The interactive reference: Swagger UI on one of Keyhole's OpenAPI documents, chosen in the
// page's own selector. Nothing here reaches another host: no validator badge, no remote config.
(function () {
  "use strict";
  var picker = document.getElementById("document");

  function show(url) {
    window.ui = SwaggerUIBundle({
      url: url,
      dom_id: "#reference",
      deepLinking: true,
      validatorUrl: null,
      configUrl: null,
      persistAuthorization: false,
      tryItOutEnabled: false,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  }

  var initial = new URLSearchParams(window.location.search).get("document");
  if (initial && picker.querySelector('option[value="' + CSS.escape(initial) + '"]')) {
    picker.value = initial;
  }
  picker.addEventListener("change", function () {
    var params = new URLSearchParams(window.location.search);
    params.set("document", picker.value);
    window.history.replaceState(null, "", "?" + params.toString());
    show(picker.value);
  });
  show(picker.value);
})();
