"""Pod names carry their config(s), commit and deadline, so the reaper and planner need no stored state.

Format: `haha-<basename>-<sha7>-<deadline as YYYYMMDDTHHMMZ>`, e.g.
`haha-haha-llama-3-8b-lora-001-1a2b3c4-20261128T0300Z`.

A shared pod (`[compute] configs_per_pod` > 1) runs several configs one after another and names every
one of them, `_`-joined after the first (`_` never occurs in a basename); a later config of the first
one's series is written as its number alone: `haha-llama-001_002_other-007-1a2b3c4-20261128T0300Z` runs
llama-001, llama-002 and other-007. So whoever lists pods knows every config a live pod holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "haha-"
_RE = re.compile(r"^haha-(?P<basename>.+[-_]\d{3})-(?P<sha>[0-9a-f]{7}|local)-(?P<deadline>\d{8}T\d{4}Z)$")
_FMT = "%Y%m%dT%H%MZ"
_NUMBER = re.compile(r"^\d{3}$")
_BASENAME = re.compile(r"^(?P<series>.+)-\d{3}$")
SEPARATOR = "_"


@dataclass(frozen=True)
class PodName:
    basename: str
    sha: str
    deadline: datetime
    more: tuple[str, ...] = ()  # a shared pod's later configs, in the order it runs them

    @property
    def basenames(self) -> tuple[str, ...]:
        """Every config this pod runs, the one it is named after first."""
        return (self.basename, *self.more)

    def __str__(self) -> str:
        series = _BASENAME.match(self.basename)
        prefix = f"{series['series']}-" if series else None
        parts = [self.basename, *(b[len(prefix) :] if prefix and _later(b, prefix) else b for b in self.more)]
        return f"{PREFIX}{SEPARATOR.join(parts)}-{self.sha}-{self.deadline.strftime(_FMT)}"

    def expired(self, now: datetime) -> bool:
        return now >= self.deadline

    @classmethod
    def parse(cls, name: str) -> PodName | None:
        """The parts of a Haha pod name, or None for pods that are not ours."""
        match = _RE.match(name)
        if not match:
            return None
        first, *rest = match["basename"].split(SEPARATOR)
        series = _BASENAME.match(first)
        if series is None:
            return None
        more = tuple(f"{series['series']}-{part}" if _NUMBER.match(part) else part for part in rest)
        if not all(_BASENAME.match(b) for b in more):
            return None
        deadline = datetime.strptime(match["deadline"], _FMT).replace(tzinfo=UTC)
        return cls(first, match["sha"], deadline, more)

    @classmethod
    def make(cls, basename: str, sha: str | None, deadline: datetime, more: tuple[str, ...] = ()) -> PodName:
        short = (sha or "local")[:7] if sha else "local"
        return cls(basename, short, deadline.astimezone(UTC).replace(second=0, microsecond=0), more)


def _later(basename: str, prefix: str) -> bool:
    return basename.startswith(prefix) and bool(_NUMBER.match(basename[len(prefix) :]))
