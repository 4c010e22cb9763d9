"""Latency statistics: percentiles, confidence intervals over repeated runs, agreement of repeats.

Why a two-level bootstrap: the latencies of one benchmark process are not
independent draws of "the" latency.  Each fresh process gets its own memory
layout, core and frequency history, so most of the variation between two
measurements of the same model is between processes, not between iterations.
Resampling only the iterations of the pooled runs would give intervals that
are far too narrow.  :func:`bootstrap_ci` therefore resamples whole repeats
first (with replacement), then iterations within each chosen repeat, and
takes the percentile of the pooled resample: with three repeats the interval
honestly widens when the repeats disagree.

Percentiles are numpy's default (linear interpolation between order
statistics, "type 7"), as in the tables; LiteRT's ``benchmark_model`` uses the
nearest rank below, which differs by at most one sample's spacing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Percentiles every latency summary reports: LiteRT's benchmark_model (p5, median, p95), the paper (p10, p50,
#: p90, p95) and MLPerf (p90), plus p99 for the tail.
PERCENTILES = (5, 10, 50, 90, 95, 99)


def summarize(latencies_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``p5_ms`` ... ``p99_ms``, ``mean_ms``, ``std_ms`` (sample), ``min_ms``, ``max_ms`` of one set of latencies."""
    lat = np.asarray(latencies_ms, dtype=np.float64)
    if lat.size == 0:
        raise ValueError("no latencies to summarize")
    out = {f"p{p}_ms": float(v) for p, v in zip(PERCENTILES, np.percentile(lat, PERCENTILES), strict=True)}
    out.update(mean_ms=float(lat.mean()), std_ms=float(lat.std(ddof=1)) if lat.size > 1 else 0.0,
               min_ms=float(lat.min()), max_ms=float(lat.max()))
    return out


def bootstrap_ci(repeats: Sequence[Sequence[float]], q: float, *, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Confidence interval of the ``q``-th percentile of the pooled latencies of ``repeats``.

    Two-level (hierarchical) bootstrap: each resample draws ``len(repeats)``
    repeats with replacement, then as many iterations as each drawn repeat has,
    with replacement, from it; the statistic is the percentile of the pooled
    resample.  Returns the (lower, upper) percentile interval at ``level``.
    Deterministic for a given ``seed``.
    """
    arrays = [np.sort(np.asarray(r, dtype=np.float64)) for r in repeats if len(r)]
    if not arrays:
        raise ValueError("no latencies to bootstrap")
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    k = len(arrays)
    for b in range(resamples):
        chosen = rng.integers(0, k, k)
        pooled = np.concatenate([arrays[i][rng.integers(0, len(arrays[i]), len(arrays[i]))] for i in chosen])
        stats[b] = np.percentile(pooled, q)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def relative_spread(values: Sequence[float]) -> float:
    """Largest relative deviation of ``values`` from their median (0.02 = the repeats lie within +-2 %)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    mid = float(np.median(v))
    return float(np.max(np.abs(v - mid)) / mid) if mid > 0 else 0.0
