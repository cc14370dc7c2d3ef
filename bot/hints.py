"""Where an operator finds each setting's value, and the defaults those hints name; shown by every
message about a missing or malformed setting, `check`, and the setup page."""

from __future__ import annotations

DEFAULT_BREEZE_BASE_URL = "https://api.breeze.blue"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///breeze-balance.db"

# Where an operator finds each value, shown whenever one is missing or malformed.
HINTS: dict[str, str] = {
    "SLACK_SIGNING_SECRET": (
        "find it at https://api.slack.com/apps -> your app -> Basic Information -> "
        "App Credentials -> Signing Secret"
    ),
    "SLACK_BOT_TOKEN": (
        "find it at https://api.slack.com/apps -> your app -> OAuth & Permissions -> "
        "Bot User OAuth Token (it starts with xoxb-)"
    ),
    "BREEZE_API_KEY": "create one in your Breeze dashboard under API keys (it starts with brz_)",
    "BREEZE_BASE_URL": f"an http(s) URL; leave it unset for {DEFAULT_BREEZE_BASE_URL}",
    "SLACK_API_URL": f"an http(s) URL; leave it unset for {DEFAULT_SLACK_API_URL}",
    "DATABASE_URL": f"a database URL; leave it unset for {DEFAULT_DATABASE_URL}",
    "HOST": "the address to listen on, such as 0.0.0.0 (all interfaces) or 127.0.0.1",
    "PORT": "a TCP port number between 1 and 65535; your platform usually sets it",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "BREEZE_TIMEOUT_SECONDS": "seconds, between 1 and 20 (Slack waits up to 30 minutes for a reply)",
    "WEB_CONCURRENCY": "a number of worker processes between 1 and 64",
    "SLACK_CLIENT_ID": "find it at https://api.slack.com/apps -> your app -> Basic Information -> Client ID",
    "SLACK_CLIENT_SECRET": (
        "find it at https://api.slack.com/apps -> your app -> Basic Information -> Client Secret"
    ),
    "BREEZE_ENCRYPTION_KEYS": (
        "comma-separated Fernet keys, newest first; make one with `python -m bot new-encryption-key`"
    ),
    "BREEZE_ADMIN_USER_IDS": (
        "comma-separated Slack user ids such as U012AB3CD (profile -> ⋮ -> Copy member ID)"
    ),
    "BREEZE_CACHE_SECONDS": "seconds a workspace's balance is reused (0 to 3600; 0 turns the cache off)",
    "LOG_FORMAT": "text (the default) or json, one object per line",
    "AUTO_MIGRATE": "true to migrate the database when the web process starts, false (the default) not to",
    "ALERT_INTERVAL_SECONDS": "seconds between two checks of a workspace's alert rules (1 to 86400)",
    "USAGE_REFRESH_SECONDS": "seconds between two reads of a workspace's metering from Breeze (60 to 86400)",
    "RUN_WORKER": "true to run the alert checks inside the web process too (what `make run` does)",
    "REDIS_URL": "redis://host:6379/0 or rediss://… (your platform's Redis add-on sets it); optional",
    "HTTP_STACK": "aiohttp (the default) or httpcore: what carries the app's outbound HTTP (for measuring)",
    "PUBLIC_URL": "the app's public https base URL, e.g. https://breeze-balance.acme.dev (for the manifest)",
    "SLACK_APP_TOKEN": (
        "Socket Mode only: https://api.slack.com/apps -> your app -> Basic Information -> App-Level "
        "Tokens -> Generate (scope connections:write); it starts with xapp-"
    ),
}
