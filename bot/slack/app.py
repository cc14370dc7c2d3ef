"""Assemble the Bolt app from ready-made parts. No module-level app."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import router
from bot.slack.listeners import home, keys, lifecycle
from bot.slack.parts import Parts

Authorize = Callable[..., Awaitable[AuthorizeResult | None]]

# Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the
# client we hand it takes precedence; that is intended here, so the warning is noise.
_BOLT_NOISE = ("`token` will be unused",)


def _drop_noise(record: logging.LogRecord) -> bool:
    return not any(noise in record.getMessage() for noise in _BOLT_NOISE)


NOT_THIS_WORKSPACE = "This app is not set up for this workspace. Ask your Slack admin to install it."


def build_app(
    *,
    signing_secret: SecretStr,
    client: AsyncWebClient,
    authorize: Authorize,
    parts: Parts,
) -> AsyncApp:
    """A Bolt app whose listeners ack in-line and hand slow work to `tasks`."""
    bolt_logger = logging.getLogger("bot.bolt")
    if _drop_noise not in bolt_logger.filters:
        bolt_logger.addFilter(_drop_noise)
    app = AsyncApp(
        signing_secret=signing_secret.get_secret_value(),
        client=client,
        authorize=authorize,  # type: ignore[arg-type]  # None means "not installed here"
        # Listeners ack and return at once (their work goes to `tasks`), so running them
        # in-line skips Bolt's 10 ms ack polling loop.
        process_before_response=True,
        user_facing_authorize_error_message=NOT_THIS_WORKSPACE,
        logger=bolt_logger,
    )
    for listeners in (router, keys, lifecycle, home):
        listeners.register(app, parts)
    return app
