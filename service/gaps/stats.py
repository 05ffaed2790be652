"""Interval estimates for gap rates: Wilson's score interval and Newcombe's interval for a difference."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `n` (95% by default)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(gap_1: int, n_1: int, gap_2: int, n_2: int, z: float = Z95) -> tuple[float, float, float]:
    """The difference of two rates p1 - p2 with Newcombe's hybrid score interval (his method 10)."""
    p1, p2 = gap_1 / n_1, gap_2 / n_2
    low_1, high_1 = wilson(gap_1, n_1, z)
    low_2, high_2 = wilson(gap_2, n_2, z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - low_1) ** 2 + (high_2 - p2) ** 2)
    high = difference + math.sqrt((high_1 - p1) ** 2 + (p2 - low_2) ** 2)
    return difference, max(-1.0, low), min(1.0, high)
