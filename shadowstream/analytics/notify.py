"""Webhook notifications for ``shadow watch``: one POST per event, JSON body.

Two body formats:

* ``json`` (default): the event as is - ``{"type": "shadow.watch", "event":
  "verdict" | "regression", "alarm", "experiment_id", "challenger",
  "verdict", "previous_verdict", "regressions", "new_regressions", "samples",
  "control", "summary", "at", "criteria": [...]}``;
* ``slack``: a Slack incoming-webhook message (``text`` plus ``blocks`` with
  one ``section`` of ``mrkdwn`` text and a ``context`` line), which Slack and
  the many tools that accept its format (Mattermost, Rocket.Chat, ...) show.

The URL is a secret (a Slack webhook URL is a credential): it is never
logged, only its host. A failed delivery is retried with backoff, then
logged and dropped: a notification never stops the watch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from shadowstream.analytics.watch import WatchEvent

log = logging.getLogger(__name__)

Format = Literal["json", "slack"]
ICON = {"promote": ":white_check_mark:", "fail": ":x:", "not enough data": ":hourglass:"}


def json_body(event: WatchEvent) -> dict[str, Any]:
    return {"type": "shadow.watch", "event": event.kind, **event.as_dict()}


def slack_body(event: WatchEvent) -> dict[str, Any]:
    """Slack's incoming-webhook payload: ``text`` (the fallback) and ``blocks``."""
    icon = ":rotating_light:" if event.alarm else ICON.get(event.verdict, "")
    failed = [c for c in event.criteria if c.get("status") == "fail"]
    details = [f"*{c['name']}* failed: {c.get('note') or c.get('threshold')}" for c in failed]
    if event.new_regressions:
        details.append("worse than its baseline: " + ", ".join(event.new_regressions))
    text = f"{icon} {event.summary}".strip()
    section = f"{icon} *{event.challenger}* ({event.experiment_id}): *{event.verdict.upper()}*"
    if event.previous_verdict:
        section += f" (was {event.previous_verdict})"
    if details:
        section += "\n" + "\n".join(f"• {d}" for d in details)
    context = (
        f"{event.samples:,} comparisons · control: {event.control or 'none'} · "
        f"{event.at:%Y-%m-%d %H:%M} UTC · shadow watch"
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        body_format: Format = "json",
        timeout_s: float = 10.0,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must start with http:// or https://")
        self._url = url
        self.host = urlsplit(url).hostname or "?"
        self.body = slack_body if body_format == "slack" else json_body
        self.attempts = max(1, attempts)
        self._client = httpx.Client(timeout=timeout_s)
        self._sleep = sleep
        self.sent = 0
        self.failed = 0

    def __repr__(self) -> str:  # never the URL: it is a credential
        return f"WebhookNotifier(host={self.host!r})"

    def send(self, events: Sequence[WatchEvent]) -> None:
        for event in events:
            if self._post(self.body(event)):
                self.sent += 1
            else:
                self.failed += 1

    def _post(self, body: dict[str, Any]) -> bool:
        delay = 1.0
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.post(self._url, json=body)
                if response.status_code < 300:
                    return True
                reason = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    break  # the body or the URL is wrong: retrying will not help
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt < self.attempts:
                self._sleep(delay)
                delay *= 2
        log.warning("webhook to %s failed (%s); the event is in watch_events", self.host, reason)
        return False

    def close(self) -> None:
        self._client.close()
