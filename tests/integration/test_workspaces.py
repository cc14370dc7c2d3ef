"""Multi-workspace mode: OAuth installs, one key per workspace, restarts, uninstalls, rotation."""

from __future__ import annotations

import base64
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import AppFactory, texts
from tests.fakes import FakeServer, Recorded, Reply, SlackClient
from tests.integration.test_keys import ADMIN, MEMBER, opened_view, submission

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "client-secret-for-tests-0123456789"
STATE_COOKIE = "slack-app-oauth-state"


class Workspace:
    """A fake Slack workspace: its id, the bot token an install gives, its Breeze key and balance."""

    def __init__(
        self, team_id: str, code: str, key: str, balance: int, enterprise_id: str | None = None
    ) -> None:
        self.team_id = team_id
        self.code = code
        self.bot_token = f"xoxb-{team_id.lower()}-bot-token"
        self.key = key
        self.balance = balance
        self.enterprise_id = enterprise_id


ALPHA = Workspace("TALPHA001", "code-alpha", "brz_live_AlphaKey_1111", 111)
BETA = Workspace("TBETA0002", "code-beta", "brz_live_BetaKey_2222", 222)
ORG = Workspace("TORGA0001", "code-org", "brz_live_OrgKey_3333", 333, enterprise_id="EORG00001")
ALL = (ALPHA, BETA, ORG)


def bearer(recorded: Recorded) -> str:
    return recorded.headers.get("authorization", "").removeprefix("Bearer ")


class FakeSlack:
    """The Slack Web API for installs: oauth.v2.access, auth.test, users.info, views.open."""

    def __init__(self, server: FakeServer, *, expires_in: int | None = None) -> None:
        self.server = server
        self.expires_in = expires_in
        self.refreshed: dict[str, str] = {}
        server.route("POST", "/api/oauth.v2.access", self.oauth)
        server.route("POST", "/api/auth.test", self.auth_test)
        server.route("GET", "/api/users.info", self.users_info)
        server.route("POST", "/api/views.open", Reply(200, {"ok": True, "view": {"id": "V1"}}))

    def tokens(self) -> dict[str, Workspace]:
        found = {w.bot_token: w for w in ALL}
        found.update({new: next(w for w in ALL if w.bot_token == old) for old, new in self.refreshed.items()})
        return found

    def oauth(self, recorded: Recorded) -> Reply:
        basic = base64.b64decode(recorded.headers["authorization"].removeprefix("Basic ")).decode()
        if basic != f"{CLIENT_ID}:{CLIENT_SECRET}":
            return Reply(200, {"ok": False, "error": "invalid_client_id"})
        form = recorded.form()
        if form.get("grant_type") == "refresh_token":
            workspace = next(w for w in ALL if form["refresh_token"] == f"xoxe-1-refresh-{w.team_id}")
            new = f"xoxe.xoxb-1-{workspace.team_id.lower()}-refreshed-{len(self.refreshed)}"
            self.refreshed[workspace.bot_token] = new
            body = {"ok": True, "access_token": new, "token_type": "bot", "expires_in": 43200}
            body["refresh_token"] = f"xoxe-1-refresh-{workspace.team_id}"
            return Reply(200, body)
        workspace = next((w for w in ALL if w.code == form.get("code")), None)
        if workspace is None:
            return Reply(200, {"ok": False, "error": "invalid_code"})
        body: dict[str, Any] = {
            "ok": True,
            "app_id": "A0001",
            "authed_user": {"id": ADMIN},
            "scope": "commands,users:read",
            "token_type": "bot",
            "access_token": workspace.bot_token,
            "bot_user_id": "UBOT",
            "team": {"id": workspace.team_id, "name": workspace.team_id.title()},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if workspace.enterprise_id:  # an org-wide install on Enterprise Grid has no team
            body.update(team=None, enterprise={"id": workspace.enterprise_id}, is_enterprise_install=True)
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
            body["refresh_token"] = f"xoxe-1-refresh-{workspace.team_id}"
        return Reply(200, body)

    def auth_test(self, recorded: Recorded) -> Reply:
        workspace = self.tokens().get(bearer(recorded))
        if workspace is None:
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        return Reply(
            200,
            {"ok": True, "team_id": workspace.team_id, "user_id": "UBOT", "bot_id": f"B{workspace.team_id}"},
        )

    def users_info(self, recorded: Recorded) -> Reply:
        workspace = self.tokens().get(bearer(recorded))
        if workspace is None:
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        user = recorded.query.get("user", "")
        return Reply(
            200, {"ok": True, "user": {"id": user, "team_id": workspace.team_id, "is_admin": user == ADMIN}}
        )


def breeze_by_key(recorded: Recorded) -> Reply:
    """Breeze: each workspace's key reads its own balance."""
    for workspace in ALL:
        if recorded.headers.get("xi-api-key") == workspace.key:
            return Reply(
                200, {"balance": workspace.balance, "topups": []}, {"x-breeze-api-key-id": workspace.team_id}
            )
    return Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "unknown key", "error": "unauthorized"})


@pytest.fixture
def fake_slack(slack_api: FakeServer, breeze: FakeServer) -> FakeSlack:
    breeze.route("GET", "/v1/balance", breeze_by_key)
    return FakeSlack(slack_api)


def multi(start_app: AppFactory, **overrides: Any) -> tuple[Any, SlackClient]:
    """The app in multi-workspace mode."""
    values: dict[str, Any] = {
        "slack_bot_token": None,
        "breeze_api_key": None,
        "slack_client_id": CLIENT_ID,
        "slack_client_secret": CLIENT_SECRET,
    }
    return start_app(**{**values, **overrides})


def install(slack: SlackClient, workspace: Workspace) -> httpx.Response:
    """Walk Slack's OAuth install: the install page, then the redirect back with a code."""
    page = slack.http.get("/slack/install")
    assert page.status_code == 200, page.text
    match = re.search(r"state=([\w-]+)", page.text)
    assert match, page.text
    assert "client_id=1111.2222" in page.text
    assert "scope=commands,users:read" in page.text
    state = match.group(1)
    return slack.http.get(
        "/slack/oauth_redirect",
        params={"code": workspace.code, "state": state},
        headers={"cookie": f"{STATE_COOKIE}={state}"},
    )


def org_fields(workspace: Workspace) -> dict[str, str]:
    """What Slack adds to a slash command from a workspace of an org-wide install."""
    if not workspace.enterprise_id:
        return {}
    return {"enterprise_id": workspace.enterprise_id, "is_enterprise_install": "true"}


def set_key(
    slack: SlackClient,
    slack_api: FakeServer,
    hooks: FakeServer,
    workspace: Workspace,
    team: str | None = None,
) -> None:
    """The workspace's admin sets its key through the modal."""
    team = team or workspace.team_id
    url = f"{hooks.url}/commands/{team}/set-key"
    before = len(slack_api.received(path="/api/views.open"))
    ack = slack.command(url, "set-key", team_id=team, user_id=ADMIN, **org_fields(workspace))
    assert ack.status_code == 200
    slack_api.wait_for(before + 1, path="/api/views.open")
    view = opened_view(slack_api)
    answer = slack.interaction(submission(view, workspace.key, team=team, enterprise=workspace.enterprise_id))
    assert answer.status_code == 200
    assert answer.content == b"", answer.text
    assert "saved" in texts(hooks.wait_for(1, path=url.removeprefix(hooks.url))[-1].json())


def balance_reply(
    slack: SlackClient, hooks: FakeServer, workspace: Workspace, tag: str, team: str | None = None
) -> str:
    team = team or workspace.team_id
    url = f"{hooks.url}/commands/{team}/{tag}"
    assert slack.command(url, team_id=team, user_id=MEMBER, **org_fields(workspace)).status_code == 200
    return texts(hooks.wait_for(1, path=url.removeprefix(hooks.url))[-1].json())


def test_install_page_and_redirect_store_the_installation(
    start_app: AppFactory, fake_slack: FakeSlack, slack_api: FakeServer, database_url: str
) -> None:
    _, slack = multi(start_app)

    done = install(slack, ALPHA)

    assert done.status_code == 200, done.text
    exchange = slack_api.received(path="/api/oauth.v2.access")[0]
    assert exchange.form()["code"] == ALPHA.code
    assert CLIENT_SECRET not in exchange.body.decode()  # sent as HTTP basic auth, not in the body
    assert bearer(slack_api.received(path="/api/auth.test")[0]) == ALPHA.bot_token
    raw = b"".join(p.read_bytes() for p in _sqlite_files(database_url))
    assert ALPHA.bot_token.encode() not in raw  # the bot token is stored encrypted


def _sqlite_files(database_url: str) -> list[Any]:
    from pathlib import Path

    path = Path(database_url.removeprefix("sqlite:///"))
    return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]


def test_a_forged_or_replayed_state_is_refused(
    start_app: AppFactory, fake_slack: FakeSlack, slack_api: FakeServer
) -> None:
    _, slack = multi(start_app)

    forged = slack.http.get(
        "/slack/oauth_redirect",
        params={"code": ALPHA.code, "state": "made-up"},
        headers={"cookie": f"{STATE_COOKIE}=made-up"},
    )

    assert forged.status_code in (400, 401)
    assert slack_api.received(path="/api/oauth.v2.access") == []


def test_every_workspace_answers_with_its_own_key_also_after_a_restart(
    start_app: AppFactory,
    fake_slack: FakeSlack,
    slack_api: FakeServer,
    hooks: FakeServer,
    any_database: str,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    app, slack = multi(start_app, database_url=any_database)
    for workspace in (ALPHA, BETA):
        assert install(slack, workspace).status_code == 200
        set_key(slack, slack_api, hooks, workspace)
    users_info_tokens = {bearer(r) for r in slack_api.received(path="/api/users.info")}
    assert users_info_tokens == {ALPHA.bot_token, BETA.bot_token}  # each workspace asked with its own token

    app.stop()
    all_logs.clear()
    _, slack = multi(start_app, database_url=any_database)
    deadline = time.monotonic() + 10
    while not any("installed in 2 workspace(s)" in r.getMessage() for r in all_logs.records):
        assert time.monotonic() < deadline, "installations were not preloaded after the restart"
        time.sleep(0.02)

    def ask(job: tuple[int, Workspace]) -> tuple[Workspace, str]:
        number, workspace = job
        return workspace, balance_reply(slack, hooks, workspace, f"after-restart-{number}")

    jobs = [(n, (ALPHA, BETA)[n % 2]) for n in range(24)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, jobs))
    for workspace, said in answers:
        assert f"{workspace.balance} credits" in said, said
        other = BETA if workspace is ALPHA else ALPHA
        assert f"{other.balance} credits" not in said


def test_a_workspace_that_never_installed_is_told_so(
    start_app: AppFactory, fake_slack: FakeSlack, hooks: FakeServer, breeze: FakeServer
) -> None:
    _, slack = multi(start_app)
    url = f"{hooks.url}/commands/TNOBODY/1"

    ack = slack.command(url, team_id="TNOBODY")

    assert ack.status_code == 200
    assert "not set up for this workspace" in ack.text  # in the ack itself: no call before it
    assert hooks.received() == []
    assert breeze.received() == []


def test_a_workspace_without_a_key_is_not_given_another_workspaces_key(
    start_app: AppFactory, fake_slack: FakeSlack, slack_api: FakeServer, hooks: FakeServer, breeze: FakeServer
) -> None:
    _, slack = multi(start_app, breeze_api_key="brz_live_DeploymentKey_0000")
    for workspace in (ALPHA, BETA):
        install(slack, workspace)
    set_key(slack, slack_api, hooks, ALPHA)
    breeze.reset()
    breeze.route("GET", "/v1/balance", breeze_by_key)

    said = balance_reply(slack, hooks, BETA, "no-key")

    assert "No Breeze API key is set up for this workspace yet" in said
    assert breeze.received() == []  # neither ALPHA's key nor BREEZE_API_KEY was used


@pytest.mark.parametrize("event_type", ["app_uninstalled", "tokens_revoked"])
def test_uninstall_forgets_the_installation_and_the_key(
    start_app: AppFactory,
    fake_slack: FakeSlack,
    slack_api: FakeServer,
    hooks: FakeServer,
    database_url: str,
    event_type: str,
) -> None:
    _, slack = multi(start_app)
    for workspace in (ALPHA, BETA):
        install(slack, workspace)
        set_key(slack, slack_api, hooks, workspace)
    event: dict[str, Any] = {"type": event_type}
    if event_type == "tokens_revoked":
        event["tokens"] = {"oauth": [], "bot": ["UBOT"]}

    answer = slack.event(
        {
            "token": "legacy",
            "team_id": ALPHA.team_id,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": "Ev1",
            "event_time": int(time.time()),
        }
    )

    assert answer.status_code == 200
    gone = slack.command(f"{hooks.url}/commands/{ALPHA.team_id}/gone", team_id=ALPHA.team_id)
    assert "not set up for this workspace" in gone.text
    assert f"{BETA.balance} credits" in balance_reply(slack, hooks, BETA, "still-here")
    import sqlite3

    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        teams = {row[0] for row in db.execute("SELECT team_id FROM breeze_keys")}
        installed = {row[0] for row in db.execute("SELECT team_id FROM slack_installations")}
    assert teams == {BETA.team_id}
    assert installed == {BETA.team_id}


def test_rotating_bot_tokens_are_refreshed_before_use(
    start_app: AppFactory, slack_api: FakeServer, breeze: FakeServer, hooks: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", breeze_by_key)
    fake = FakeSlack(slack_api, expires_in=600)  # expires within the two-hour refresh margin
    _, slack = multi(start_app)
    install(slack, ALPHA)

    set_key(slack, slack_api, hooks, ALPHA)

    refreshes = [r for r in slack_api.received(path="/api/oauth.v2.access") if r.form().get("grant_type")]
    assert refreshes, "the expiring token was not refreshed"
    new_token = fake.refreshed[ALPHA.bot_token]
    assert bearer(slack_api.received(path="/api/users.info")[-1]) == new_token
    assert f"{ALPHA.balance} credits" in balance_reply(slack, hooks, ALPHA, "after-refresh")


def test_install_routes_are_off_in_single_workspace_mode(start_app: AppFactory) -> None:
    _, slack = start_app()

    response = slack.http.get("/slack/install")

    assert response.status_code == 404
    assert "SLACK_CLIENT_ID" in response.json()["error"]


def test_an_org_wide_install_has_one_key_for_every_workspace_of_the_org(
    start_app: AppFactory, fake_slack: FakeSlack, slack_api: FakeServer, hooks: FakeServer, database_url: str
) -> None:
    _, slack = multi(start_app)
    assert install(slack, ORG).status_code == 200

    set_key(slack, slack_api, hooks, ORG, team="TORGA0001")

    for team in ("TORGA0001", "TORGB0002"):
        assert f"{ORG.balance} credits" in balance_reply(slack, hooks, ORG, f"org-{team}", team=team)
    import sqlite3

    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        rows = list(db.execute("SELECT enterprise_id, team_id FROM breeze_keys"))
    assert rows == [(ORG.enterprise_id, "")]
