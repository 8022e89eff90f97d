"""Pod names carry their config, commit and deadline, so the reaper and planner need no stored state.

Format: `haha-<basename>-<sha7>-<deadline as YYYYMMDDTHHMMZ>`, e.g.
`haha-haha-llama-3-8b-lora-001-1a2b3c4-20261128T0300Z`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "haha-"
_RE = re.compile(r"^haha-(?P<basename>.+-\d{3})-(?P<sha>[0-9a-f]{7}|local)-(?P<deadline>\d{8}T\d{4}Z)$")
_FMT = "%Y%m%dT%H%MZ"


@dataclass(frozen=True)
class PodName:
    basename: str
    sha: str
    deadline: datetime

    def __str__(self) -> str:
        return f"{PREFIX}{self.basename}-{self.sha}-{self.deadline.strftime(_FMT)}"

    def expired(self, now: datetime) -> bool:
        return now >= self.deadline

    @classmethod
    def parse(cls, name: str) -> PodName | None:
        """The parts of a Haha pod name, or None for pods that are not ours."""
        match = _RE.match(name)
        if not match:
            return None
        deadline = datetime.strptime(match["deadline"], _FMT).replace(tzinfo=UTC)
        return cls(match["basename"], match["sha"], deadline)

    @classmethod
    def make(cls, basename: str, sha: str | None, deadline: datetime) -> PodName:
        short = (sha or "local")[:7] if sha else "local"
        return cls(basename, short, deadline.astimezone(UTC).replace(second=0, microsecond=0))
