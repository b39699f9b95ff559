"""`shadow watch` on planted data in chDB: verdict changes printed, recorded and POSTed.

The webhook receiver is a real HTTP server on loopback (it answers as Slack's
incoming webhooks do: 200 and the text "ok"). The watch runs as the CLI does,
a bounded number of checks each time; a restarted watch remembers what it
already announced.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from shadowstream.cli.main import cli
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.warehouse.client import Warehouse, connect
from tests.support import synthetic
from tests.support.synthetic import Behaviour


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # the http.server API
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        assert self.headers.get("Content-Type", "").startswith("application/json")
        type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/secret", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def watched(chdb_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    warehouse = connect(chdb_url, f"t_watch_{uuid.uuid4().hex[:10]}")
    migrate(warehouse)
    same = Behaviour(divergence=0.01)
    events = synthetic.generate(
        synthetic.requests(2000, seed=41), {"control": same, "twin": same, "drift": same}, seed=7
    )
    synthetic.insert(warehouse, events)
    monkeypatch.setenv("SHADOW_CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("SHADOW_CLICKHOUSE_DATABASE", warehouse.database)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def history(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(
        f"SELECT challenger, kind, verdict, previous_verdict, regressions, summary "
        f"FROM {warehouse.database}.watch_events ORDER BY at, challenger"
    ).dicts()


def watch(*args: str) -> Any:
    return CliRunner().invoke(cli, ["watch", "--checks", "1", *args], catch_exceptions=False)


def test_watch_records_and_notifies_verdict_changes_and_regressions(
    watched: Warehouse, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    first = watch("--webhook", url)
    assert first.exit_code in (0, 2), first.output
    rows = history(watched)
    assert {r["challenger"] for r in rows} == {"twin", "drift"}  # the control is the floor
    assert all(r["kind"] == "verdict" and r["previous_verdict"] == "" for r in rows)
    assert "twin / live" in first.output and "drift / live" in first.output
    sent = {b["challenger"]: b for b in bodies}
    for body in sent.values():
        assert body["type"] == "shadow.watch" and body["event"] == "verdict"
        assert body["control"] == "control" and body["samples"] == 2000
        assert body["alarm"] is False and {c["name"] for c in body["criteria"]} >= {"agreement"}
    assert url not in first.output  # the webhook URL is a secret; only its host is shown

    # a restarted watch remembers: nothing changed, nothing announced
    again = watch("--webhook", url)
    assert again.exit_code == first.exit_code
    assert len(history(watched)) == len(rows) and len(bodies) == len(sent)

    # drift starts failing on one request in ten
    broken = Behaviour(divergence=0.01, error_rate=0.10)
    later = synthetic.generate(synthetic.requests(2000, seed=42), {"drift": broken}, seed=8)
    synthetic.insert(watched, later)
    alarm = watch("--webhook", url, "--webhook-format", "slack")
    assert alarm.exit_code == 1, alarm.output
    drift = [r for r in history(watched) if r["challenger"] == "drift"][-1]
    assert drift["verdict"] == "fail" and "error-rate increase" in drift["regressions"]
    assert "error-rate increase" in drift["summary"] and "drift / live" in alarm.output
    slack = bodies[-1]
    assert set(slack) == {"text", "blocks"} and "drift" in slack["text"]
    assert slack["blocks"][0]["type"] == "section"
    assert slack["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "*error-rate increase* failed" in slack["blocks"][0]["text"]["text"]
    assert slack["blocks"][1]["type"] == "context"
    assert not [r for r in history(watched) if r["challenger"] == "twin"][1:]  # twin: quiet


def test_watch_errors_have_their_own_exit_codes(watched: Warehouse) -> None:
    unknown = watch("--challenger", "nobody")
    assert unknown.exit_code == 3 and "no challenger 'nobody'" in unknown.output
    bad = watch("--interval", "soon")
    assert bad.exit_code == 3
    bad_hook = watch("--webhook", "ftp://example.invalid/x")
    assert bad_hook.exit_code == 3


class Flaky(BaseHTTPRequestHandler):
    """Answers each request with the next status of ``statuses`` (then 200)."""

    statuses: list[int] = []
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # the http.server API
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        type(self).seen.append(body)
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_webhook_retries_server_errors_but_not_a_rejected_body() -> None:
    from shadowstream.analytics.notify import WebhookNotifier
    from shadowstream.analytics.watch import WatchEvent

    handler = type("Handler", (Flaky,), {"statuses": [503, 500, 400], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notifier = WebhookNotifier(
            f"http://127.0.0.1:{server.server_address[1]}/hook", "json", sleep=lambda s: None
        )
        event = WatchEvent(
            at=dt.datetime.now(dt.UTC),
            experiment_id="live",
            challenger="c",
            kind="verdict",
            verdict="fail",
            previous_verdict="promote",
            regressions=("errors",),
            new_regressions=("errors",),
            samples=10,
            control="control",
            summary="c / live: PROMOTE -> FAIL",
        )
        notifier.send([event])  # 503, 500, then 400 on the third try: given up
        assert (notifier.sent, notifier.failed) == (0, 1) and len(handler.seen) == 3
        notifier.send([event])  # the server is fine again
        assert notifier.sent == 1 and handler.seen[-1]["alarm"] is True
        assert "127.0.0.1" in repr(notifier) and "/hook" not in repr(notifier)
        notifier.close()
    finally:
        server.shutdown()
        server.server_close()
