"""Breeze Balance for Slack: `/breeze-balance` shows a workspace's Breeze credits."""

__version__ = "0.1.0"
