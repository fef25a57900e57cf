// Starts ReDoc from a file, so that the page's policy needs no inline script. ReDoc stamps
// the <style> elements it writes with this script's nonce, which the page's policy allows.
"use strict";
(() => {
  const container = document.getElementById("redoc");
  Redoc.init(container.dataset.specUrl, { nonce: document.currentScript.nonce }, container);
})();
