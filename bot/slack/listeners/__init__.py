"""One module per feature, each with `register(app, ...)`."""
