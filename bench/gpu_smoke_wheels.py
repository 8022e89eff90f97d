"""Wheels that let bench/gpu_smoke.py run real Axolotl on a CUDA machine with no registry access.

    python3 bench/gpu_smoke_wheels.py [DEST]        (default: .whl, which .git/info/exclude ignores)

The device image (Python 3.12, torch 2.11 cu130, transformers, numpy, pandas, pyarrow, triton …)
lacks Axolotl 0.19.0 and what it imports. These are that set, found by running gpu_smoke.py --tiny on
CPU in a venv holding only the device's packages and adding each missing module until training and
eval ran, at the versions Axolotl 0.19.0 resolves to in .venv (plus jsonschema for haha itself).
transformers, peft and accelerate go too, at Axolotl's exact pins. On the device (carry .whl and a
tokenizer folder), as run on 2026-11-28:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD/scripts python3 bench/gpu_smoke.py --layers 8 --steps 60 \
        --tokenizer .smoke/tokenizer --out $OUT/gpu_smoke.json

Two wheels are trimmed to fit the device tool's 64 MiB carry: bitsandbytes keeps its CPU and CUDA 13.0
libraries only (the device's torch is cu130), wandb drops its Go/Rust binaries (Axolotl imports
wandb at start; the smoke run does not log to W&B, so they never run). RECORD lines of dropped files
go too, so pip installs the rest as usual.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

PINS = [
    "accelerate==1.13.0",
    "addict==2.4.0",
    "annotated-types==0.8.0",
    "axolotl==0.19.0",
    "backoff==2.2.1",
    "bitsandbytes==0.50.2",
    "cwevals==0.0.1b1",
    "datasets==4.8.4",
    "dill==0.4.1",
    "distro==1.9.0",
    "evaluate==0.4.1",
    "fastcore==2.2.41",
    "fire==0.7.1",
    "gitdb==4.0.12",
    "GitPython==3.2.1",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "googleapis-common-protos==1.76.0",
    "multiprocess==0.70.19",
    "opentelemetry-api==1.45.2",
    "opentelemetry-exporter-otlp-proto-common==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-proto==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-semantic-conventions==0.66b2",
    "peft==0.20.0",
    "platformdirs==4.14.8",
    "posthog==6.7.11",
    "pydantic==2.12.5",
    "pydantic_core==2.41.5",
    "sentry-sdk==2.75.0",
    "smmap==5.0.3",
    "termcolor==3.3.0",
    "transformers==5.16.1",
    "trl==1.9.0",
    "typing-inspection==0.4.5",
    "tzdata==2026.6",
    "wandb==0.31.0",
]
SDIST_ONLY = ("axolotl-contribs-lgpl==0.0.7", "axolotl-contribs-mit==0.0.6")  # built here (pure Python)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)
KEEP_BNB = ("libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so")


def main() -> None:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".whl")
    dest.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [
            *pip,
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version=3.12",
            "--implementation=cp",
            *platforms,
            "-d",
            str(dest),
            *PINS,
        ],
        check=True,
    )
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(dest), *SDIST_ONLY], check=True)
    for wheel in dest.glob("bitsandbytes-*.whl"):
        trim(wheel, lambda n: n.endswith(".so") and Path(n).name not in KEEP_BNB)
    for wheel in dest.glob("wandb-*.whl"):
        trim(wheel, lambda n: n.startswith("wandb/bin/"))
    total = sum(p.stat().st_size for p in dest.glob("*.whl"))
    print(f"{len(list(dest.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {dest}")


def trim(wheel: Path, drop) -> None:
    """Rewrite `wheel` without the members `drop` selects (and their RECORD lines)."""
    staging = wheel.with_suffix(".trimmed")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if drop(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if not drop(line.split(",", 1)[0])).encode()
            out.writestr(info, data)
    staging.replace(wheel)


if __name__ == "__main__":
    main()
