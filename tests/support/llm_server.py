"""A local stand-in for the paid LLM APIs: a real HTTP server on loopback.

Endpoints (paths, bodies, status codes and error shapes as the providers'
API references give them; state machines in tests/support/provider_api.py):

* OpenAI (``base_url = server.openai_url``, ``Authorization: Bearer <key>``):
  ``POST /v1/files`` (multipart), ``GET /v1/files/{id}``,
  ``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches``,
  ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``,
  ``POST /v1/chat/completions`` (answers with ``chat(body) -> text``; the
  judge tests plant their judge there).
* Anthropic (``base_url = server.url``, ``x-api-key: <key>``, or the
  ``Authorization: Bearer <key>`` the 2.x SDK sends):
  ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
  ``GET /v1/messages/batches/{id}/results``, ``POST /v1/messages/batches/{id}/cancel``.

Use as a context manager; the tests drive it with the official clients.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.provider_api import AnthropicBatches, OpenAIBatches, new_id, text_of, words

Chat = Callable[[dict[str, Any]], str]


class LLMServer:
    def __init__(self, api_key: str = "sk-test-standin", chat: Chat | None = None) -> None:
        self.api_key = api_key
        self.openai = OpenAIBatches()
        self.anthropic = AnthropicBatches()
        self.chat: Chat = chat or (lambda body: f"answer: {text_of(body)}")
        self.chat_calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> LLMServer:
        self.anthropic.base_url = self.url
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- chat completions (the judge, live challengers) ------------------------------
    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.chat_calls.append(body)
        text = self.chat(body)
        prompt = text_of(body)
        return {
            "id": new_id("chatcmpl"),
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {
                "prompt_tokens": words(prompt),
                "completion_tokens": words(text),
                "total_tokens": words(prompt) + words(text),
            },
        }


def _handler(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        # -- plumbing -------------------------------------------------------------------
        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _openai_error(self, status: int, message: str, kind: str) -> None:
            error = {"message": message, "type": kind, "param": None, "code": None}
            self._send(status, {"error": error})

        def _anthropic_error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"type": "error", "error": {"type": kind, "message": message}})

        def _authorized(self, anthropic: bool) -> bool:
            bearer = self.headers.get("Authorization") == f"Bearer {server.api_key}"
            if anthropic:
                # the API reference's x-api-key, or the Bearer header SDK 2.x sends
                if self.headers.get("x-api-key") == server.api_key or bearer:
                    return True
                self._anthropic_error(401, "invalid x-api-key", "authentication_error")
                return False
            if bearer:
                return True
            self._openai_error(401, "Incorrect API key provided", "invalid_request_error")
            return False

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            parts = path.strip("/").split("/")
            body = self._body()
            anthropic = path.startswith("/v1/messages")
            if not self._authorized(anthropic):
                return
            if anthropic:
                self._anthropic(method, parts, body)
            else:
                self._openai(method, parts, body)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        # -- OpenAI ------------------------------------------------------------------------
        def _openai(self, method: str, parts: list[str], raw: bytes) -> None:
            api = server.openai
            if parts == ["v1", "chat", "completions"] and method == "POST":
                self._send(200, server.chat_completion(json.loads(raw)))
            elif parts == ["v1", "files"] and method == "POST":
                fields = _multipart(self.headers.get("Content-Type", ""), raw)
                name, content = fields.get("file", ("", b""))
                self._send(
                    200, api.upload(name, fields.get("purpose", ("", b""))[1].decode(), content)
                )
            elif len(parts) >= 3 and parts[:2] == ["v1", "files"] and method == "GET":
                found = api.files.get(parts[2])
                if found is None:
                    self._openai_error(
                        404, f"No such File object: {parts[2]}", "invalid_request_error"
                    )
                elif len(parts) == 4 and parts[3] == "content":
                    self._send(200, found[1], "application/octet-stream")
                else:
                    self._send(200, found[0])
            elif parts == ["v1", "batches"] and method == "POST":
                created = api.create(json.loads(raw))
                if created is None:
                    self._openai_error(400, "input_file_id not found", "invalid_request_error")
                else:
                    self._send(200, created)
            elif parts == ["v1", "batches"] and method == "GET":
                data = [api.poll(i) for i in list(api.batches)]
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "has_more": False,
                        "first_id": data[0]["id"] if data else None,
                        "last_id": data[-1]["id"] if data else None,
                    },
                )
            elif len(parts) in (3, 4) and parts[:2] == ["v1", "batches"]:
                cancel = len(parts) == 4 and parts[3] == "cancel" and method == "POST"
                batch = api.cancel(parts[2]) if cancel else api.poll(parts[2])
                if batch is None:
                    self._openai_error(
                        404, f"No batch found with id '{parts[2]}'.", "invalid_request_error"
                    )
                else:
                    self._send(200, batch)
            else:
                self._openai_error(
                    404, f"Invalid URL ({method} {self.path})", "invalid_request_error"
                )

        # -- Anthropic ---------------------------------------------------------------------------
        def _anthropic(self, method: str, parts: list[str], raw: bytes) -> None:
            api = server.anthropic
            if parts == ["v1", "messages", "batches"] and method == "POST":
                created = api.create(json.loads(raw))
                if isinstance(created, str):
                    self._anthropic_error(400, created, "invalid_request_error")
                else:
                    self._send(200, created)
                return
            if len(parts) < 4 or parts[:3] != ["v1", "messages", "batches"]:
                self._anthropic_error(404, "Not found", "not_found_error")
                return
            batch_id, action = parts[3], parts[4] if len(parts) > 4 else ""
            if action == "results" and method == "GET":
                results = api.results(batch_id)
                if results is None:
                    self._anthropic_error(404, "results are not available yet", "not_found_error")
                else:
                    self._send(200, results, "application/binary")
                return
            batch = api.cancel(batch_id) if action == "cancel" else api.poll(batch_id)
            if batch is None:
                self._anthropic_error(404, f"message batch {batch_id} not found", "not_found_error")
            else:
                self._send(200, batch)

    return Handler


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """form field -> (filename, bytes) of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True) or b""
            fields[str(name)] = (part.get_filename() or "", payload)
    return fields
