"""Names shared by Block Kit builders and listeners, so they cannot drift apart."""

from __future__ import annotations

from enum import StrEnum

COMMAND = "/breeze-balance"


class Subcommand(StrEnum):
    """The words accepted after `/breeze-balance`."""

    BALANCE = ""
    SHARE = "share"
    HELP = "help"


class BlockId(StrEnum):
    """`block_id`s of the blocks this app sends."""

    HEADER = "balance_header"
    BALANCE = "balance_amount"
    TOPUPS = "balance_topups"
    FOOTER = "balance_footer"
    ERROR = "error_message"
    ERROR_CONTEXT = "error_context"
    HELP = "help_text"
