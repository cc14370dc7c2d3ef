"""Everything that speaks Slack: ids, command parsing, Block Kit, listeners, the Bolt app."""
