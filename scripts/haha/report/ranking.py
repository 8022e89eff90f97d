"""Bradley–Terry scores from pairwise votes, with bootstrap confidence intervals (fixed seed).

Ties count half a win each way. Every config also plays one virtual tie against an anchor of
strength 1, a weak prior that keeps scores finite for configs that never (or always) won and ties
disconnected groups to one scale. Scores are on the Elo scale: 1000 + 400·log10(strength), so a
100-point gap means the higher one wins about 64% of the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PRIOR_GAMES = 1.0
BOOTSTRAP = 200
SEED = 20261128  # fixed: the report must come out byte-identical from the same votes
MAX_ITER = 100
MAX_STEP = 2.0
TOLERANCE = 1e-9
ELO_BASE, ELO_SCALE = 1000.0, 400.0


@dataclass(frozen=True)
class Score:
    name: str
    score: float
    low: float
    high: float
    votes: int
    wins: float  # ties count half


@dataclass(frozen=True)
class Vote:
    """Aggregated votes between two configs: `a` won `a_wins`, `b` won `b_wins`, `ties` ties."""

    a: str
    b: str
    a_wins: int
    b_wins: int
    ties: int

    @property
    def total(self) -> int:
        return self.a_wins + self.b_wins + self.ties


def _fit(wins: np.ndarray, games: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Log-strengths for a batch: wins (B, k), games (B, k, k) symmetric → (B, k), mean 0.

    Newton's method on the (strictly concave, thanks to the prior) log-likelihood, all bootstrap
    samples at once; steps are capped so a lopsided record cannot overshoot.
    """
    theta = np.zeros(wins.shape) if start is None else np.broadcast_to(start, wins.shape).copy()
    gain = wins + PRIOR_GAMES / 2
    eye = np.eye(wins.shape[1])
    for _ in range(MAX_ITER):
        share = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # P(i beats j)
        anchor = 1.0 / (1.0 + np.exp(-theta))  # P(i beats the prior's anchor)
        gradient = gain - (games * share).sum(axis=2) - PRIOR_GAMES * anchor
        curvature = games * share * share.transpose(0, 2, 1)
        diagonal = curvature.sum(axis=2) + PRIOR_GAMES * anchor * (1 - anchor)
        hessian = curvature * -1 + eye * diagonal[:, :, None]  # −H: positive definite
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        step = np.clip(step, -MAX_STEP, MAX_STEP)
        theta = theta + step
        if np.abs(step).max() < TOLERANCE:
            break
    return theta - theta.mean(axis=1, keepdims=True)


def _tables(k: int, cells: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """(B, k) wins and (B, k, k) games from per-cell counts (B, cells); cells = (i, j, outcome)."""
    b = counts.shape[0]
    rows = np.arange(b)[:, None]
    i, j, outcome = cells[:, 0], cells[:, 1], cells[:, 2]
    a_wins = counts * np.where(outcome == 0, 1.0, np.where(outcome == 2, 0.5, 0.0))
    b_wins = counts * np.where(outcome == 1, 1.0, np.where(outcome == 2, 0.5, 0.0))
    wins = _sum_at((b, k), (rows, i), a_wins) + _sum_at((b, k), (rows, j), b_wins)
    games = _sum_at((b, k, k), (rows, i, j), counts) + _sum_at((b, k, k), (rows, j, i), counts)
    return wins, games


def _sum_at(shape: tuple[int, ...], at: tuple[np.ndarray, ...], values: np.ndarray) -> np.ndarray:
    """np.add.at into zeros, via bincount (~3× faster); any order of summing gives the same bits here,
    since the counts are whole numbers and the wins whole or half."""
    flat = np.ravel_multi_index(np.broadcast_arrays(*at), shape).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=math.prod(shape)).reshape(shape)


def scores(votes: Sequence[Vote], bootstrap: int = BOOTSTRAP) -> list[Score]:
    """Every config in the votes, best first (ties broken by name), with a 95% bootstrap interval."""
    names = sorted({v.a for v in votes} | {v.b for v in votes})
    if not names:
        return []
    index = {n: i for i, n in enumerate(names)}
    rows = [
        (index[v.a], index[v.b], o, c) for v in votes for o, c in enumerate((v.a_wins, v.b_wins, v.ties)) if c
    ]
    cells = np.array([r[:3] for r in rows], dtype=np.int64).reshape(-1, 3)
    counts = np.array([r[3] for r in rows], dtype=np.float64)
    wins, games = _tables(len(names), cells, counts[None, :])
    fitted = _fit(wins, games)
    point = ELO_BASE + ELO_SCALE / np.log(10) * fitted[0]
    total = int(counts.sum())
    rng = np.random.default_rng(SEED)
    resampled = rng.multinomial(total, counts / total, size=bootstrap).astype(np.float64)
    boot = ELO_BASE + ELO_SCALE / np.log(10) * _fit(*_tables(len(names), cells, resampled), fitted)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    played = games[0].sum(axis=1)
    found = [
        Score(n, float(point[i]), float(low[i]), float(high[i]), int(played[i]), float(wins[0, i]))
        for n, i in index.items()
    ]
    return sorted(found, key=lambda s: (-round(s.score, 6), s.name))
