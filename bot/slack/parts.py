"""What the listeners share, handed to each `register(app, parts)`."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.services.balances import BalanceService, KeyService
from bot.services.metering import MeteringService
from bot.services.tasks import TaskTracker
from bot.services.usage import UsageService
from bot.services.watching import WatchService
from bot.slack.admins import Admins, BotTokens
from bot.slack.installations import Installations
from bot.slack.poster import ChannelPoster
from bot.slack.replies import ReplyPoster


@dataclass(frozen=True, slots=True)
class Parts:
    """Services and adapters the listeners route to."""

    mode: str
    balances: BalanceService
    keys: KeyService
    admins: Admins
    slack: AsyncWebClient
    tokens: BotTokens
    replies: ReplyPoster
    tasks: TaskTracker
    environment_key: bool
    watch: WatchService
    poster: ChannelPoster
    metering: MeteringService
    usage: UsageService
    installations: Installations | None = None
