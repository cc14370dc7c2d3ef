"""Names shared by Block Kit builders and listeners, so they cannot drift apart."""

from __future__ import annotations

from enum import StrEnum

COMMAND = "/breeze-balance"


class Subcommand(StrEnum):
    """The words accepted after `/breeze-balance`."""

    BALANCE = ""
    SHARE = "share"
    REFRESH = "refresh"
    HELP = "help"
    SET_KEY = "set-key"
    REMOVE_KEY = "remove-key"
    STATUS = "status"
    ALERT = "alert"
    NOTIFY = "notify"
    DIGEST = "digest"
    USAGE = "usage"


class CallbackId(StrEnum):
    """`callback_id`s of modals."""

    SET_KEY = "set_key_modal"
    ALERT = "alert_modal"
    NOTIFY = "notify_modal"
    DIGEST = "digest_modal"


class ActionId(StrEnum):
    """`action_id`s of interactive elements."""

    KEY_INPUT = "api_key_input"
    REMOVE_CONFIRM = "remove_key_confirm"
    REMOVE_CANCEL = "remove_key_cancel"
    HOME_SET_KEY = "home_set_key"
    HOME_ALERT = "home_alert"
    HOME_NOTIFY = "home_notify"
    HOME_DIGEST = "home_digest"
    HOME_REFRESH = "home_refresh"
    THRESHOLD = "rule_threshold_input"
    CHANNEL = "rule_channel_input"
    SWITCH = "rule_switch_input"
    FREQUENCY = "rule_frequency_input"
    TIME = "rule_time_input"


class BlockId(StrEnum):
    """`block_id`s of the blocks this app sends."""

    HEADER = "balance_header"
    BALANCE = "balance_amount"
    TOPUPS = "balance_topups"
    FOOTER = "balance_footer"
    ERROR = "error_message"
    ERROR_CONTEXT = "error_context"
    HELP = "help_text"
    KEY_INPUT = "api_key"
    KEY_INFO = "key_info"
    KEY_ACTIONS = "key_actions"
    STATUS = "key_status"
    RULES = "watch_rules"
    TREND = "balance_trend"
    NOTICE = "notice"
    HOME_ADMIN = "home_admin"
    HOME_ACTIONS = "home_actions"
    THRESHOLD = "rule_threshold"
    CHANNEL = "rule_channel"
    SWITCH = "rule_switch"
    FREQUENCY = "rule_frequency"
    TIME = "rule_time"
    USAGE = "usage_totals"
    USAGE_KEYS = "usage_by_key"
    USAGE_MODELS = "usage_by_model"
    USAGE_TREND = "usage_trend"
