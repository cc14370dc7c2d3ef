"""Composition root: opens and closes the shared client, database, adapters and services."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters import db, outbound
from bot.adapters.breeze import BreezeClient
from bot.adapters.crypto import Cipher, key_file_for, load_cipher
from bot.adapters.key_store import KeyStore, installed_workspaces
from bot.adapters.metering import MeteringClient
from bot.adapters.redis_shared import RedisShared
from bot.adapters.watch.store import WatchStore
from bot.config import Settings
from bot.errors import BotError
from bot.services.balances import BalanceService, KeyService
from bot.services.caches import BalanceCache, RefreshLimiter, WorkspaceKeys
from bot.services.metering import MeteringService
from bot.services.tasks import TaskTracker
from bot.services.usage import UsageService
from bot.services.watching import Now, Outbox, WatchService, utcnow
from bot.services.worker import Worker
from bot.slack.admins import Admins, BotTokens
from bot.slack.app import Authorize, build_app
from bot.slack.auth import SingleWorkspaceAuthorizer
from bot.slack.delivery import Deliverer
from bot.slack.installations import CachingStore, Installations
from bot.slack.manifest import BOT_SCOPES
from bot.slack.parts import Parts
from bot.slack.poster import ChannelPoster
from bot.slack.replies import ReplyPoster

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 25.0
OAUTH_STATE_SECONDS = 600
# How long a worker reuses a workspace's decrypted key (set-key and remove-key in the same
# worker take effect at once; other workers see them within this time).
KEY_CACHE_SECONDS = 10.0
# `/breeze-balance refresh` skips the cache at most this often per user.
REFRESH_EVERY_SECONDS = 30.0
# A worker's check of one workspace: the Breeze deadline, plus this for the database and Slack.
CHECK_SLACK_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Deps:
    """Everything a running process shares."""

    settings: Settings
    http: httpx.AsyncClient
    engine: AsyncEngine
    breeze: BreezeClient
    balances: BalanceService
    keys: KeyService
    tasks: TaskTracker
    bolt: AsyncApp
    watch: WatchService
    worker: Worker
    metering: MeteringService
    usage: UsageService
    shared: RedisShared | None = None
    authorizer: SingleWorkspaceAuthorizer | None = None
    installations: Installations | None = None
    oauth: AsyncOAuthFlow | None = None


def _http_client(settings: Settings) -> httpx.AsyncClient:
    return outbound.client(settings.http_stack, settings.breeze_timeout_seconds)


async def open_database(settings: Settings, stack: AsyncExitStack) -> tuple[AsyncEngine, Cipher]:
    """The engine (migrated, or refusing to start) and the cipher for secrets at rest."""
    database = db.parse_database_url(settings.database_url)
    engine = db.create_engine(database)
    stack.push_async_callback(engine.dispose)
    if settings.auto_migrate:
        before, after = await db.migrate(engine)
        if before != after:
            log.info("migrated the database %s from %s to %s", database.display, before or "empty", after)
    else:
        await db.require_migrated(engine, database.display)
    sqlite_file = database.sqlite_file
    cipher = load_cipher(
        settings.encryption_keys,
        key_file=key_file_for(sqlite_file) if sqlite_file is not None else None,
        ephemeral_ok=database.is_sqlite,
    )
    return engine, cipher


@asynccontextmanager
async def open_deps(settings: Settings, now: Now = utcnow) -> AsyncIterator[Deps]:
    """Open everything; on exit, let replies in flight finish, then close connections."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(_http_client(settings))
        engine, cipher = await open_database(settings, stack)
        breeze = BreezeClient(http, settings.breeze_url, settings.breeze_timeout_seconds)
        store = KeyStore(engine, cipher)
        fallback = settings.breeze_api_key if settings.slack_client_id is None else None
        if settings.slack_client_id and settings.breeze_api_key is not None:
            log.warning("BREEZE_API_KEY is ignored in multi-workspace mode: each workspace sets its own key")
        shared = _shared(settings, stack)
        workspace_keys = WorkspaceKeys(store, fallback, cache_seconds=KEY_CACHE_SECONDS, shared=shared)
        cache = BalanceCache(
            breeze, settings.breeze_cache_seconds, shared=shared, wait_seconds=settings.breeze_timeout_seconds
        )
        balances = BalanceService(workspace_keys, cache, RefreshLimiter(REFRESH_EVERY_SECONDS, shared=shared))
        tasks = TaskTracker()
        metering = MeteringService(
            workspace_keys,
            MeteringClient(breeze),
            tasks,
            settings.usage_refresh_seconds,
            shared=shared,
            now=now,
        )
        usage = UsageService(MeteringClient(breeze), settings.usage_refresh_seconds, shared=shared, now=now)
        keys = KeyService(store, breeze, fallback, workspace_keys, cache, on_saved=metering.prefetch)
        slack = AsyncWebClient(base_url=settings.slack_api_base, timeout=10)

        authorizer: SingleWorkspaceAuthorizer | None = None
        installations: Installations | None = None
        oauth: AsyncOAuthFlow | None = None
        tokens: BotTokens
        authorize: Authorize
        if settings.slack_client_id and settings.slack_client_secret:
            installations, oauth = _multi_workspace(settings, engine, cipher, slack)
            tokens, authorize = installations, installations.bolt_authorize()
        else:
            authorizer = SingleWorkspaceAuthorizer(slack, settings.slack_bot_token)
            tokens, authorize = authorizer, authorizer.bolt_authorize()

        watch_store = WatchStore(engine)
        watch = WatchService(watch_store, balances, settings.alert_interval_seconds, now, metering)
        poster = ChannelPoster(slack, tokens)
        worker = Worker(
            watch,
            Deliverer(Outbox(watch_store.outbox, now=watch.now), poster),
            interval_seconds=settings.alert_interval_seconds,
            check_timeout_seconds=settings.breeze_timeout_seconds + CHECK_SLACK_SECONDS,
        )
        parts = Parts(
            mode=settings.mode,
            balances=balances,
            keys=keys,
            admins=Admins(slack, tokens, settings.admin_user_ids),
            slack=slack,
            tokens=tokens,
            replies=ReplyPoster(http),
            tasks=tasks,
            environment_key=fallback is not None,
            watch=watch,
            metering=metering,
            usage=usage,
            poster=poster,
            installations=installations,
        )
        bolt = build_app(
            signing_secret=_signing_secret(settings), client=slack, authorize=authorize, parts=parts
        )
        if installations is not None and settings.slack_client_id:
            # In the background, so start-up does not wait on a long list of workspaces.
            tasks.spawn(_warm(installations, engine, settings.slack_client_id), name="warm-installations")
        try:
            yield Deps(
                settings,
                http,
                engine,
                breeze,
                balances,
                keys,
                tasks,
                bolt,
                watch,
                worker,
                metering,
                usage,
                shared,
                authorizer,
                installations,
                oauth,
            )
        finally:
            await tasks.drain(SHUTDOWN_GRACE_SECONDS)


def _signing_secret(settings: Settings) -> SecretStr:
    """SLACK_SIGNING_SECRET; without it (Socket Mode, the worker, the CLI: Slack signs nothing for
    them) a random secret, so that any request that does arrive over HTTP is refused as unsigned."""
    return settings.slack_signing_secret or SecretStr(secrets.token_urlsafe(32))


def _shared(settings: Settings, stack: AsyncExitStack) -> RedisShared | None:
    """Redis, when REDIS_URL is set: caches and limits shared by every process."""
    if settings.redis_url is None:
        return None
    shared = RedisShared(settings.redis_url.get_secret_value())
    stack.push_async_callback(shared.close)
    return shared


async def _warm(installations: Installations, engine: AsyncEngine, client_id: str) -> None:
    try:
        found = await installations.warm(await installed_workspaces(engine, client_id))
    except BotError as exc:
        log.warning("could not preload installations (%s); they are read on first use", exc)
        return
    log.info("installed in %d workspace(s)", found)


def _multi_workspace(
    settings: Settings, engine: AsyncEngine, cipher: Cipher, slack: AsyncWebClient
) -> tuple[Installations, AsyncOAuthFlow]:
    """Installations in the database (tokens encrypted) and Slack's OAuth install flow."""
    assert settings.slack_client_id is not None
    assert settings.slack_client_secret is not None
    client_id, client_secret = settings.slack_client_id, settings.slack_client_secret.get_secret_value()
    store = CachingStore(AsyncSQLAlchemyInstallationStore(client_id, engine), cipher)
    rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret, client=slack)
    installations = Installations(store, rotator)
    store.on_saved = installations.remember
    oauth = AsyncOAuthFlow(
        client=slack,
        settings=AsyncOAuthSettings(
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(BOT_SCOPES),
            installation_store=store,
            state_store=AsyncSQLAlchemyOAuthStateStore(OAUTH_STATE_SECONDS, engine),
            state_expiration_seconds=OAUTH_STATE_SECONDS,
        ),
    )
    return installations, oauth
