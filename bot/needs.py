"""Which settings each entry point cannot run without, and why: each asks for what it uses.

Beyond these, every entry point needs values that are well-formed and agree with each other
(`bot.config` checks both). In multi-workspace mode the installations bring the bot tokens, so
SLACK_BOT_TOKEN is needed only in one-workspace mode. README's "Configuration", the setup page
and app.json say the same.
"""

from __future__ import annotations

SERVE = "serve"
SOCKET = "socket"
WORKER = "worker"
# `check` asks for what the deployment it checks runs: Socket Mode with an app token, else HTTP.
CHECK = "check"

NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    SERVE: (("SLACK_SIGNING_SECRET", "Slack signs every request it sends over HTTP with it"),),
    SOCKET: (
        ("SLACK_APP_TOKEN", "Socket Mode connects to Slack with it"),
        ("SLACK_BOT_TOKEN", "over Socket Mode the app checks admins and shows the Home tab with it"),
    ),
    WORKER: (("SLACK_BOT_TOKEN", "the worker posts alerts, notices and digests with it"),),
}
