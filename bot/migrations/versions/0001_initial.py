"""Workspace Breeze keys, Slack installations and OAuth state.

The Slack tables have the columns slack_sdk's SQLAlchemy stores read and write; the token
columns are wider because the app stores tokens encrypted.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = 32
_NAME = 200


def _bot_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(_ID), nullable=False),
        sa.Column("app_id", sa.String(_ID), nullable=False),
        sa.Column("enterprise_id", sa.String(_ID)),
        sa.Column("enterprise_name", sa.String(_NAME)),
        sa.Column("team_id", sa.String(_ID)),
        sa.Column("team_name", sa.String(_NAME)),
        sa.Column("bot_token", sa.Text),
        sa.Column("bot_id", sa.String(_ID)),
        sa.Column("bot_user_id", sa.String(_ID)),
        sa.Column("bot_scopes", sa.String(1000)),
        sa.Column("bot_refresh_token", sa.Text),
        sa.Column("bot_token_expires_at", sa.DateTime),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("installed_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "breeze_keys",
        sa.Column("enterprise_id", sa.String(_ID), nullable=False, server_default=""),
        sa.Column("team_id", sa.String(_ID), nullable=False, server_default=""),
        sa.Column("api_key_encrypted", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(_NAME)),
        sa.Column("last4", sa.String(8), nullable=False),
        sa.Column("set_by", sa.String(_ID), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "team_id", name="breeze_keys_pkey"),
    )
    installation = _bot_columns()
    installation[-2:-2] = [
        sa.Column("enterprise_url", sa.String(_NAME)),
        sa.Column("user_id", sa.String(_ID), nullable=False),
        sa.Column("user_token", sa.Text),
        sa.Column("user_scopes", sa.String(1000)),
        sa.Column("user_refresh_token", sa.Text),
        sa.Column("user_token_expires_at", sa.DateTime),
        sa.Column("incoming_webhook_url", sa.Text),
        sa.Column("incoming_webhook_channel", sa.String(_NAME)),
        sa.Column("incoming_webhook_channel_id", sa.String(_NAME)),
        sa.Column("incoming_webhook_configuration_url", sa.Text),
        sa.Column("token_type", sa.String(_ID)),
    ]
    op.create_table("slack_installations", *installation)
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table("slack_bots", *_bot_columns())
    op.create_index("slack_bots_idx", "slack_bots", ["client_id", "enterprise_id", "team_id", "installed_at"])
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(_NAME), nullable=False),
        sa.Column("expire_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_oauth_states")
    op.drop_index("slack_bots_idx", "slack_bots")
    op.drop_table("slack_bots")
    op.drop_index("slack_installations_idx", "slack_installations")
    op.drop_table("slack_installations")
    op.drop_table("breeze_keys")
