"""Settings as the `haha` command builds them: haha.toml under a root, and this process's environment."""

from __future__ import annotations

import os
from pathlib import Path

from haha.settings import Settings, load_settings


def process_settings(root: Path | None = None) -> Settings:
    return load_settings(root or Path.cwd(), os.environ)
