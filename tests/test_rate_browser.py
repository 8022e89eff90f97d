"""Vote through `haha rate`'s page in headless Chromium: a key press and a button click, then the file.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on fd 3,
replies on fd 4, NUL-separated JSON), so no port but the rating server's own is opened. Real input
events, not JavaScript calls: the page must react to what a person does. Skips where Debian's
chromium is missing (`apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from haha.rate import ratings
from haha.rate.deck import Deck
from haha.rate.server import Session, serve
from haha.report.load import load_runs
from report_data import baseline_doc, healthy, make_repo, results_doc, write_baseline

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
)


class DevTools:
    """A minimal CDP client on the two pipes, every wait bounded."""

    def __init__(self, send_fd: int, recv_fd: int) -> None:
        self.send_fd, self.recv_fd = send_fd, recv_fd
        self.buffer = b""
        self.ids = iter(range(1, 1_000_000))
        self.session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self.send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while b"\0" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.recv_fd], [], [], left)[0]:
                    raise TimeoutError(f"no reply to {method}")
                chunk = os.read(self.recv_fd, 1 << 16)
                if not chunk:
                    raise ConnectionError("chromium closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == number:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"page never satisfied: {expression}")

    def press(self, key: str) -> None:
        code = {
            "key": key,
            "text": key,
            "code": f"Key{key.upper()}",
            "windowsVirtualKeyCode": ord(key.upper()),
        }
        self.call("Input.dispatchKeyEvent", type="keyDown", **code)
        self.call("Input.dispatchKeyEvent", type="keyUp", **{k: v for k, v in code.items() if k != "text"})

    def click(self, selector: str) -> None:
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


@contextmanager
def chromium(tmp_path: Path, url: str) -> Iterator[DevTools]:
    to_browser, from_browser = os.pipe(), os.pipe()  # (read, write) each
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--remote-debugging-pipe", f"--user-data-dir={tmp_path / 'chromium-profile'}", url,
    ]  # fmt: skip
    script = f'exec "$0" "$@" 3<&{to_browser[0]} 4>&{from_browser[1]}'  # the fd numbers chromium expects
    proc = subprocess.Popen(
        ["bash", "-c", script, str(CHROMIUM), *flags],
        pass_fds=(to_browser[0], from_browser[1]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_browser[0])
    os.close(from_browser[1])
    tools = DevTools(to_browser[1], from_browser[0])
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (
            pages := [t for t in tools.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        ):
            assert time.monotonic() < deadline, "chromium opened no page"
            time.sleep(0.1)
        tools.session = tools.call("Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True)[
            "sessionId"
        ]
        yield tools
    finally:
        proc.kill()
        proc.wait(timeout=30)
        os.close(to_browser[1])
        os.close(from_browser[0])


SHOWN = (
    "[document.body.dataset.state, document.body.dataset.item, $('left').textContent, $('right').textContent]"
)


def test_vote_in_the_browser_lands_on_disk(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", [results_doc(n, healthy) for n in ("haha-x-001", "haha-x-002")])
    write_baseline(root, baseline_doc(healthy))
    results = root / "train/results"
    runs = load_runs(results)
    texts = {r.name: {(s.prompt, s.temperature, s.seed): s.text for s in r.samples} for r in runs}
    path = ratings.rater_path(results, "ana")
    session = Session(Deck(runs, [], "ana", random.Random(3)), "ana", path, "train/results/ratings/ana.jsonl")
    with serve(session, stop_after=180) as running, chromium(tmp_path, running.url) as page:
        page.wait_for("document.body.dataset.state === 'ready'")
        first = page.evaluate(SHOWN)
        page.press("a")  # A: the left one
        page.wait_for(
            f"document.body.dataset.state === 'ready' && document.body.dataset.item !== '{first[1]}'"
        )
        second = page.evaluate(SHOWN)
        page.click("#vote-right")  # B: the right one
        page.wait_for(
            f"document.body.dataset.state === 'ready' && document.body.dataset.item !== '{second[1]}'"
        )
        page.press("s")  # skip: nothing written
        status = page.wait_for("$('status').textContent.includes('2 votes') && $('status').textContent")
    assert "saved to train/results/ratings/ana.jsonl" in status
    rows = [r.row() for r in ratings.load_file(path)]  # validates every row against the schema
    assert len(rows) == 2
    for row, (_, _, left, right), side in zip(rows, (first, second), ("left", "right"), strict=True):
        key = (row["prompt"], row["temperature"], row["seed"])
        assert row["rater"] == "ana" and row["winner"] in ("a", "b")
        picked = left if side == "left" else right
        assert (
            texts[row[row["winner"]]][key].strip() == picked
        )  # the un-shuffled winner wrote what was picked
