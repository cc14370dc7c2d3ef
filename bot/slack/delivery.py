"""Delivers the outbox: each queued post rendered by `notices` and posted, recorded as sent once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.domain.rules import PendingPost, PostKind
from bot.errors import SlackPostError
from bot.services.ports import Delivered
from bot.services.tasks import record
from bot.services.watching import Outbox
from bot.slack.blocks import notices
from bot.slack.poster import ChannelPoster

log = logging.getLogger(__name__)

BATCH = 100
PARALLEL_WORKSPACES = 8


class Deliverer:
    """Claims due posts, posts each workspace's in order, and records what Slack said."""

    def __init__(self, outbox: Outbox, poster: ChannelPoster) -> None:
        self._outbox = outbox
        self._poster = poster

    async def deliver(self, ids: Sequence[int] | None = None) -> Delivered:
        """Deliver up to a batch of due posts (only these `ids`, when given), and the DMs that causes."""
        report = Delivered()
        pending = await self._outbox.claim(BATCH, list(ids) if ids is not None else None)
        while pending:
            groups: dict[tuple[str, str], list[PendingPost]] = {}
            for post in pending:
                groups.setdefault(post.workspace.scope, []).append(post)
            gate = asyncio.Semaphore(PARALLEL_WORKSPACES)
            queued = await asyncio.gather(
                *(self._workspace(group, gate, report) for group in groups.values())
            )
            # A channel that refused a post queues a DM to the admin: send it in the same round.
            follow_ups = [post_id for ids_ in queued for post_id in ids_]
            pending = await self._outbox.claim(BATCH, follow_ups) if follow_ups else []
        return report

    async def _workspace(
        self, posts: list[PendingPost], gate: asyncio.Semaphore, report: Delivered
    ) -> list[int]:
        follow_ups: list[int] = []
        # DMs about a refusing channel go last: if the channel took a post meanwhile, they are moot.
        ordered = sorted(posts, key=lambda post: post.kind is PostKind.FAULT)
        working: set[str] = set()
        async with gate:
            for index, post in enumerate(ordered):
                if post.kind is PostKind.FAULT and post.facts.get("channel") in working:
                    await self._outbox.dropped(post, "fault cleared")
                    continue
                try:
                    await self._poster.post(
                        post.workspace, post.channel, notices.render(post.kind, post.facts)
                    )
                except asyncio.CancelledError:
                    # Shutdown's grace ran out while Slack had the post: it may be in the channel.
                    log.warning(
                        "post %d (%s) to %s in %s cut short at shutdown: it may have been posted, "
                        "so it is not sent again",
                        post.id,
                        post.kind,
                        post.channel,
                        post.workspace,
                    )
                    await record(self._outbox.cut_short(post), f"post {post.id} as cut short")
                    raise
                except SlackPostError as exc:
                    report.failed += 1
                    log.warning(
                        "post %d (%s) to %s in %s failed: %s",
                        post.id,
                        post.kind,
                        post.channel,
                        post.workspace,
                        exc.code,
                    )
                    follow_ups += await self._outbox.failed(post, exc, waiting=ordered[index + 1 :])
                    if exc.retry_after is not None:
                        break  # the rest of this workspace's posts wait as Slack asked
                    continue
                await record(self._outbox.delivered(post), f"post {post.id} as sent")
                working.add(post.channel)
                report.sent += 1
                log.info("posted %s to %s in %s", post.kind, post.channel, post.workspace)
        return follow_ups
