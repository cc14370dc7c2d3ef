"""The app's HTTP paths, shared by the web app, the manifest and the pages."""

from __future__ import annotations

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
OAUTH_REDIRECT_PATH = "/slack/oauth_redirect"
HEALTH_PATH = "/healthz"
HOME_PATH = "/"
