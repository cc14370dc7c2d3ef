"""The error vocabulary of the app.

Adapters translate foreign exceptions into these at the boundary; `bot.slack.blocks.balance`
is the one place that turns them into words for people.

    BotError
    ├── ConfigError                 a setting is missing or malformed (start-up)
    ├── NoApiKey                    this workspace has no Breeze key configured
    ├── StoredKeyUnreadable         the stored key cannot be decrypted with BREEZE_ENCRYPTION_KEYS
    ├── StorageError                the database failed or is not migrated
    ├── AdminCheckFailed            Slack could not tell us whether the user is an admin
    ├── SlackPostError              Slack refused or missed a post (`code`, `retry_after`, `fixable`)
    └── BreezeError                 anything that went wrong asking Breeze
        ├── BreezeApiError          Breeze answered with an error status
        │   ├── KeyRejected         401 / AUTH_*: the key is wrong, revoked or expired
        │   ├── KeyForbidden        403 / FORBIDDEN: the key may not read the balance
        │   ├── RateLimited         429 / RATE_LIMITED: carries `retry_after` seconds
        │   ├── BreezeUnavailable   503 / capacity codes: Breeze is down for a while
        │   └── BillingUpstreamError 502, 504 / UPSTREAM_*: Breeze's billing back end failed
        ├── BreezeTimeout           no complete answer within the deadline
        ├── BreezeUnreachable       connection refused, DNS failure, TLS failure, reset
        ├── BadResponse             a 200 we cannot read (HTML, invalid JSON, no balance)
        └── MeteringUnavailable     Breeze does not offer its metering to this key: features step aside
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error this app raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or malformed; the message says which and where to get it."""


class NoApiKey(BotError):
    """No Breeze API key is configured for this workspace."""


class StoredKeyUnreadable(BotError):
    """The workspace's stored key cannot be decrypted: BREEZE_ENCRYPTION_KEYS lost the key it used."""

    code = "KEY_UNREADABLE"


class StorageError(BotError):
    """The database could not be read or written."""

    code = "STORAGE_ERROR"


class AdminCheckFailed(BotError):
    """`users.info` failed, so we cannot tell whether the user may manage the key."""

    code = "ADMIN_CHECK_FAILED"

    def __init__(self, reason: str, *, no_token: bool = False) -> None:
        super().__init__(reason)
        self.no_token = no_token


class SlackPostError(BotError):
    """A post to a channel or a direct message did not reach Slack.

    `code` is Slack's error word (`not_in_channel`) or a transport failure's name; `retry_after`
    is set when Slack asked us to wait (`ratelimited`); `fixable` when an admin must act
    (invite the app, pick another channel, reinstall).
    """

    def __init__(self, code: str, *, retry_after: float | None = None, fixable: bool = False) -> None:
        super().__init__(f"Slack did not take the post: {code}")
        self.code = code
        self.retry_after = retry_after
        self.fixable = fixable


class BreezeError(BotError):
    """Asking Breeze for the balance failed."""

    code: str = "BREEZE_ERROR"


class BreezeApiError(BreezeError):
    """Breeze answered with an error status (and maybe an `ErrorResponse` body)."""

    def __init__(self, status: int, code: str | None = None, detail: str | None = None) -> None:
        self.status = status
        self.api_code = code
        self.detail = detail
        super().__init__(f"Breeze answered HTTP {status}" + (f" ({code})" if code else ""))

    @property
    def code(self) -> str:  # type: ignore[override]
        """The API's error code when it sent one, else `HTTP_<status>`."""
        return self.api_code or f"HTTP_{self.status}"


class KeyRejected(BreezeApiError):
    """The key is missing, wrong, revoked, or its user is gone."""


class KeyForbidden(BreezeApiError):
    """The key is valid but may not read the balance."""


class RateLimited(BreezeApiError):
    """Too many requests; `retry_after` is how many seconds Breeze asked us to wait."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, detail)
        self.retry_after = retry_after


class BreezeUnavailable(BreezeApiError):
    """Breeze is temporarily unavailable."""


class BillingUpstreamError(BreezeApiError):
    """Breeze's billing back end failed or timed out."""


class BreezeTimeout(BreezeError):
    """Breeze did not answer completely within the deadline."""

    code = "TIMEOUT"


class BreezeUnreachable(BreezeError):
    """No connection to Breeze could be made or kept; `reason` says how it failed.

    `refused` (nothing listens, or DNS), `dropped` (closed before the answer), `tls` (the
    secure connection failed), `slow_connect` (no connection within the connect timeout).
    """

    code = "CONNECTION_FAILED"

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


class BadResponse(BreezeError):
    """Breeze answered 200 with something that is not a readable balance."""

    code = "BAD_RESPONSE"


class MeteringUnavailable(BreezeError):
    """`/v1/usage` or `/v1/api-keys/current` answered 403, 404, 405 or 501, or something unreadable.

    Metering is an extra: what needs it steps aside (the runway comes from the app's own samples),
    and nobody is shown an error because of it. `reason` says what Breeze answered (`HTTP 404`).
    """

    code = "METERING_UNAVAILABLE"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
