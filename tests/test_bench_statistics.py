"""The interval the benchmarks decide their speed targets with (benchmarks/_common.py: median_interval)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import median_interval  # noqa: E402


@pytest.mark.parametrize("n, rank, coverage", [
    (3, 1, 0.75),                                  # too few: (min, max), and it says so
    (10, 2, 1 - 2 * (1 + 10) / 2 ** 10),           # (x₍₂₎, x₍₉₎): 97.9%
    (20, 6, 1 - 2 * sum(math.comb(20, i) for i in range(6)) / 2 ** 20),  # (x₍₆₎, x₍₁₅₎): 95.9%
])
def test_order_statistics_and_exact_binomial_coverage(n, rank, coverage):
    values = list(np.random.default_rng(0).permutation(np.arange(1.0, n + 1)))  # x₍ⱼ₎ = j
    low, high, cover = median_interval(values)
    assert (low, high) == (rank, n + 1 - rank)
    assert cover == pytest.approx(coverage)
    if n >= 10:  # the next narrower interval would fall short of 95%
        narrower = 1 - 2 * sum(math.comb(n, i) for i in range(rank + 1)) / 2 ** n
        assert narrower < 0.95 <= cover


def test_coverage_holds_for_skewed_ratios():
    """Simulated: 10 log-normal ratios per run (right-skewed, like slow spells of a shared machine);
    the interval holds the true median in 97.9% of runs, within Monte Carlo error (4 standard errors)."""
    rng = np.random.default_rng(1)
    true_median, runs = 1.07, 4000
    samples = true_median * np.exp(rng.normal(0.0, 0.05, size=(runs, 10)) + rng.exponential(0.03, size=(runs, 10)))
    shift = np.exp(np.median(rng.normal(0.0, 0.05, 200_000) + rng.exponential(0.03, 200_000)))
    hits = [low <= true_median * shift <= high for low, high, _ in map(median_interval, samples)]
    expected = 1 - 2 * 11 / 1024
    assert abs(np.mean(hits) - expected) < 4 * math.sqrt(expected * (1 - expected) / runs)
