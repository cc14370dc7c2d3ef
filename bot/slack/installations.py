"""Multi-workspace installations: stored encrypted, cached so that no ack waits on the database.

slack_sdk's SQLAlchemy store keeps the rows; `EncryptedInstallationStore` encrypts the tokens
on the way in and out; `Installations` is Bolt's `authorize`, a cache in front of the store,
and the place where rotating bot tokens are refreshed (after the ack, never before).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackClientError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator

from bot.adapters.crypto import Cipher
from bot.adapters.key_store import storage_errors
from bot.domain.balances import Workspace
from bot.errors import StorageError, StoredKeyUnreadable

log = logging.getLogger(__name__)

_INSTALLATION_SECRETS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
_BOT_SECRETS = ("bot_token", "bot_refresh_token")

FRESH_SECONDS = 300.0  # after this a cached installation is re-read in the background
MISSING_SECONDS = 10.0  # how long "not installed" is believed before asking the database again
ROTATE_MINUTES_BEFORE_EXPIRY = 120  # as Bolt does: refresh rotating tokens two hours early


class EncryptedInstallationStore(AsyncInstallationStore):
    """Wraps a store so that every token it writes is Fernet-encrypted."""

    def __init__(self, inner: AsyncInstallationStore, cipher: Cipher) -> None:
        self._inner = inner
        self._cipher = cipher

    @property
    def logger(self) -> logging.Logger:
        """The wrapped store's logger."""
        return self._inner.logger

    async def async_save(self, installation: Installation) -> None:
        """Save an installation (and its bot) with the tokens encrypted."""
        copy = Installation(**installation.to_dict_for_copying())
        self._seal(copy, _INSTALLATION_SECRETS)
        async with storage_errors("save an installation"):
            await self._inner.async_save(copy)

    async def async_save_bot(self, bot: Bot) -> None:
        """Save a bot with its tokens encrypted."""
        copy = Bot(**bot.to_dict_for_copying())
        self._seal(copy, _BOT_SECRETS)
        async with storage_errors("save a bot"):
            await self._inner.async_save_bot(copy)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        """The newest bot of a workspace, tokens decrypted; None if missing or unreadable."""
        async with storage_errors("find an installation"):
            bot = await self._inner.async_find_bot(
                enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
            )
        return bot if bot is None or self._open(bot, _BOT_SECRETS) else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The newest installation, tokens decrypted; None if missing or unreadable."""
        async with storage_errors("find an installation"):
            found = await self._inner.async_find_installation(
                enterprise_id=enterprise_id,
                team_id=team_id,
                user_id=user_id,
                is_enterprise_install=is_enterprise_install,
            )
        return found if found is None or self._open(found, _INSTALLATION_SECRETS) else None

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Delete a workspace's bots."""
        async with storage_errors("delete an installation"):
            await self._inner.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Delete a workspace's installations (or one user's)."""
        async with storage_errors("delete an installation"):
            await self._inner.async_delete_installation(
                enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
            )

    def _seal(self, entity: Any, fields: tuple[str, ...]) -> None:
        for name in fields:
            value = getattr(entity, name, None)
            if value:
                setattr(entity, name, self._cipher.encrypt(value))

    def _open(self, entity: Any, fields: tuple[str, ...]) -> bool:
        try:
            for name in fields:
                value = getattr(entity, name, None)
                if value:
                    setattr(entity, name, self._cipher.decrypt(value))
        except StoredKeyUnreadable:
            log.error(
                "the Slack tokens of %s/%s cannot be decrypted with BREEZE_ENCRYPTION_KEYS; "
                "restore the old key or reinstall the app there",
                getattr(entity, "enterprise_id", None) or "-",
                getattr(entity, "team_id", None) or "-",
            )
            return False
        return True


@dataclass(slots=True)
class _Entry:
    bot: Bot | None
    read_at: float


class Installations:
    """Bolt's `authorize` for many workspaces, and their bot tokens, from an in-memory cache."""

    def __init__(self, store: AsyncInstallationStore, rotator: AsyncTokenRotator) -> None:
        self._store = store
        self._rotator = rotator
        self._cache: dict[tuple[str | None, str | None], _Entry] = {}
        self._loading: dict[tuple[str | None, str | None], asyncio.Task[Bot | None]] = {}
        self._rotating: dict[tuple[str | None, str | None], asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()

    @staticmethod
    def _key(workspace: Workspace) -> tuple[str | None, str | None]:
        if workspace.is_enterprise_install or workspace.team_id is None:
            return (workspace.enterprise_id, None)
        return (workspace.enterprise_id, workspace.team_id)

    async def find(self, workspace: Workspace) -> Bot | None:
        """The workspace's bot: from the cache, re-read in the background once stale."""
        key = self._key(workspace)
        entry = self._cache.get(key)
        now = time.monotonic()
        if entry is not None:
            limit = FRESH_SECONDS if entry.bot is not None else MISSING_SECONDS
            if now - entry.read_at < limit:
                return entry.bot
            if entry.bot is not None:
                self._load(key, workspace)  # serve the cached bot meanwhile
                return entry.bot
        return await asyncio.shield(self._load(key, workspace))

    def _load(self, key: tuple[str | None, str | None], workspace: Workspace) -> asyncio.Task[Bot | None]:
        """One database read per workspace at a time, however many requests wait for it."""
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._read(key, workspace), name=f"installation-{workspace}")
            self._loading[key] = task
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        return task

    async def _read(self, key: tuple[str | None, str | None], workspace: Workspace) -> Bot | None:
        try:
            bot = await self._store.async_find_bot(
                enterprise_id=workspace.enterprise_id,
                team_id=workspace.team_id,
                is_enterprise_install=workspace.is_enterprise_install,
            )
        except StorageError as exc:
            cached = self._cache.get(key)
            if cached is None:
                raise
            log.warning("could not re-read the installation of %s (%s); using the cached one", workspace, exc)
            return cached.bot
        self._cache[key] = _Entry(bot, time.monotonic())
        return bot

    async def warm(self, workspaces: list[Workspace]) -> int:
        """Read these workspaces' installations into the cache; returns how many are installed."""
        found = 0
        for workspace in workspaces:
            if await self.find(workspace) is not None:
                found += 1
        return found

    def bolt_authorize(self) -> Callable[..., Awaitable[AuthorizeResult | None]]:
        """A plain function for Bolt, which passes arguments by their names."""

        async def authorize(
            context: Any, enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult | None:
            org_wide = bool(getattr(context, "is_enterprise_install", False))
            result = await self.authorize(Workspace(enterprise_id, team_id, org_wide), user_id)
            if result is None and isinstance(context, dict):
                # Bolt would post "not installed" to the response_url before acking (a network
                # call before the 200); without one it puts the message in the ack itself.
                context.pop("response_url", None)
            return result

        return authorize

    async def authorize(self, workspace: Workspace, user_id: str | None) -> AuthorizeResult | None:
        """Who the app is in this workspace, or None (Bolt then says it is not installed)."""
        bot = await self.find(workspace)
        if bot is None:
            return None
        if self._expiring(bot):
            self._spawn(self.bot_token(workspace))
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id if not workspace.is_enterprise_install else workspace.team_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )

    async def bot_token(self, workspace: Workspace) -> str | None:
        """A usable bot token for the workspace, refreshed first if it rotates and is expiring."""
        bot = await self.find(workspace)
        if bot is None or not self._expiring(bot):
            return bot.bot_token if bot else None
        key = self._key(workspace)
        async with self._rotating.setdefault(key, asyncio.Lock()):
            bot = self._cache[key].bot if key in self._cache else bot
            if bot is None:
                return None
            try:
                fresh = await self._rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=ROTATE_MINUTES_BEFORE_EXPIRY
                )
            except SlackClientError as exc:
                log.warning("could not refresh the bot token of %s: %s", workspace, exc)
                return bot.bot_token
            if fresh is not None:
                await self._store.async_save_bot(fresh)
                self._cache[key] = _Entry(fresh, time.monotonic())
                log.info("refreshed the rotating bot token of %s", workspace)
                bot = fresh
        return bot.bot_token

    async def forget(self, workspace: Workspace) -> None:
        """Delete the workspace's installations and bots (app uninstalled, tokens revoked)."""
        await self._store.async_delete_all(
            enterprise_id=workspace.enterprise_id, team_id=self._key(workspace)[1]
        )
        self._cache[self._key(workspace)] = _Entry(None, time.monotonic())

    def remember(self, bot: Bot) -> None:
        """Put a just-saved installation in the cache."""
        workspace = Workspace(bot.enterprise_id, bot.team_id, bool(bot.is_enterprise_install))
        self._cache[self._key(workspace)] = _Entry(bot, time.monotonic())

    @staticmethod
    def _expiring(bot: Bot) -> bool:
        expires = bot.bot_token_expires_at
        return expires is not None and expires < time.time() + ROTATE_MINUTES_BEFORE_EXPIRY * 60

    def _spawn(self, work: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class CachingStore(EncryptedInstallationStore):
    """The store the OAuth flow saves into: it also tells the cache about new installations."""

    def __init__(self, inner: AsyncInstallationStore, cipher: Cipher) -> None:
        super().__init__(inner, cipher)
        self.on_saved: Callable[[Bot], None] | None = None

    async def async_save(self, installation: Installation) -> None:
        """Save, then update the cache."""
        await super().async_save(installation)
        if self.on_saved is not None:
            self.on_saved(installation.to_bot())
