"""Where things live in a Haha checkout, and what git says changed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from haha.errors import InputError

CONFIG_DIR = Path("train/config")
DATA_DIR = Path("train/data")
EVAL_FILE = Path("train/eval/eval.json")
RESULTS_DIR = Path("train/results")
DEFAULT_BRANCHES = ("origin/HEAD", "origin/main", "origin/master")


@dataclass(frozen=True)
class Change:
    """One path changed since the base ref: status is git's letter (A, M, D, R…)."""

    status: str
    path: Path


@dataclass(frozen=True)
class Repo:
    """A checkout of the experiment repo (or any folder laid out like one)."""

    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Repo:
        """The nearest folder at or above `start` that holds train/config."""
        here = (start or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / CONFIG_DIR).is_dir():
                return cls(candidate)
        raise InputError(
            f"no {CONFIG_DIR}/ at or above {here}",
            fix="run haha inside a Haha repo checkout, or pass --repo PATH",
        )

    @property
    def config_dir(self) -> Path:
        return self.root / CONFIG_DIR

    @property
    def data_dir(self) -> Path:
        return self.root / DATA_DIR

    @property
    def eval_path(self) -> Path:
        return self.root / EVAL_FILE

    @property
    def results_dir(self) -> Path:
        return self.root / RESULTS_DIR

    def inside(self, path: Path) -> bool:
        """Whether `path` is a file that resolves inside the checkout (a symlink may point anywhere)."""
        return path.is_file() and path.resolve().is_relative_to(self.root.resolve())

    def _files(self, folder: Path) -> list[Path]:
        """The files directly in `folder` that resolve inside the checkout, hidden ones left out;
        links that leave the checkout are never read (check/tree.py reports them)."""
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if self.inside(p) and not p.name.startswith("."))

    def config_paths(self) -> list[Path]:
        """Every file in train/config/ (not only *.yml, so misnamed files are reported too)."""
        return self._files(self.config_dir)

    def data_paths(self) -> list[Path]:
        """Every file directly in train/data/."""
        return self._files(self.data_dir)

    def config_path(self, name: str) -> Path:
        """Resolve a config given as basename, file name or path."""
        candidates = [Path(name), self.root / name, self.config_dir / name, self.config_dir / f"{name}.yml"]
        for path in candidates:
            if path.is_file():
                return path.resolve()
        raise InputError(f"no config named {name!r}", fix=f"list them with: ls {CONFIG_DIR}")

    def results_path(self, basename: str) -> Path:
        return self.results_dir / f"{basename}.json"

    def rel(self, path: Path) -> str:
        """`path` relative to the repo root, for messages and annotations."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    # --- git -------------------------------------------------------------------------------------
    def git_repo(self):  # -> git.Repo (GitPython is imported lazily)
        import git  # lazy: GitPython is slow to import and only some verbs need it

        try:
            return git.Repo(self.root, search_parent_directories=True)
        except git.InvalidGitRepositoryError as exc:
            raise InputError(f"{self.root} is not a git repository", fix="run inside a clone") from exc

    def _resolve(self, ref: str) -> str:
        import git

        try:
            return self.git_repo().git.rev_parse("--verify", f"{ref}^{{commit}}")
        except git.GitCommandError as exc:
            raise InputError(
                f"unknown git ref {ref!r}",
                fix="fetch it first (actions/checkout with fetch-depth: 0) or name another --base",
            ) from exc

    def merge_base(self, ref: str) -> str:
        """The commit the current work forked from `ref` (what a PR diff is taken against)."""
        repo = self.git_repo()
        sha = self._resolve(ref)
        bases = repo.merge_base(sha, "HEAD")
        return bases[0].hexsha if bases else sha

    def changes_since(self, ref: str) -> list[Change]:
        """Paths changed from merge-base(ref, HEAD) to the working tree, untracked files included."""
        repo = self.git_repo()
        base = self.merge_base(ref)
        out = repo.git.diff("--name-status", "--no-renames", base)
        changes = [
            Change(status[0], Path(path))
            for status, path in (line.split("\t", 1) for line in out.splitlines() if line)
        ]
        changes += [Change("A", Path(p)) for p in repo.untracked_files]
        return changes

    def read_at(self, ref: str, path: Path) -> str | None:
        """The text of `path` (repo-relative) at `ref`, or None where it did not exist."""
        import git

        try:
            return self.git_repo().git.show(f"{self.merge_base(ref)}:{path.as_posix()}")
        except git.GitCommandError:
            return None

    def head_sha(self) -> str | None:
        try:
            return self.git_repo().head.commit.hexsha
        except (InputError, ValueError):
            return None


def read_bounded(path: Path, limit: int) -> str:
    """The UTF-8 text of `path`, never more than `limit` bytes into memory: what a PR can put in a
    file is read bounded. Raises OSError or ValueError (UnicodeDecodeError, or over the limit)."""
    with path.open("rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"over the limit of {limit:,} bytes")
    return raw.decode("utf-8")


def default_base(repo: Repo) -> str | None:
    """The default branch as this clone knows it (origin/HEAD, else origin/main or origin/master),
    or None outside git or without a remote: what a plain `haha check` compares records with."""
    import git

    try:
        found = repo.git_repo()
    except InputError:
        return None
    for ref in DEFAULT_BRANCHES:
        try:
            found.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
        except git.GitCommandError:
            continue
        return ref
    return None


def added_in(repo: Repo, path: Path) -> str | None:
    """The commit that last added `path` (repo-relative): where the change that asked for it began.

    None when git cannot tell: the path is not in history, or the commit found is the cut of a
    shallow clone (there every file looks added).
    """
    found = repo.git_repo()
    sha = found.git.log("--diff-filter=A", "--format=%H", "-1", "--", path.as_posix()).strip()
    shallow = Path(found.common_dir) / "shallow"
    if not sha or (shallow.is_file() and sha in shallow.read_text().split()):
        return None
    return sha
