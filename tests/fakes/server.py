"""A bounded loopback HTTP(S) server that the service fakes share.

Each fake supplies a `handle(request) -> Reply`; the server records every request, binds 127.0.0.1
on a free port (HTTPS when given a TLS context) and shuts itself down after `max_seconds` even if a
test forgets to.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    parsed: dict[str, Any] = field(default_factory=dict)  # what the fake made of the body
    query_string: str = ""  # the query as sent, for fakes that pass it on (CGI)
    client: tuple[str, int] = ("", 0)  # the peer's (host, port): which process asked, for fakes that care

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


class Handler(Protocol):
    requests: list[Request]

    def handle(self, request: Request, base_url: str) -> Reply: ...


class LoopbackServer:
    """Serve `handler` on 127.0.0.1:<free port> in a daemon thread; use as a context manager.

    Requests are appended to `handler.requests`, so a test needs only the fake object. With `tls`,
    it speaks HTTPS. Subclasses change how a request is answered by overriding `_record`.
    """

    def __init__(
        self, handler: Handler, max_seconds: float = 120.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.handler = handler
        self._tls = tls
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._request_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._watchdog = threading.Timer(max_seconds, self.stop)
        self._watchdog.daemon = True

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`."""
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._watchdog.cancel()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def _record(self, request: Request) -> Reply:
        with self._lock:
            self.handler.requests.append(request)
            return self.handler.handle(request, self.url)

    def _request_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                if server._tls is not None:
                    self.request = server._tls.wrap_socket(self.request, server_side=True)
                super().setup()

            def handle(self) -> None:
                with suppress(ssl.SSLError, ConnectionError, TimeoutError):  # a client that hung up
                    super().handle()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(Reply(413, b"too large"))
                    return
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._chunked()
                else:
                    body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    query_string=parts.query,
                    client=self.client_address[:2],
                )
                self._send(server._record(request))

            def _chunked(self) -> bytes:
                """A body sent with `Transfer-Encoding: chunked` (git pushes larger than its buffer)."""
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if "content-length" not in {key.lower() for key in reply.headers}:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: tests read `server.requests` instead."""

        return _Handler


H = TypeVar("H", bound=Handler)


@contextmanager
def serve(fake: H, max_seconds: float = 120.0) -> Iterator[tuple[H, str]]:
    """Run `fake` on a loopback port; yield it with its base URL."""
    with LoopbackServer(fake, max_seconds) as server:
        yield fake, server.url
