// The API docs: Swagger UI, from files this server ships (no CDN), on its own /openapi.json.
// "Authorize" takes an API key (`keys create NAME`) when the server asks for one.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
