"""A loopback OpenAI-compatible chat endpoint for the judge: POST /v1/chat/completions.

It parses the judge's "Punchline 1/2" prompt and answers with whatever `choose(setup, first, second)`
returns, recording every request body. Bound to 127.0.0.1 on a free port, in a daemon thread, and
shut down after `max_seconds` even if a test forgets.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Choose = Callable[[str, str, str], str]
PROMPT = re.compile(
    r"Setup: (?P<setup>.*)\n\nPunchline 1: (?P<first>.*)\n\nPunchline 2: (?P<second>.*)\n\n", re.S
)


def longer_wins(setup: str, first: str, second: str) -> str:
    """Default judge: the longer punchline is funnier (deterministic and easy to assert on)."""
    if len(first) == len(second):
        return "tie"
    return "1" if len(first) > len(second) else "2"


class FakeChat:
    def __init__(self, choose: Choose = longer_wins, status: int = 200) -> None:
        self.choose = choose
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        match = PROMPT.search(body["messages"][-1]["content"])
        answer = self.choose(*match.group("setup", "first", "second")) if match else "tie"
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "model": body.get("model", ""),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
        }


@contextmanager
def serve(fake: FakeChat, max_seconds: float = 60.0) -> Iterator[str]:
    """Run the fake; yield its base URL (ending in /v1, as OpenAI clients expect)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            fake.requests.append(body)
            fake.headers.append(dict(self.headers.items()))
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
            elif fake.status != 200:
                self._send(fake.status, {"error": {"message": "fake failure"}})
            else:
                self._send(200, fake.reply(body))

        def _send(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests read `fake.requests`."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(max_seconds, httpd.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
