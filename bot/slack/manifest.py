"""The Slack app manifest, built for a base URL (or for Socket Mode), and the link that creates the app.

`manifest.yaml` at the top of the repository is `build()` for the placeholder host; a test keeps
the two the same. The app itself reads this module, so an installed copy needs no file beside it.
https://api.slack.com/reference/manifests
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import yaml

from bot.routes import EVENTS_PATH, OAUTH_REDIRECT_PATH

PLACEHOLDER = "https://breeze-balance.example.com"
COMMAND = "/breeze-balance"
CREATE_APP_URL = "https://api.slack.com/apps?new_app=1&manifest_json="
BLOCK_KIT_BUILDER_URL = "https://app.slack.com/block-kit-builder#"

# What the app asks Slack for when a workspace installs it; each is used (README: the scopes).
BOT_SCOPES = (
    "commands",
    "users:read",
    "chat:write",
    "chat:write.public",
    "im:write",
    "channels:read",
    "groups:read",
)
BOT_EVENTS = ("app_home_opened", "app_uninstalled", "tokens_revoked")
USAGE_HINT = "[share | refresh | usage | help | status | set-key | remove-key | alert | notify | digest]"
LONG_DESCRIPTION = (
    "Type /breeze-balance to see your workspace's Breeze Developer API credit balance, its recent "
    "top-ups and how many days the credits will last, visible only to you. /breeze-balance share "
    "posts the same answer in the channel. Admins can have the app speak first: a low-balance alert "
    "once per drop, a notice for each top-up, and a daily or weekly digest. When something is wrong "
    "(a rejected key, Breeze unavailable, rate limits) the app says so plainly and suggests what to "
    "do next. Workspace admins set the Breeze API key with /breeze-balance set-key; it is checked "
    "with Breeze and stored encrypted."
)


def build(base_url: str = PLACEHOLDER, *, socket: bool = False) -> dict[str, Any]:
    """The manifest with every request URL under `base_url`; with `socket`, for Socket Mode (no URLs)."""
    base = base_url.rstrip("/")
    events = f"{base}{EVENTS_PATH}"
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": "Show the Breeze credit balance and recent top-ups",
        "usage_hint": USAGE_HINT,
        # Channels then arrive as <#C0123ABCD|name>, so alert, notify and digest can name one.
        "should_escape": True,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    subscriptions: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    oauth: dict[str, Any] = {"scopes": {"bot": list(BOT_SCOPES)}}
    if not socket:
        command["url"] = events
        interactivity["request_url"] = events
        subscriptions["request_url"] = events
        oauth = {"redirect_urls": [f"{base}{OAUTH_REDIRECT_PATH}"], **oauth}
    return {
        "display_information": {
            "name": "Breeze Balance",
            "description": "See your Breeze credit balance and recent top-ups without leaving Slack.",
            "long_description": LONG_DESCRIPTION,
            "background_color": "#1d4ed8",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "breeze-balance", "always_online": False},
            "slash_commands": [command],
        },
        "oauth_config": oauth,
        "settings": {
            "interactivity": interactivity,
            "event_subscriptions": subscriptions,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": False,
        },
    }


def request_urls(base_url: str) -> dict[str, str]:
    """The URLs to paste into Slack's app settings, by the setting's name."""
    base = base_url.rstrip("/")
    return {
        "Slash command, interactivity and event subscriptions request URL": f"{base}{EVENTS_PATH}",
        "OAuth redirect URL (many workspaces)": f"{base}{OAUTH_REDIRECT_PATH}",
    }


def to_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as YAML, in the order it was built."""
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100)


def to_json(manifest: dict[str, Any]) -> str:
    """The manifest as compact JSON."""
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False)


def create_app_link(manifest: dict[str, Any]) -> str:
    """Slack's create-app page with this manifest filled in."""
    return CREATE_APP_URL + quote(to_json(manifest), safe="")


def block_kit_builder_link(blocks: list[dict[str, Any]]) -> str:
    """Block Kit Builder showing these blocks as Slack would."""
    return BLOCK_KIT_BUILDER_URL + quote(json.dumps({"blocks": blocks}, separators=(",", ":")), safe="")
