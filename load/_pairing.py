"""Paired overhead: what a target adds over a baseline, from requests matched pair by pair.

A paired run sends each request of its schedule twice, once to the baseline (the mock provider
directly, or another gateway) and once to the target, back to back in a seeded random order, so
both legs meet the same provider timing and the same machine load. The difference of each pair
(target minus baseline) is what the target added to that request; its distribution, and a
bootstrap confidence interval for each percentile, say how much the target adds and whether a
difference is real (an interval that excludes 0) or noise.

Differences are kept as raw integer microseconds, not in HDR histograms: they can be negative
(the target leg was the faster of the two), and the bootstrap needs the samples. Merging the
lists of several locust processes is concatenation, so it is exact.
"""

from __future__ import annotations

import numpy as np

from gateproof.load.results import Estimate, OverheadMetric

__all__ = ["BOOTSTRAP_RESAMPLES", "CONFIDENCE", "PAIRED_METRICS", "overhead_metric"]

#: the latency metrics compared pair by pair (``chunk_delay``: the mean stamp delay of a stream)
PAIRED_METRICS = ("ttfb", "ttft", "inter_chunk", "e2e", "chunk_delay")
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
#: quantiles reported, by result field
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
#: points of the distribution kept for the plot
_CDF_POINTS = 101
#: resamples drawn at once (bounds memory: a batch is batch x pairs indices)
_BATCH_CELLS = 4_000_000


def _estimate(value: float, samples: np.ndarray, confidence: float) -> Estimate:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return Estimate(value=round(float(value), 4), low=round(float(low), 4), high=round(float(high), 4))


def overhead_metric(
    metric: str,
    differences_us: list[int],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 1,
) -> OverheadMetric | None:
    """The distribution of ``differences_us`` (target minus baseline, microseconds) in ms, each
    percentile and the mean with a percentile-bootstrap interval; None without a single pair."""
    if not differences_us:
        return None
    data = np.asarray(differences_us, dtype=np.float64) / 1000.0
    n = data.size
    rng = np.random.default_rng(seed)
    quantiles = list(_QUANTILES.values())
    boot_q = np.empty((resamples, len(quantiles)))
    boot_mean = np.empty(resamples)
    batch = max(1, min(resamples, _BATCH_CELLS // n))
    for start in range(0, resamples, batch):
        stop = min(resamples, start + batch)
        picks = data[rng.integers(0, n, size=(stop - start, n))]
        boot_q[start:stop] = np.quantile(picks, quantiles, axis=1).T
        boot_mean[start:stop] = picks.mean(axis=1)
    point = np.quantile(data, quantiles)
    estimates = {name: _estimate(point[k], boot_q[:, k], confidence) for k, name in enumerate(_QUANTILES)}
    fractions = np.linspace(0.0, 1.0, _CDF_POINTS)
    cdf = [
        (round(float(f), 4), round(float(v), 4))
        for f, v in zip(fractions, np.quantile(data, fractions), strict=True)
    ]
    return OverheadMetric(
        metric=metric,
        count=n,
        mean=_estimate(data.mean(), boot_mean, confidence),
        p50=estimates["p50"],
        p90=estimates["p90"],
        p99=estimates["p99"],
        p999=estimates["p999"],
        cdf=cdf,
    )
