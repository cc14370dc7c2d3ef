"""Block Kit builders: pure functions from values to `(text, blocks)`; no I/O."""
