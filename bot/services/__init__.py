"""Use cases: what the app does, with protocols for what it needs; no Slack, HTTP or SQL types."""
