"""Rules a workspace's admins set (alerts, top-up notices, digests) and how a check applies them. Pure.

`evaluate`, and `bot.domain.spend_rules.evaluate_spend` after it for the rules on Breeze's metering
(runway and spike alerts), is the whole policy of the worker: given the rules, their state and what
Breeze said now, it returns the new state and the posts to make. The caller stores both in one transaction,
so a post is recorded exactly when the state that caused it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from bot.domain.balances import Balance, Topup, TopupStatus, Workspace
from bot.domain.runway import Runway, Sample

# A fired alert re-arms once the balance is back above the threshold plus this share of it.
HYSTERESIS = Decimal("0.1")
DEFAULT_DIGEST_TIME = time(9, 0)


class Frequency(StrEnum):
    """How often a digest is posted."""

    DAILY = "daily"
    WEEKLY = "weekly"


PERIOD = {Frequency.DAILY: timedelta(days=1), Frequency.WEEKLY: timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Warn in `channel` when the balance falls below `threshold` credits."""

    threshold: Decimal
    channel: str
    set_by: str

    @property
    def rearm_at(self) -> Decimal:
        """The balance at or above which a fired alert says "recovered" and arms again."""
        return self.threshold + self.threshold * HYSTERESIS


@dataclass(frozen=True, slots=True)
class TopupRule:
    """Post each new top-up in `channel`."""

    channel: str
    set_by: str


@dataclass(frozen=True, slots=True)
class DigestRule:
    """A summary in `channel` at `at` in the time zone `tz`, daily or on Mondays."""

    frequency: Frequency
    at: time
    tz: str
    channel: str
    set_by: str
    next_at: datetime


@dataclass(frozen=True, slots=True)
class DaysRule:
    """Warn in `channel` when the runway by Breeze's metering falls under `days` days."""

    days: int
    channel: str
    set_by: str

    @property
    def rearm_at(self) -> Decimal:
        """The days left at or above which a fired runway alert says "recovered" and arms again."""
        return Decimal(self.days) + Decimal(self.days) * HYSTERESIS


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """Warn in `channel`, once a UTC day at most, when the day's spend is over `multiple` times the usual."""

    multiple: Decimal
    channel: str
    set_by: str


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything a workspace has asked the bot to watch."""

    alert: AlertRule | None = None
    topups: TopupRule | None = None
    digest: DigestRule | None = None
    days: DaysRule | None = None
    spike: SpikeRule | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is left to check."""
        return all(rule is None for rule in self._all())

    def admins(self) -> list[str]:
        """Who set the rules, first the alert's: who to tell when something needs fixing."""
        found = [r.set_by for r in self._all() if r is not None and r.set_by]
        return list(dict.fromkeys(found))

    def setter(self, kind: PostKind) -> str | None:
        """Who set the rule that posts of `kind` speak for, while it is there."""
        name = RULE_OF_KIND.get(kind)
        rule = getattr(self, name) if name is not None else None
        return rule.set_by if isinstance(rule, _RULE_TYPES) and rule.set_by else None

    def _all(self) -> tuple[AlertRule | TopupRule | DigestRule | DaysRule | SpikeRule | None, ...]:
        return (self.alert, self.topups, self.digest, self.days, self.spike)


@dataclass(frozen=True, slots=True)
class WatchState:
    """What the worker remembers between checks of one workspace."""

    armed: bool = True
    crossings: int = 0
    last_balance: Decimal | None = None
    digest_last_at: datetime | None = None
    digest_last_balance: Decimal | None = None
    topups_baselined: bool = False
    days_armed: bool = True
    days_crossings: int = 0
    spike_last_day: date | None = None  # the UTC day of the last spike alert


@dataclass(frozen=True, slots=True)
class Watch:
    """A workspace's rules, their state, and what is wrong with it (if anything)."""

    workspace: Workspace
    rules: Rules
    state: WatchState
    next_check_at: datetime
    last_checked_at: datetime | None = None
    failures: int = 0
    fault: str | None = None
    fault_notified: str | None = None
    post_faults: dict[str, str] = field(default_factory=dict)
    posts_hold_until: datetime | None = None


class PostKind(StrEnum):
    """What a post says."""

    ALERT = "alert"
    RECOVERY = "recovery"
    TOPUP = "topup"
    DIGEST = "digest"
    FAULT = "fault"
    DAYS_ALERT = "days_alert"
    DAYS_RECOVERY = "days_recovery"
    SPIKE = "spike"


# The rule (a field of `Rules`) each kind of post speaks for; a fault DM speaks for none.
RULE_OF_KIND: dict[PostKind, str] = {
    PostKind.ALERT: "alert",
    PostKind.RECOVERY: "alert",
    PostKind.TOPUP: "topups",
    PostKind.DIGEST: "digest",
    PostKind.DAYS_ALERT: "days",
    PostKind.DAYS_RECOVERY: "days",
    PostKind.SPIKE: "spike",
}
_RULE_TYPES = (AlertRule, TopupRule, DigestRule, DaysRule, SpikeRule)


@dataclass(frozen=True, slots=True)
class Post:
    """A post to make: where, what kind, a key that makes it unique, and the facts it states."""

    kind: PostKind
    channel: str
    dedupe: str
    facts: dict[str, str] = field(default_factory=dict)


# A change to a workspace's rules, applied under its row lock.
RulesChange = Callable[[Rules], Rules]
# What to post about a workspace's fault, decided from its watch as stored.
Tell = Callable[[Watch], list[Post]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The state after a check, the posts it calls for, and top-up ids now seen."""

    state: WatchState
    posts: list[Post]
    seen_topups: list[str]


def topup_key(topup: Topup) -> str | None:
    """A stable id for a top-up: its id, else its date and amount; None if it has neither."""
    if topup.topup_id:
        return topup.topup_id
    if topup.raw_created_at and topup.amount is not None:
        return f"{topup.raw_created_at}|{topup.amount}"
    return None


def evaluate(
    rules: Rules,
    state: WatchState,
    balance: Balance,
    now: datetime,
    *,
    seen: frozenset[str],
    runway: Runway | None = None,
    sparkline: str = "",
    topped_up: Decimal = Decimal(0),
) -> Outcome:
    """Apply the rules to a fresh balance: alerts once per crossing, new top-ups once, due digests.

    `topped_up` is what top-ups first seen now added: a top-up re-arms a fired alert as soon as the
    balance is back above the threshold, where a drift must clear the 10 % hysteresis.
    """
    credits = balance.credits
    posts: list[Post] = []
    new = state
    if rules.alert is not None:
        new, alert_posts = _alert(rules.alert, new, credits, runway, topped_up)
        posts += alert_posts
    new_keys = [
        (key, topup)
        for topup in balance.topups_newest_first()
        if (key := topup_key(topup)) and key not in seen
    ]
    if rules.topups is not None and new.topups_baselined:
        for key, topup in reversed(new_keys):  # oldest first, as they happened
            posts.append(
                Post(PostKind.TOPUP, rules.topups.channel, f"topup:{key}", _topup_facts(topup, credits))
            )
    if rules.topups is not None:
        new = replace(new, topups_baselined=True)
    if rules.digest is not None and now >= rules.digest.next_at:
        posts.append(_digest(rules.digest, new, balance, now, runway, sparkline))
        new = replace(new, digest_last_at=now, digest_last_balance=credits)
    new = replace(new, last_balance=credits)
    return Outcome(new, posts, [key for key, _ in new_keys])


def _alert(
    rule: AlertRule, state: WatchState, credits: Decimal, runway: Runway | None, topped_up: Decimal
) -> tuple[WatchState, list[Post]]:
    facts = {"balance": str(credits), "threshold": str(rule.threshold)}
    if state.armed and credits < rule.threshold:
        crossing = state.crossings + 1
        if runway is not None and runway.days_left is not None:
            facts["days_left"] = str(runway.days_left)
        if runway is not None and runway.burn_per_day is not None:
            facts["burn_per_day"] = str(runway.burn_per_day)
        post = Post(PostKind.ALERT, rule.channel, f"alert:{crossing}", facts)
        return replace(state, armed=False, crossings=crossing), [post]
    if state.armed:
        return state, []
    # Back above threshold + 10 %, or lifted back above the threshold by a top-up.
    if credits >= rule.rearm_at or (topped_up > 0 and credits >= rule.threshold):
        post = Post(PostKind.RECOVERY, rule.channel, f"recovery:{state.crossings}", facts)
        return replace(state, armed=True), [post]
    return state, []


def _topup_facts(topup: Topup, credits: Decimal) -> dict[str, str]:
    facts = {"balance": str(credits), "status": topup.status.value}
    if topup.amount is not None:
        facts["amount"] = str(topup.amount)
    if topup.raw_status and topup.status is TopupStatus.UNKNOWN:
        facts["raw_status"] = topup.raw_status
    if topup.created_at is not None:
        facts["created_at"] = topup.created_at.isoformat()
    if topup.topup_id:
        facts["topup_id"] = topup.topup_id
    return facts


def _digest(
    rule: DigestRule,
    state: WatchState,
    balance: Balance,
    now: datetime,
    runway: Runway | None,
    sparkline: str,
) -> Post:
    facts = {"balance": str(balance.credits), "frequency": rule.frequency.value}
    if state.digest_last_balance is not None:
        facts["change"] = str(balance.credits - state.digest_last_balance)
    # The first digest covers one period, not every top-up Breeze still lists.
    since = state.digest_last_at or now - PERIOD[rule.frequency]
    topped = [
        t
        for t in balance.topups_newest_first()
        if t.created_at is not None and t.created_at > since and t.amount is not None
    ]
    succeeded = [t for t in topped if t.status is TopupStatus.SUCCEEDED]
    facts["topups"] = str(len(succeeded))
    facts["topup_credits"] = str(sum((t.amount for t in succeeded if t.amount is not None), Decimal(0)))
    facts["since"] = since.isoformat()
    if runway is not None:
        facts["runway"] = runway.status
        if runway.days_left is not None:
            facts["days_left"] = str(runway.days_left)
        if runway.burn_per_day is not None:
            facts["burn_per_day"] = str(runway.burn_per_day)
    if sparkline:
        facts["sparkline"] = sparkline
    return Post(PostKind.DIGEST, rule.channel, f"digest:{rule.next_at.isoformat()}", facts)


# --- what the worker's storage hands back and takes ------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingPost:
    """A post in the outbox, claimed for delivery."""

    id: int
    workspace: Workspace
    kind: PostKind
    channel: str
    facts: dict[str, str]
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class Checked:
    """What a check records: the outcome of the rules, and the sample it took."""

    outcome: Outcome
    sample: Sample
    next_check_at: datetime
    digest_next_at: datetime | None = None
    extra_posts: list[Post] = field(default_factory=list)


# Given the state read under the row lock and the top-ups already seen, what the check records.
Decide = Callable[[Watch, frozenset[str]], Checked | None]
