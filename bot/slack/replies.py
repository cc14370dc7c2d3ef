"""Posts replies to a command's `response_url` over the shared HTTP client; never raises."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

import httpx

from bot.slack.blocks.balance import Message

log = logging.getLogger(__name__)

RETRY_DELAY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Outcome:
    problem: str | None = None
    retry: bool = False
    blocks_refused: bool = False


class ReplyPoster:
    """Delivers messages to `response_url`s; one retry for passing faults, text-only if blocks are refused."""

    def __init__(self, http: httpx.AsyncClient, timeout_seconds: float = 10.0) -> None:
        self._http = http
        self._timeout = timeout_seconds

    async def post(self, response_url: str, message: Message, reference: str) -> bool:
        """Send `message`; True when Slack took it. Failures are logged with `reference`."""
        outcome = await self._try(response_url, message)
        if outcome.blocks_refused:
            log.warning("reply %s: Slack refused the blocks, sending text only", reference)
            outcome = await self._try(response_url, replace(message, blocks=[]))
        if outcome.retry:
            log.warning("reply %s not delivered, retrying once: %s", reference, outcome.problem)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            outcome = await self._try(response_url, message)
        if outcome.problem is not None:
            log.error("reply %s lost: %s", reference, outcome.problem)
            return False
        return True

    async def _try(self, response_url: str, message: Message) -> _Outcome:
        try:
            response = await self._http.post(response_url, json=message.payload(), timeout=self._timeout)
        except httpx.HTTPError as exc:
            return _Outcome(f"{type(exc).__name__} posting to response_url", retry=True)
        status = response.status_code
        if status < 300:
            return _Outcome()
        said = response.text[:100]
        problem = f"response_url answered HTTP {status} {said!r}"
        return _Outcome(
            problem,
            retry=status >= 500 or status == 429,
            blocks_refused=status == 400 and "invalid_blocks" in said and bool(message.blocks),
        )
