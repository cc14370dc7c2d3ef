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
class Requester:
    """Who ran the command, and where."""

    team_id: str | None
    enterprise_id: str | None
    user_id: str
    channel_id: str | None = None


def new_reference() -> str:
    """A short id that ties a reply to its log lines, e.g. `R7K2M9QX`."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(8))
