"""The app's own pages: the setup guide (nothing configured yet) and the status page. Server-rendered.

Templates live in `bot/web/templates` and are autoescaped. Pages show the names of settings and
whether they are set, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jinja2

from bot import __version__
from bot.config import MULTI_WORKSPACE, Settings
from bot.hints import HINTS
from bot.routes import EVENTS_PATH, HEALTH_PATH, INSTALL_PATH, OAUTH_REDIRECT_PATH
from bot.slack import manifest

ONE_WORKSPACE, MANY_WORKSPACES, SOCKET_MODE = "one workspace", "many workspaces", "Socket Mode"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the setup checklist."""

    name: str
    is_set: bool
    need: str  # when it is needed: "over HTTP", "one workspace", "optional", ...
    purpose: str
    where: str


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: object) -> str:
    """A page from its template, every value escaped."""
    return _environment().get_template(template).render(version=__version__, **context)


def mode_of(settings: Settings) -> str:
    """Which way of running the settings point to."""
    if settings.slack_app_token is not None:
        return SOCKET_MODE
    return MANY_WORKSPACES if settings.mode == MULTI_WORKSPACE else ONE_WORKSPACE


def checklist(settings: Settings) -> list[Item]:
    """Each setting the app reads to talk to Slack and Breeze: set or not, and where to find it."""
    multi = settings.mode == MULTI_WORKSPACE
    sqlite = settings.database_url.strip().lower().startswith("sqlite")
    return [
        Item(
            "SLACK_SIGNING_SECRET",
            settings.slack_signing_secret is not None,
            "over HTTP (not Socket Mode)",
            "proves that each request really comes from Slack",
            HINTS["SLACK_SIGNING_SECRET"],
        ),
        Item(
            "SLACK_BOT_TOKEN",
            settings.slack_bot_token is not None,
            "one workspace" if not multi else "not with SLACK_CLIENT_ID",
            "the bot's token in your workspace: admin checks, alerts, the Home tab",
            HINTS["SLACK_BOT_TOKEN"] + ", after Install App -> Install to Workspace",
        ),
        Item(
            "SLACK_CLIENT_ID",
            settings.slack_client_id is not None,
            "many workspaces",
            "lets any workspace install the app through Slack's OAuth flow",
            HINTS["SLACK_CLIENT_ID"],
        ),
        Item(
            "SLACK_CLIENT_SECRET",
            settings.slack_client_secret is not None,
            "many workspaces",
            "goes with SLACK_CLIENT_ID",
            HINTS["SLACK_CLIENT_SECRET"],
        ),
        Item(
            "SLACK_APP_TOKEN",
            settings.slack_app_token is not None,
            "Socket Mode",
            "connects to Slack from behind a firewall, with no public URL",
            HINTS["SLACK_APP_TOKEN"],
        ),
        Item(
            "BREEZE_API_KEY",
            settings.breeze_api_key is not None,
            "optional",
            "the Breeze key used until an admin sets one with /breeze-balance set-key",
            HINTS["BREEZE_API_KEY"],
        ),
        Item(
            "BREEZE_ENCRYPTION_KEYS",
            bool(settings.encryption_keys),
            "optional with SQLite" if sqlite else "required with PostgreSQL",
            "encrypts stored Breeze keys and Slack tokens",
            HINTS["BREEZE_ENCRYPTION_KEYS"],
        ),
        Item(
            "DATABASE_URL",
            settings.database_url != Settings.model_fields["database_url"].default,
            "optional",
            "where keys, rules and installations are kept (SQLite file by default)",
            HINTS["DATABASE_URL"],
        ),
        Item(
            "PUBLIC_URL",
            settings.public_url is not None,
            "optional",
            "the app's public https address, used in the manifest below",
            HINTS["PUBLIC_URL"],
        ),
    ]


def base_url(settings: Settings, host: str | None, proto: str | None) -> str:
    """PUBLIC_URL, else what the request says the app is reached at."""
    if settings.public_url:
        return settings.public_url
    scheme = (proto or "http").split(",")[0].strip().lower()
    scheme = scheme if scheme in ("http", "https") else "http"
    return f"{scheme}://{(host or 'localhost').strip()}"


def setup_page(settings: Settings, base: str, problems: list[str], missing: list[str]) -> str:
    """The guide shown while the app cannot answer Slack yet; `missing` are marked in the checklist."""
    mode = mode_of(settings)
    app_manifest = manifest.build(base, socket=mode == SOCKET_MODE)
    return render(
        "setup.html",
        items=checklist(settings),
        problems=problems,
        missing=missing,
        mode=mode,
        base=base,
        https=base.startswith("https://"),
        manifest_json=manifest.to_json(app_manifest),
        manifest_yaml=manifest.to_yaml(app_manifest),
        create_link=manifest.create_app_link(app_manifest),
        request_urls=manifest.request_urls(base) if mode != SOCKET_MODE else {},
        install_url=f"{base}{INSTALL_PATH}",
        modes=(ONE_WORKSPACE, MANY_WORKSPACES, SOCKET_MODE),
    )


@dataclass(frozen=True, slots=True)
class Probe:
    """Whether a service accepts the app's credentials: ok, failing (why), or not checked."""

    name: str
    state: str  # "ok", "fail", "skip"
    detail: str


def status_page(settings: Settings, base: str, probes: list[Probe]) -> str:
    """The page shown once the app is configured: mode, version, URLs, and the live checks."""
    mode = mode_of(settings)
    urls = {
        "Events, commands and interactivity": f"{base}{EVENTS_PATH}",
        "Health check": f"{base}{HEALTH_PATH}",
    }
    if settings.mode == MULTI_WORKSPACE:
        urls["Install link (share it)"] = f"{base}{INSTALL_PATH}"
        urls["OAuth redirect URL"] = f"{base}{OAUTH_REDIRECT_PATH}"
    return render("status.html", mode=mode, urls=urls, probes=probes, base=base)
