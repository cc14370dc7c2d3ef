"""The app's pages as a person sees them: the setup guide of a first run and the status page, in Chromium.

The setup guide is served by the real `python -m bot serve` (and the Procfile's web line) started from
an empty environment; the status page by the configured app against the loopback fakes. The pages are
opened in a real headless Chromium driven by Playwright: one browser for the whole file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx
import jsonschema
import pytest
import yaml

from bot import routes
from tests.browser import LAUNCH_ARGS, chromium_path, png_size, skip_reason
from tests.conftest import API_KEY, BOT_TOKEN, ENCRYPTION_KEY, SIGNING_SECRET, AppFactory
from tests.fakes import FakeServer, Reply, SlackClient
from tests.integration.test_cli import base_env, free_port, procfile_command, run_bot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "slack-app-manifest.schema.json"
CREATE_APP_PREFIX = "https://api.slack.com/apps?new_app=1&manifest_json="
SETTINGS = [
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_APP_TOKEN",
    "BREEZE_API_KEY",
    "BREEZE_ENCRYPTION_KEYS",
    "DATABASE_URL",
    "PUBLIC_URL",
]
# Distinctive values: if any of them shows up on a page or in a log, a secret leaked.
CANARY_BOT_TOKEN = "xoxb-9999-8888-PageCanaryBotTokenQ7"
CANARY_API_KEY = "brz_live_PageCanaryBreezeKeyZ3"
CANARY_DB_PASSWORD = "PageCanaryDbPassw0rdK9"
CANARY_DATABASE_URL = f"postgresql://breeze:{CANARY_DB_PASSWORD}@127.0.0.1:5432/breeze"
CANARY_SIGNING_SECRET = "page0canary0signing0secret0v4lue"


# --- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole file; closed with it, since Playwright's sync API holds
    an event loop in this thread while it runs (later tests call asyncio.run)."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (own cookies and headers) for one test."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


# --- `python -m bot serve` in setup mode -----------------------------------------------------------


@dataclass
class Served:
    """A `serve` process on loopback, with its output going to a file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then kill if it does not stop; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return int(process.returncode)


def wait_until_serving(served: Served) -> None:
    """Poll /healthz until it answers (generously); fail with the output if the process dies."""
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"serve exited with {served.process.returncode}:\n{served.output()}")
        try:
            if httpx.get(f"{served.url}{routes.HEALTH_PATH}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"serve did not answer /healthz:\n{served.output()}")


@contextmanager
def serve(workdir: Path, argv: list[str] | None = None, **settings: str) -> Iterator[Served]:
    """`python -m bot serve` (or `argv`) from an empty environment plus PORT and `settings`, in `workdir`."""
    port = free_port()
    cwd = workdir / f"app-{port}"
    cwd.mkdir()
    log = workdir / f"serve-{port}.log"
    env = base_env(PORT=str(port), **settings)
    # The virtualenv's bin first, as `make run` or a platform's buildpack would have it.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv or [sys.executable, "-m", "bot", "serve"], env=env, cwd=cwd, stdout=out, stderr=out
        )
    served = Served(process, port, log)
    try:
        wait_until_serving(served)
        yield served
    finally:
        stop(process)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A first run: `python -m bot serve` with nothing set but PORT."""
    with serve(tmp_path_factory.mktemp("fresh")) as served:
        yield served


# --- reading the pages -------------------------------------------------------------------------------


@cache
def manifest_schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA.read_text()))


def checklist(page: Page) -> dict[str, tuple[str | None, str]]:
    """Each checklist row: setting name -> (data-set, the status as shown)."""
    rows = {}
    for row in page.locator("#checklist tr[data-setting]").all():
        name = row.get_attribute("data-setting")
        assert name is not None
        rows[name] = (row.get_attribute("data-set"), row.locator("td").nth(1).inner_text().strip())
    return rows


def manifest_from_link(href: str | None) -> dict[str, Any]:
    """The manifest a click on `Create the Slack app` hands to Slack."""
    assert href is not None
    assert href.startswith(CREATE_APP_PREFIX), href
    encoded = href.removeprefix(CREATE_APP_PREFIX)
    # One parameter, fully encoded: nothing in the JSON may end it early or start a fragment.
    assert "&" not in encoded
    assert "#" not in encoded
    assert " " not in encoded
    return dict(json.loads(unquote(encoded)))


def assert_points_at(manifest: dict[str, Any], base: str) -> None:
    """Valid for Slack, and every request URL under `base` on one of the app's own routes."""
    jsonschema.validate(manifest, manifest_schema())
    events = f"{base}{routes.EVENTS_PATH}"
    assert manifest["features"]["slash_commands"][0]["url"] == events
    assert manifest["settings"]["interactivity"]["request_url"] == events
    assert manifest["settings"]["event_subscriptions"]["request_url"] == events
    assert manifest["oauth_config"]["redirect_urls"] == [f"{base}{routes.OAUTH_REDIRECT_PATH}"]
    assert manifest["settings"]["socket_mode_enabled"] is False
    for url in (
        manifest["features"]["slash_commands"][0]["url"],
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        *manifest["oauth_config"]["redirect_urls"],
    ):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == base
        assert parts.path in (routes.EVENTS_PATH, routes.OAUTH_REDIRECT_PATH)
        assert not parts.query
        assert not parts.fragment


def page_manifest(page: Page) -> dict[str, Any]:
    """The create-app link's manifest, checked to be the same as the JSON and YAML shown beside it."""
    manifest = manifest_from_link(page.get_attribute("a#create-app", "href"))
    assert json.loads(page.locator("textarea#manifest-json").input_value()) == manifest
    assert yaml.safe_load(page.locator("#manifest-yaml").text_content() or "") == manifest
    return manifest


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret value ({secret[:6]}...) is shown"


# --- setup mode ------------------------------------------------------------------------------------


def test_a_first_run_shows_the_setup_guide(fresh: Served, page: Page, tmp_path: Path) -> None:
    response = page.goto(f"{fresh.url}/")

    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert page.title() == "Set up Breeze Balance"
    assert page.locator("h1").inner_text() == "Set up Breeze Balance"
    rows = checklist(page)
    assert list(rows) == SETTINGS
    assert rows["SLACK_SIGNING_SECRET"] == ("no", "missing")
    for name in SETTINGS[1:]:
        assert rows[name] == ("no", "not set"), name
    assert "SLACK_SIGNING_SECRET is not set" in page.locator("#problems").inner_text()
    assert page.locator("#mode").inner_text() == "one workspace"
    assert page.locator("#next-steps li.current").inner_text().startswith("One workspace")
    assert page.locator("a#create-app").is_visible()
    # Reached over plain http: the page says Slack needs https.
    assert page.locator("#https-note").is_visible()
    request_urls = page.locator("#request-urls code").all_inner_texts()
    assert request_urls == [f"{fresh.url}{routes.EVENTS_PATH}", f"{fresh.url}{routes.OAUTH_REDIRECT_PATH}"]

    shot = tmp_path / "setup-page.png"
    page.screenshot(path=str(shot), full_page=True)
    width, height = png_size(shot)
    assert width >= 800
    assert height >= 720
    assert shot.stat().st_size > 20_000, "the screenshot looks blank"


def test_the_create_app_link_carries_a_valid_manifest_for_this_address(fresh: Served, page: Page) -> None:
    page.goto(f"{fresh.url}/")

    # Chromium sends Host: 127.0.0.1:PORT, so that is the address the manifest points Slack to.
    assert_points_at(page_manifest(page), fresh.url)
    assert page.get_attribute("a#create-app", "target") == "_blank"


def test_the_manifest_follows_the_proxy_headers(fresh: Served, page: Page) -> None:
    page.set_extra_http_headers({"X-Forwarded-Proto": "https"})
    page.goto(f"{fresh.url}/")

    assert_points_at(page_manifest(page), f"https://127.0.0.1:{fresh.port}")
    assert page.locator("#https-note").count() == 0

    # Chromium sets Host itself, so the tunnel's Host comes through httpx; the browser renders the answer.
    behind_tunnel = httpx.get(
        f"{fresh.url}/",
        headers={"Host": "tunnel.acme.dev", "X-Forwarded-Proto": "https,http"},
        timeout=10,
    )
    assert behind_tunnel.status_code == 200
    page.set_content(behind_tunnel.text)
    assert_points_at(page_manifest(page), "https://tunnel.acme.dev")
    assert page.locator("#request-urls code").first.inner_text() == "https://tunnel.acme.dev/slack/events"


def test_a_hostile_host_header_is_only_text(fresh: Served, page: Page) -> None:
    hostile = 'evil.example"><script>document.title="pwned"</script><a x="'
    answer = httpx.get(f"{fresh.url}/", headers={"Host": hostile}, timeout=10)
    assert answer.status_code == 200

    page.set_content(answer.text)

    assert page.title() == "Set up Breeze Balance"  # the injected script did not run
    assert page.locator("script").count() == 0
    assert page.locator("a#create-app").count() == 1
    assert (page.get_attribute("a#create-app", "href") or "").startswith(CREATE_APP_PREFIX)
    assert hostile in page.locator("#https-note code").first.inner_text()  # shown as text, escaped


def test_public_url_wins_for_the_manifest(tmp_path: Path, page: Page) -> None:
    with serve(tmp_path, PUBLIC_URL="https://bot.acme.dev/") as served:
        page.set_extra_http_headers({"X-Forwarded-Proto": "http"})
        page.goto(f"{served.url}/")

        assert_points_at(page_manifest(page), "https://bot.acme.dev")
        assert checklist(page)["PUBLIC_URL"] == ("yes", "set")
        assert page.locator("#https-note").count() == 0
        assert page.locator("#request-urls code").all_inner_texts() == [
            "https://bot.acme.dev/slack/events",
            "https://bot.acme.dev/slack/oauth_redirect",
        ]
        assert "https://bot.acme.dev/slack/install" in page.locator("#next-steps").inner_text()

        # Even when a proxy says otherwise, PUBLIC_URL is what Slack is given.
        proxied = httpx.get(
            f"{served.url}/", headers={"Host": "internal:8080", "X-Forwarded-Proto": "http"}, timeout=10
        )
        page.set_content(proxied.text)
        assert_points_at(page_manifest(page), "https://bot.acme.dev")
        assert "internal:8080" not in proxied.text


def test_the_checklist_shows_what_is_set_but_never_a_value(tmp_path: Path, page: Page) -> None:
    secrets = (CANARY_BOT_TOKEN, CANARY_API_KEY, ENCRYPTION_KEY, CANARY_DB_PASSWORD, CANARY_DATABASE_URL)
    with serve(
        tmp_path,
        SLACK_BOT_TOKEN=CANARY_BOT_TOKEN,
        BREEZE_API_KEY=CANARY_API_KEY,
        BREEZE_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        DATABASE_URL=CANARY_DATABASE_URL,
    ) as served:
        response = page.goto(f"{served.url}/")
        assert response is not None
        raw_html = response.text()
        rows = checklist(page)
        health = httpx.get(f"{served.url}/healthz", timeout=10)
        refused = httpx.post(f"{served.url}/slack/events", content="x=1", timeout=10)

    assert rows["SLACK_SIGNING_SECRET"] == ("no", "missing")
    assert rows["SLACK_BOT_TOKEN"] == ("yes", "set")
    assert rows["BREEZE_API_KEY"] == ("yes", "set")
    assert rows["BREEZE_ENCRYPTION_KEYS"] == ("yes", "set")
    assert rows["DATABASE_URL"] == ("yes", "set")
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_APP_TOKEN", "PUBLIC_URL"):
        assert rows[name] == ("no", "not set"), name
    assert page.locator('#checklist tr[data-setting="BREEZE_ENCRYPTION_KEYS"] td').nth(2).inner_text() == (
        "required with PostgreSQL"
    )
    # Not in the HTML as sent, nor in the page as the browser built it, nor anywhere else it answers.
    for text in (raw_html, page.content(), health.text, refused.text, served.output()):
        assert_no_secrets(text, *secrets)
    assert refused.status_code == 503
    assert health.json()["missing"] == ["SLACK_SIGNING_SECRET"]


def test_a_set_signing_secret_is_not_shown_and_requests_it_signs_are_still_refused(
    tmp_path: Path, page: Page, hooks: FakeServer
) -> None:
    # The signing secret is set, but the mode is incomplete: still setup mode.
    with serve(tmp_path, SLACK_SIGNING_SECRET=CANARY_SIGNING_SECRET, SLACK_CLIENT_ID="1111.2222") as served:
        response = page.goto(f"{served.url}/")
        assert response is not None
        raw_html = response.text()
        rows = checklist(page)
        problems = page.locator("#problems").inner_text()
        mode = page.locator("#mode").inner_text()
        slack = SlackClient(served.url, CANARY_SIGNING_SECRET)
        try:
            signed = slack.command(f"{hooks.url}/commands/setup/1")
        finally:
            slack.close()
        output = served.output()

    assert rows["SLACK_SIGNING_SECRET"] == ("yes", "set")
    assert rows["SLACK_CLIENT_ID"] == ("yes", "set")
    assert rows["SLACK_CLIENT_SECRET"][0] == "no"
    assert "SLACK_CLIENT_SECRET is not set" in problems
    assert mode == "many workspaces"
    for text in (raw_html, page.content(), signed.text, output):
        assert_no_secrets(text, CANARY_SIGNING_SECRET)
    # A correctly signed command is refused too: setup mode never answers Slack as if it worked.
    assert signed.status_code == 503
    assert signed.json()["error"] == "setup_incomplete"
    assert hooks.received() == []


def test_an_app_token_points_the_guide_to_socket_mode(tmp_path: Path, page: Page) -> None:
    app_token = "xapp-1-A0001-1111-PageCanaryAppToken9"
    with serve(tmp_path, SLACK_APP_TOKEN=app_token) as served:
        response = page.goto(f"{served.url}/")
        assert response is not None
        raw_html = response.text()
        manifest = manifest_from_link(page.get_attribute("a#create-app", "href"))
        mode = page.locator("#mode").inner_text()
        rows = checklist(page)
        extras = page.locator("#request-urls, #https-note").count()

    assert mode == "Socket Mode"
    assert rows["SLACK_APP_TOKEN"] == ("yes", "set")
    jsonschema.validate(manifest, manifest_schema())
    assert manifest["settings"]["socket_mode_enabled"] is True
    # No request URLs at all: Slack talks to the app over the socket.
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert "request_url" not in manifest["settings"]["event_subscriptions"]
    assert "redirect_urls" not in manifest["oauth_config"]
    assert extras == 0
    assert_no_secrets(raw_html, app_token)


def test_setup_mode_refuses_slack_and_passes_the_boot_check(fresh: Served, hooks: FakeServer) -> None:
    with httpx.Client(base_url=fresh.url, timeout=10) as http:
        events = http.post(routes.EVENTS_PATH, content=b'{"type": "url_verification", "challenge": "c"}')
        form = http.post(
            routes.EVENTS_PATH,
            content="command=%2Fbreeze-balance&text=",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        health = http.get(routes.HEALTH_PATH)
        unknown = http.get("/no-such-page")
        home_post = http.post(routes.HOME_PATH)
    slack = SlackClient(fresh.url, "a-secret-the-app-does-not-have")
    try:
        signed = slack.command(f"{hooks.url}/commands/setup/2")
    finally:
        slack.close()

    for refused in (events, form, signed):
        assert refused.status_code == 503
        body = refused.json()
        assert body["ok"] is False
        assert body["error"] == "setup_incomplete"
        assert body["missing"] == ["SLACK_SIGNING_SECRET"]
        assert body.get("challenge") != "c"
    assert hooks.received() == []
    assert health.status_code == 200
    assert health.json()["status"] == "setup"
    assert health.json()["missing"] == ["SLACK_SIGNING_SECRET"]
    assert unknown.status_code == 404
    assert home_post.status_code == 405

    output = fresh.output()
    pointers = [line for line in output.splitlines() if f"http://localhost:{fresh.port}/" in line]
    assert len(pointers) == 1, output
    assert "SLACK_SIGNING_SECRET" in pointers[0]
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"DATABASE_URL": CANARY_DATABASE_URL}, ["SLACK_SIGNING_SECRET", "BREEZE_ENCRYPTION_KEYS"]),
        (
            {"DATABASE_URL": CANARY_DATABASE_URL, "SLACK_SIGNING_SECRET": CANARY_SIGNING_SECRET},
            ["BREEZE_ENCRYPTION_KEYS"],
        ),
        (
            {"SLACK_SIGNING_SECRET": CANARY_SIGNING_SECRET, "SLACK_CLIENT_ID": "1111.2222"},
            ["SLACK_CLIENT_SECRET"],
        ),
    ],
    ids=["postgres-nothing-set", "postgres-no-encryption-keys", "client-id-alone"],
)
def test_setup_mode_names_every_missing_setting_in_its_log_and_healthz(
    tmp_path: Path, settings: dict[str, str], missing: list[str]
) -> None:
    with serve(tmp_path, **settings) as served:
        health = httpx.get(f"{served.url}/healthz", timeout=10)
        html = httpx.get(f"{served.url}/", timeout=10).text
    output = served.output()

    assert health.json()["status"] == "setup"
    assert health.json()["missing"] == missing
    pointers = [line for line in output.splitlines() if f"http://localhost:{served.port}/" in line]
    assert len(pointers) == 1, output
    assert f"missing: {', '.join(missing)})" in pointers[0], pointers[0]
    # The same settings the page lists as problems and marks missing in its checklist.
    problems = html.split('id="problems"', 1)[1].split("</div>", 1)[0]
    for name in missing:
        assert f"{name} is not set" in problems, problems
        row = re.search(rf'<tr data-setting="{name}".*?</tr>', html, flags=re.S)
        assert row is not None, name
        assert 'class="missing"' in row.group(0), row.group(0)
    for text in (output, health.text, html):
        assert_no_secrets(text, CANARY_DB_PASSWORD, CANARY_SIGNING_SECRET)


def test_strict_serve_with_nothing_set_exits_2_naming_the_secret(tmp_path: Path) -> None:
    result = run_bot("serve", "--strict", env=base_env(PORT=str(free_port())), cwd=tmp_path)

    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_malformed_setting_exits_2_even_without_strict(tmp_path: Path) -> None:
    # With nothing else set this would be setup mode, if PORT were readable.
    result = run_bot("serve", env=base_env(PORT="http"), cwd=tmp_path)

    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_procfile_web_line_serves_the_setup_page_until_sigterm(tmp_path: Path) -> None:
    web = ["bash", "-c", f"exec {procfile_command('web')}"]
    with serve(tmp_path, web) as served:
        health = httpx.get(f"{served.url}/healthz", timeout=10)
        home = httpx.get(f"{served.url}/", timeout=10)
        code = stop(served.process)

    assert health.status_code == 200  # a platform's boot check passes
    assert health.json()["status"] == "setup"
    assert home.status_code == 200
    assert "<h1>Set up Breeze Balance</h1>" in home.text
    # uvicorn re-raises the signal once it has shut down cleanly, as a process killed by it would.
    assert code in (0, -signal.SIGTERM), served.output()
    assert "Traceback" not in served.output()


# --- the configured app's status page -------------------------------------------------------------


def probes(page: Page) -> dict[str, tuple[str | None, str]]:
    """Each probe row: service -> (data-state, details)."""
    found = {}
    for row in page.locator("#probes tr[data-probe]").all():
        name = row.get_attribute("data-probe")
        assert name is not None
        found[name] = (row.get_attribute("data-state"), row.locator("td").nth(2).inner_text())
    return found


def url_cells(page: Page) -> dict[str, str]:
    return {
        row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
        for row in page.locator("#urls tr").all()
        if row.locator("td").count()
    }


def test_the_status_page_shows_mode_urls_and_accepted_credentials(
    start_app: AppFactory, page: Page, breeze: FakeServer, tmp_path: Path
) -> None:
    server, _ = start_app()

    response = page.goto(f"{server.url}/")

    assert response is not None
    assert response.status == 200
    assert page.title() == "Breeze Balance"
    assert page.locator("#mode").inner_text() == "one workspace"
    urls = url_cells(page)
    assert urls["Events, commands and interactivity"] == f"{server.url}{routes.EVENTS_PATH}"
    assert urls["Health check"] == f"{server.url}{routes.HEALTH_PATH}"
    found = probes(page)
    assert found["Slack"][0] == "ok"
    assert "T0001" in found["Slack"][1]
    assert found["Breeze"][0] == "ok"
    assert found["Database"][0] == "ok"
    # The Breeze probe really asked Breeze, with the configured key.
    assert breeze.received("GET", "/v1/balance")[-1].headers["xi-api-key"] == API_KEY
    html = page.content()
    for number in ("1,234,567", "1234567", "1 234 567"):
        assert number not in html, "the status page shows the balance"
    assert_no_secrets(html, API_KEY, BOT_TOKEN, SIGNING_SECRET, ENCRYPTION_KEY)

    # Behind a TLS-terminating proxy the URLs to paste into Slack are https.
    page.set_extra_http_headers({"X-Forwarded-Proto": "https"})
    page.reload()
    https_base = server.url.replace("http://", "https://")
    assert url_cells(page)["Events, commands and interactivity"] == f"{https_base}{routes.EVENTS_PATH}"

    shot = tmp_path / "status-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert png_size(shot)[0] >= 800
    assert shot.stat().st_size > 10_000


def test_the_status_page_says_which_credential_is_refused(
    start_app: AppFactory, page: Page, breeze: FakeServer, slack_api: FakeServer
) -> None:
    breeze.route(
        "GET", "/v1/balance", Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "no", "error": "x"})
    )
    # Not a refused token (that stops start-up), but auth.test not answering.
    slack_api.route("POST", "/api/auth.test", Reply(200, {"ok": False, "error": "fatal_error"}))
    server, _ = start_app()

    page.goto(f"{server.url}/")

    found = probes(page)
    assert found["Breeze"][0] == "fail"
    assert "did not accept" in found["Breeze"][1]
    assert found["Slack"][0] == "fail"
    assert page.locator('#probes tr[data-probe="Breeze"] td').nth(1).inner_text() == "✗ refused"
    assert_no_secrets(page.content(), API_KEY, BOT_TOKEN)


def test_the_status_page_of_many_workspaces_lists_working_install_urls(
    start_app: AppFactory, page: Page, breeze: FakeServer
) -> None:
    client_secret = "page-canary-client-secret-5t"
    server, _ = start_app(
        slack_bot_token=None, slack_client_id="1111.2222", slack_client_secret=client_secret
    )

    page.goto(f"{server.url}/")

    assert page.locator("#mode").inner_text() == "many workspaces"
    urls = url_cells(page)
    assert urls["Install link (share it)"] == f"{server.url}{routes.INSTALL_PATH}"
    assert urls["OAuth redirect URL"] == f"{server.url}{routes.OAUTH_REDIRECT_PATH}"
    found = probes(page)
    assert found["Slack"][0] == "skip"
    assert found["Breeze"][0] == "skip"  # each workspace brings its own key
    assert breeze.received() == []
    assert_no_secrets(page.content(), client_secret, SIGNING_SECRET)
    # Each URL the page lists is one the app answers.
    with httpx.Client(timeout=10) as http:
        assert http.post(urls["Events, commands and interactivity"]).status_code != 404
        assert http.get(urls["Health check"]).status_code == 200
        assert http.get(urls["Install link (share it)"]).status_code in (200, 302)
        assert http.get(urls["OAuth redirect URL"]).status_code != 404
