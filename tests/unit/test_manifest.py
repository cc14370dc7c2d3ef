"""manifest.yaml: valid against Slack's public manifest schema, true to the app, and what `manifest` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

from bot.cli.commands import MANIFEST_PLACEHOLDER
from bot.deps import BOT_SCOPES
from bot.slack import manifest as app_manifest
from bot.slack.ids import COMMAND, Subcommand
from bot.web.app import EVENTS_PATH, OAUTH_REDIRECT_PATH

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "slack-app-manifest.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA.read_text()))


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "manifest.yaml").read_text()))


def test_validates_against_the_schema(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.validate(manifest, schema)


def test_the_file_is_what_the_app_builds(manifest: dict[str, Any]) -> None:
    assert manifest == app_manifest.build()


@pytest.mark.parametrize("socket", [False, True])
def test_built_manifests_validate_for_any_host(schema: dict[str, Any], socket: bool) -> None:
    built = app_manifest.build("https://bot.acme.dev/", socket=socket)
    jsonschema.validate(built, schema)
    urls = json.dumps(built)
    assert ("https://bot.acme.dev/slack/events" in urls) is not socket
    assert built["settings"]["socket_mode_enabled"] is socket


def test_schema_catches_a_broken_manifest(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(manifest))
    broken["features"]["slash_commands"][0]["command"] = "breeze-balance-without-slash"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_declares_the_command_the_app_listens_for(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [COMMAND]
    assert commands[0]["description"]
    assert commands[0]["should_escape"] is True  # channels arrive as <#C…|name>


def test_request_urls_point_at_the_events_endpoint_on_the_placeholder_host(manifest: dict[str, Any]) -> None:
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    settings = manifest.get("settings", {})
    for section in ("interactivity", "event_subscriptions"):
        if section in settings and "request_url" in settings[section]:
            urls.append(settings[section]["request_url"])
    assert len(urls) == 3
    for url in urls:
        assert url == MANIFEST_PLACEHOLDER + EVENTS_PATH


def test_asks_for_the_scopes_it_uses_and_the_oauth_flow_asks_the_same(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert {"commands", "users:read", "chat:write", "chat:write.public", "im:write"} <= set(scopes)
    assert tuple(scopes) == BOT_SCOPES  # what the OAuth install asks for


def test_interactivity_events_home_and_oauth_redirect_reach_the_app(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"] == MANIFEST_PLACEHOLDER + EVENTS_PATH
    assert settings["event_subscriptions"]["request_url"] == MANIFEST_PLACEHOLDER + EVENTS_PATH
    assert sorted(settings["event_subscriptions"]["bot_events"]) == [
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    ]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["oauth_config"]["redirect_urls"] == [MANIFEST_PLACEHOLDER + OAUTH_REDIRECT_PATH]


def test_usage_hint_names_every_subcommand(manifest: dict[str, Any]) -> None:
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    for sub in Subcommand:
        assert sub.value in hint


def test_create_app_link_carries_the_manifest() -> None:
    built = app_manifest.build("https://bot.acme.dev")
    link = urlsplit(app_manifest.create_app_link(built))
    assert (link.scheme, link.netloc, link.path) == ("https", "api.slack.com", "/apps")
    query = parse_qs(link.query)
    assert query["new_app"] == ["1"]
    assert json.loads(query["manifest_json"][0]) == built
