"""manifest.yaml: valid against Slack's public manifest schema and true to the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.cli import MANIFEST_PLACEHOLDER
from bot.deps import BOT_SCOPES
from bot.slack.ids import COMMAND, Subcommand
from bot.web import EVENTS_PATH, OAUTH_REDIRECT_PATH

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path(__file__).resolve().parent / "data" / "slack-app-manifest.schema.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "manifest.yaml").read_text()))


def test_validates_against_the_schema(manifest: dict[str, Any]) -> None:
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_schema_catches_a_broken_manifest(manifest: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(manifest))
    broken["features"]["slash_commands"][0]["command"] = "breeze-balance-without-slash"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(SCHEMA.read_text()))


def test_declares_the_command_the_app_listens_for(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [COMMAND]
    assert commands[0]["description"]
    assert "share" in commands[0]["usage_hint"]
    assert "help" in commands[0]["usage_hint"]


def test_request_urls_point_at_the_events_endpoint_on_the_placeholder_host(manifest: dict[str, Any]) -> None:
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    settings = manifest.get("settings", {})
    for section in ("interactivity", "event_subscriptions"):
        if section in settings and "request_url" in settings[section]:
            urls.append(settings[section]["request_url"])
    assert urls
    for url in urls:
        assert url == MANIFEST_PLACEHOLDER + EVENTS_PATH


def test_asks_only_for_the_scopes_it_uses(manifest: dict[str, Any]) -> None:
    assert set(manifest["oauth_config"]["scopes"]["bot"]) >= {
        "commands",
        "users:read",
        "chat:write",
        "chat:write.public",
        "im:write",
    }
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES  # what the OAuth install asks for


def test_interactivity_events_and_oauth_redirect_reach_the_app(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"] == MANIFEST_PLACEHOLDER + EVENTS_PATH
    assert settings["event_subscriptions"]["request_url"] == MANIFEST_PLACEHOLDER + EVENTS_PATH
    assert sorted(settings["event_subscriptions"]["bot_events"]) == ["app_uninstalled", "tokens_revoked"]
    assert manifest["oauth_config"]["redirect_urls"] == [MANIFEST_PLACEHOLDER + OAUTH_REDIRECT_PATH]


def test_usage_hint_names_every_subcommand(manifest: dict[str, Any]) -> None:
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    for sub in Subcommand:
        assert sub.value in hint
