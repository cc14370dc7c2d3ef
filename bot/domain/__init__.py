"""Pure values and rules: no I/O, no SQL, HTTP, Redis or Slack types."""
