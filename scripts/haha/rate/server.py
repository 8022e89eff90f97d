"""`haha rate`: a local page (127.0.0.1 only) for blind A/B votes, appended to the rater's file.

GET /          the page
GET /next      the next comparison: {"id", "prompt", "left", "right", "temperature", "seed"} or {"done"}
POST /vote     {"id", "choice": "left"|"right"|"tie"|"skip"} → {"file", "next"}

Config names never leave the server. Requests must name this server as Host (no DNS rebinding) and
votes must be JSON (a cross-site form cannot send that without a preflight this server refuses).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from haha import clock
from haha.rate import ratings
from haha.rate.deck import Deck, Item
from haha.rate.page import PAGE

HOST = "127.0.0.1"
CHOICES = ("left", "right", "tie", "skip")
MAX_BODY = 10_000


@dataclass
class Session:
    """One rater's votes in one `haha rate`: pending comparisons by id, and where votes go."""

    deck: Deck
    rater: str
    path: Path
    shown_path: str
    pending: dict[str, Item] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)
    votes: int = 0

    def next(self) -> dict[str, Any]:
        item = self.deck.next()
        if item is None:
            return {"done": True}
        token = f"{next(self.ids)}-{random.getrandbits(32):08x}"
        self.pending[token] = item
        left, right = item.shown
        return {"id": token, "prompt": item.prompt, "left": left, "right": right,
                "temperature": item.temperature, "seed": item.seed}  # fmt: skip

    def vote(self, token: str, choice: str) -> dict[str, Any]:
        item = self.pending.pop(token)
        if choice != "skip":
            winner = item.winner(choice)
            row = ratings.Rating(item.a, item.b, item.prompt, item.temperature, item.seed, winner, self.rater,
                                 clock.stamp())  # fmt: skip
            ratings.append(self.path, row)
            self.votes += 1
        self.deck.done(item, voted=choice != "skip")
        return {"file": self.shown_path, "next": self.next()}


def handler(session: Session, allowed_hosts: Callable[[], set[str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "haha-rate"

        def do_GET(self) -> None:
            if not self._host_ok():
                return
            if self.path == "/":
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/next":
                with session.lock:
                    self._json(200, session.next())
            else:
                self._json(404, {"error": f"no page {self.path}"})

        def do_POST(self) -> None:
            if not self._host_ok():
                return
            if self.path != "/vote":
                return self._json(404, {"error": f"no route {self.path}"})
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                return self._json(415, {"error": "send JSON"})
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self._json(400, {"error": "bad length"})
            try:
                body = json.loads(self.rfile.read(length))
                token, choice = body["id"], body["choice"]
            except (ValueError, KeyError, TypeError):
                return self._json(400, {"error": "expected {id, choice}"})
            with session.lock:
                if token not in session.pending or choice not in CHOICES:
                    return self._json(409, {"error": "unknown comparison or choice; reload the page"})
                self._json(200, session.vote(token, choice))

        def _host_ok(self) -> bool:
            if self.headers.get("Host", "") in allowed_hosts():
                return True
            self._json(421, {"error": "wrong Host"})
            return False

        def _json(self, status: int, data: dict[str, Any]) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _send(self, status: int, payload: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the votes file is the log."""

    return Handler


@dataclass(frozen=True)
class Running:
    url: str
    stopped: threading.Event


@contextmanager
def serve(session: Session, port: int = 0, stop_after: float | None = None) -> Iterator[Running]:
    """Serve on 127.0.0.1:port (0: a free port) in a thread, until the block ends or stop_after seconds."""
    hosts: set[str] = set()
    httpd = ThreadingHTTPServer((HOST, port), handler(session, lambda: hosts))
    httpd.daemon_threads = True
    bound = httpd.server_address[1]
    hosts.update({f"{HOST}:{bound}", f"localhost:{bound}"})
    stopped = threading.Event()

    def run() -> None:
        try:
            httpd.serve_forever(poll_interval=0.1)
        finally:
            httpd.server_close()  # stop accepting too, not just answering
            stopped.set()

    thread = threading.Thread(target=run, daemon=True)
    timer = threading.Timer(stop_after, httpd.shutdown) if stop_after else None
    thread.start()
    if timer:
        timer.daemon = True
        timer.start()
    try:
        yield Running(f"http://{HOST}:{bound}/", stopped)
    finally:
        if timer:
            timer.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
