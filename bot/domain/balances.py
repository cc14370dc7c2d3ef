"""Plain values the app talks about: balances, top-ups, who is asking. No I/O here."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

MILLICREDITS_PER_CREDIT = 1000


class TopupStatus(StrEnum):
    """What became of a top-up, folded from the many words payment systems use."""

    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"
    UNKNOWN = "unknown"


_STATUS_WORDS: dict[str, TopupStatus] = {
    **dict.fromkeys(
        ("succeeded", "success", "successful", "completed", "complete", "paid", "settled", "ok"),
        TopupStatus.SUCCEEDED,
    ),
    **dict.fromkeys(
        ("pending", "processing", "in_progress", "requires_action", "created", "open", "queued"),
        TopupStatus.PENDING,
    ),
    **dict.fromkeys(
        ("failed", "failure", "declined", "canceled", "cancelled", "error", "expired", "void"),
        TopupStatus.FAILED,
    ),
}


def topup_status(raw: str | None) -> TopupStatus:
    """Fold a raw status string into one of the four statuses shown to people."""
    if raw is None:
        return TopupStatus.UNKNOWN
    return _STATUS_WORDS.get(raw.strip().lower().replace("-", "_").replace(" ", "_"), TopupStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Topup:
    """One top-up as Breeze reported it; every field may be unknown."""

    topup_id: str | None = None
    amount: Decimal | None = None
    raw_status: str | None = None
    created_at: datetime | None = None
    raw_created_at: str | None = None

    @property
    def status(self) -> TopupStatus:
        """The folded status."""
        return topup_status(self.raw_status)


@dataclass(frozen=True, slots=True)
class Balance:
    """An account balance in credits (exact), its recent top-ups, and the key id used."""

    credits: Decimal
    topups: tuple[Topup, ...] = ()
    key_id: str | None = None
    ignored_topups: int = field(default=0)

    def topups_newest_first(self) -> list[Topup]:
        """Top-ups with a date, newest first, then those without a date in API order."""
        dated = [t for t in self.topups if t.created_at is not None]
        undated = [t for t in self.topups if t.created_at is None]
        dated.sort(key=lambda t: t.created_at.timestamp() if t.created_at else -math.inf, reverse=True)
        return dated + undated


@dataclass(frozen=True, slots=True)
class Workspace:
    """A Slack workspace, or a whole Enterprise Grid org for an org-wide install."""

    enterprise_id: str | None
    team_id: str | None
    is_enterprise_install: bool = False

    @property
    def scope(self) -> tuple[str, str]:
        """The storage key: (enterprise id or "", team id or "" for an org-wide install)."""
        team = "" if self.is_enterprise_install else (self.team_id or "")
        return (self.enterprise_id or "", team)

    def __str__(self) -> str:
        enterprise, team = self.scope
        return f"{enterprise}/{team}" if enterprise else team or "-"


@dataclass(frozen=True, slots=True)
class Requester:
    """Who ran the command, and where."""

    team_id: str | None
    enterprise_id: str | None
    user_id: str
    channel_id: str | None = None
    is_enterprise_install: bool = False

    @property
    def workspace(self) -> Workspace:
        """The workspace (or org) whose key and installation answer this request."""
        return Workspace(self.enterprise_id, self.team_id, self.is_enterprise_install)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """All that is ever shown about a stored key: never the key itself."""

    last4: str
    set_by: str
    set_at: datetime
    key_id: str | None = None


def last_four(key: str) -> str:
    """The last four characters of a key, the only part ever shown."""
    return key[-4:]


_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 letters and digits, none alike


def new_reference() -> str:
    """A short id that ties a reply to its log lines, e.g. `R7K2M9QX`: 40 random bits, one call."""
    bits = secrets.randbits(40)
    return "".join(_REFERENCE_ALPHABET[(bits >> shift) & 31] for shift in range(0, 40, 5))
