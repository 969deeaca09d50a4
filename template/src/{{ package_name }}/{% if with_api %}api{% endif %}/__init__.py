"""The HTTP API and the chat page: `app.create_app` builds it (routes, services, streaming,
keys, limits, headers, static/); `serve` runs it."""
