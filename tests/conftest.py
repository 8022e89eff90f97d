"""One guard for every test: no real secrets, no real model store, no connection off this machine.

A developer with HF_TOKEN or RUNPOD_API_KEY exported who runs `make test` must not publish to the real
Hub or start real pods. Every test starts with those secrets removed and the local store forced; any
connection to a non-loopback address fails (in-process: tests that start subprocesses point them at
loopback fakes themselves), and the test that tried it fails at teardown even if the code swallowed
the error.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

SECRETS = (
    "RUNPOD_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HAHA_DISPATCH_TOKEN",
    "HAHA_BOT_TOKEN",
    "HAHA_JUDGE_API_KEY",
)


def _loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like never leave the machine
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolved elsewhere, so refuse rather than guess


@pytest.fixture(autouse=True)
def no_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAHA_STORE", "local")
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            attempts.append(repr(address))
            raise ConnectionRefusedError(f"tests may not connect off this machine: {address!r}")

    def connect(sock: socket.socket, address: object) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    if attempts:
        pytest.fail(f"the test tried to reach the world: {', '.join(attempts)}")
