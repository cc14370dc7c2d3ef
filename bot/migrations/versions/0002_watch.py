"""Rules the worker watches (alerts, top-up notices, digests), balance samples and the outbox.

`watch_rules` holds one row per workspace with its rules and their state; `watch_posts` is the
outbox: a post is inserted in the same transaction as the state change that calls for it, and
unique per workspace and `dedupe`, so no check, however many run at once, can post it twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = 32
_AMOUNT = 64


def _workspace() -> list[sa.Column[object]]:
    return [
        sa.Column("enterprise_id", sa.String(_ID), nullable=False, server_default=""),
        sa.Column("team_id", sa.String(_ID), nullable=False, server_default=""),
    ]


def upgrade() -> None:
    op.create_table(
        "watch_rules",
        *_workspace(),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("alert_threshold", sa.String(_AMOUNT)),
        sa.Column("alert_channel", sa.String(_ID)),
        sa.Column("alert_set_by", sa.String(_ID)),
        sa.Column("alert_armed", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("alert_crossings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("topups_channel", sa.String(_ID)),
        sa.Column("topups_set_by", sa.String(_ID)),
        sa.Column("topups_baselined", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("digest_frequency", sa.String(8)),
        sa.Column("digest_time", sa.String(5)),
        sa.Column("digest_tz", sa.String(64)),
        sa.Column("digest_channel", sa.String(_ID)),
        sa.Column("digest_set_by", sa.String(_ID)),
        sa.Column("digest_next_at", sa.DateTime(timezone=True)),
        sa.Column("digest_last_at", sa.DateTime(timezone=True)),
        sa.Column("digest_last_balance", sa.String(_AMOUNT)),
        sa.Column("last_balance", sa.String(_AMOUNT)),
        sa.Column("last_checked_at", sa.DateTime(timezone=True)),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fault", sa.String(64)),
        sa.Column("fault_notified", sa.String(64)),
        # Channels whose posts Slack refuses, and why: {"C0123ABCD": "slack:not_in_channel"} (JSON).
        sa.Column("post_faults", sa.Text),
        # Slack asked us to wait (ratelimited): no post to this workspace before then.
        sa.Column("posts_hold_until", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("enterprise_id", "team_id", name="watch_rules_pkey"),
    )
    op.create_index("watch_rules_due_idx", "watch_rules", ["next_check_at"])
    op.create_table(
        "watch_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        *_workspace(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credits", sa.String(_AMOUNT), nullable=False),
        sa.Column("topup_credits", sa.String(_AMOUNT), nullable=False, server_default="0"),
        sa.Column("key_fp", sa.String(_ID), nullable=False, server_default=""),
    )
    op.create_index("watch_samples_idx", "watch_samples", ["enterprise_id", "team_id", "at"])
    op.create_table(
        "watch_topups",
        *_workspace(),
        sa.Column("topup_key", sa.String(250), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "team_id", "topup_key", name="watch_topups_pkey"),
    )
    op.create_table(
        "watch_posts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        *_workspace(),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(_ID), nullable=False),
        sa.Column("dedupe", sa.String(300), nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("gave_up", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_error", sa.String(100)),
        sa.UniqueConstraint("enterprise_id", "team_id", "dedupe", name="watch_posts_dedupe"),
    )
    op.create_index("watch_posts_due_idx", "watch_posts", ["sent_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("watch_posts_due_idx", "watch_posts")
    op.drop_table("watch_posts")
    op.drop_table("watch_topups")
    op.drop_index("watch_samples_idx", "watch_samples")
    op.drop_table("watch_samples")
    op.drop_index("watch_rules_due_idx", "watch_rules")
    op.drop_table("watch_rules")
