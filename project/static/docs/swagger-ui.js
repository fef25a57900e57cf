// Starts Swagger UI from a file, so that the page's policy needs no inline script.
"use strict";
(() => {
  const container = document.getElementById("swagger-ui");
  const config = JSON.parse(document.getElementById("swagger-ui-config").textContent);
  window.ui = SwaggerUIBundle({ url: container.dataset.specUrl, domNode: container, ...config });
})();
