"""The runway and spike alerts on Breeze's metering, beside the other rules in `watch_rules`.

`days_*`: warn when the runway falls under `days_under` days, armed (or fired) and counted per
crossing like the low-balance alert. `spike_*`: warn when a day's spend is over `spike_multiple` times
the usual day, at most once per UTC day (`spike_last_day`). Revision 0003, after 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = 32


def upgrade() -> None:
    with op.batch_alter_table("watch_rules") as table:
        table.add_column(sa.Column("days_under", sa.Integer))
        table.add_column(sa.Column("days_channel", sa.String(_ID)))
        table.add_column(sa.Column("days_set_by", sa.String(_ID)))
        table.add_column(sa.Column("days_armed", sa.Boolean, nullable=False, server_default=sa.true()))
        table.add_column(sa.Column("days_crossings", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("spike_multiple", sa.String(16)))
        table.add_column(sa.Column("spike_channel", sa.String(_ID)))
        table.add_column(sa.Column("spike_set_by", sa.String(_ID)))
        table.add_column(sa.Column("spike_last_day", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("watch_rules") as table:
        for column in (
            "spike_last_day",
            "spike_set_by",
            "spike_channel",
            "spike_multiple",
            "days_crossings",
            "days_armed",
            "days_set_by",
            "days_channel",
            "days_under",
        ):
            table.drop_column(column)
