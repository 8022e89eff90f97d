"""`make resolve-check`: the pod's pinned CUDA sets resolve and install on Linux x86_64 / CPython 3.11.

For each of requirements/train-cuda.txt and eval-cuda.txt, uv resolves the set again as a whole (with
the overrides `make lock` applies) for the image's platform, from the registry's metadata only: no
wheel is downloaded (uv reads metadata from the index, or a wheel's few bytes with range requests). It
requires a binary wheel for that platform for every pin except a short list of pure-Python source-only
packages, and fails unless the result is exactly the committed set. (pip's `install --dry-run --report
--platform ...` does the same where the index serves PEP 658 metadata; ours does not, and pip then
downloads every wheel: 5 GB for these sets.) It also prints the size of the files each set installs,
from the same metadata, and with --unpacked what they take on disk, read from each wheel's zip
directory with HTTP range requests (a minute or two): the image size estimate in the Dockerfile.

    HAHA_UV=path/to/uv python tools/check_cuda_sets.py [--unpacked]   (make resolve-check sets HAHA_UV)
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ("train-cuda", "eval-cuda")
# The image is python:3.11 on Debian bookworm (glibc 2.36): any manylinux tag up to 2_36 runs there
# (vLLM's llguidance, for one, ships only a manylinux_2_31 wheel for x86_64).
PLATFORM = "x86_64-manylinux_2_36"
# Pure-Python packages (Axolotl's dependencies) that publish only a source distribution: built at
# install time in seconds. Anything else without a wheel for the platform fails the check.
SDIST_ONLY = (
    "axolotl-contribs-lgpl",
    "axolotl-contribs-mit",
    # DeepSpeed publishes only an sdist; with DS_BUILD_OPS unset (0 on Linux, its setup.py) it builds a
    # pure-Python wheel without torch and compiles its ops JIT on first use.
    "deepspeed",
    "langdetect",
    "rouge-score",
    "sqlitedict",
    "word2number",
)
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}


def resolve(uv: str, name: str, out: Path) -> dict[str, dict]:
    """Resolve requirements/<name>.txt for the platform; {package: pylock entry}."""
    lock = ROOT / "requirements" / f"{name}.txt"
    cmd = [uv, "pip", "compile", "--quiet", "--no-config", str(lock)]
    for overrides in ("overrides.txt", *(["overrides-train.txt"] if name.startswith("train") else [])):
        cmd += ["--override", str(ROOT / "requirements" / overrides)]
    cmd += ["--python-version", "3.11", "--python-platform", PLATFORM]
    cmd += ["--only-binary", ":all:", "--no-binary", ",".join(SDIST_ONLY), "--output-file", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"requirements/{name}.txt does not resolve for {PLATFORM} / CPython 3.11:\n{done.stderr}")
    resolved = {p["name"]: p for p in tomllib.loads(out.read_text())["packages"]}
    wanted = pins(lock.read_text())
    got = {p: entry["version"] for p, entry in resolved.items()}
    if got != wanted:
        diff = sorted(set(got.items()) ^ set(wanted.items()))
        sys.exit(f"requirements/{name}.txt is not what it resolves to for {PLATFORM} (run make lock): {diff}")
    return resolved


def size(entry: dict) -> int:
    """Bytes of the file the installer takes: the wheel for the platform (the largest, where a package
    has a platform wheel and a pure one), else the source distribution."""
    wheels = entry.get("wheels", [])
    return max(w["size"] for w in wheels) if wheels else entry.get("sdist", {}).get("size", 0)


class _RemoteFile(io.RawIOBase):
    """A read-only file over HTTP range requests: enough for zipfile to read a wheel's directory."""

    def __init__(self, url: str, length: int) -> None:
        self.url, self.length, self.pos = url, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = (0, self.pos, self.length)[whence] + offset
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.length - self.pos)
        if n <= 0:
            return 0
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{self.pos + n - 1}"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            data = reply.read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def unpacked(entry: dict) -> int:
    """Bytes the package takes installed: the sum of its wheel's uncompressed file sizes."""
    wheels = entry.get("wheels", [])
    if not wheels:
        return size(entry)
    wheel = max(wheels, key=lambda w: w["size"])
    remote = io.BufferedReader(_RemoteFile(wheel["url"], wheel["size"]), buffer_size=1 << 16)
    with zipfile.ZipFile(remote) as archive:
        return sum(info.file_size for info in archive.infolist())


def main() -> None:
    uv = os.environ.get("HAHA_UV", "uv")
    measure = unpacked if "--unpacked" in sys.argv[1:] else size
    what = "installed" if measure is unpacked else "of files"
    gib = 1024**3
    per_set: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            resolved = resolve(uv, name, Path(tmp) / f"pylock.{name}.toml")
            with ThreadPoolExecutor(8) as pool:
                sizes = pool.map(measure, resolved.values())
            files = {f"{p}=={e['version']}": n for (p, e), n in zip(resolved.items(), sizes, strict=True)}
            per_set[name] = files
            sdists = sorted(p for p, e in resolved.items() if not e.get("wheels"))
            print(
                f"requirements/{name}.txt: {len(resolved)} pins resolve for {PLATFORM} / CPython 3.11, "
                f"{sum(files.values()) / gib:.2f} GiB {what} (source-only: {', '.join(sdists) or 'none'})"
            )
    first, second = per_set[SETS[0]].keys(), per_set[SETS[1]].keys()
    both = {**per_set[SETS[0]], **per_set[SETS[1]]}
    shared = sum(both[k] for k in first & second)
    print(
        f"both sets: {sum(both.values()) / gib:.2f} GiB {what}, {shared / gib:.2f} GiB of it pinned "
        f"identically in both ({len(first & second)} packages: installed once, hard-linked into both envs)"
    )


if __name__ == "__main__":
    main()
