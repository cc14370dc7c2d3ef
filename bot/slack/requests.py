"""Slack payloads read into small typed values at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.balances import Requester, Workspace, new_reference


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """The parts of a slash-command payload the answer needs."""

    reference: str
    requester: Requester
    text: str
    response_url: str
    trigger_id: str = ""

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CommandRequest:
        """Read a slash-command payload (already signature-checked by Bolt)."""
        return cls(
            reference=new_reference(),
            requester=Requester(
                team_id=payload.get("team_id"),
                enterprise_id=payload.get("enterprise_id") or None,
                user_id=str(payload.get("user_id", "")),
                channel_id=payload.get("channel_id"),
                is_enterprise_install=str(payload.get("is_enterprise_install")).lower() == "true",
            ),
            text=str(payload.get("text") or ""),
            response_url=str(payload.get("response_url") or ""),
            trigger_id=str(payload.get("trigger_id") or ""),
        )


def workspace_of(body: dict[str, Any]) -> Workspace:
    """The workspace of an interaction or event payload (they name it in different places)."""
    team = body.get("team") or {}
    enterprise = body.get("enterprise") or {}
    team_id = body.get("team_id") or (team.get("id") if isinstance(team, dict) else None)
    view = body.get("view") or {}
    if not team_id and isinstance(view, dict):
        team_id = view.get("team_id")
    enterprise_id = body.get("enterprise_id") or (
        enterprise.get("id") if isinstance(enterprise, dict) else None
    )
    org_wide = str(body.get("is_enterprise_install")).lower() == "true"
    return Workspace(enterprise_id or None, team_id or None, org_wide)
