"""Mean and spread over seeds, and the one rule that turns two arms into a verdict.

The spread of an arm is half the range of its seeds (min to max), reported
as mean ± spread. Two arms differ only when their seed ranges [min, max] do
not overlap: every seed of one above every seed of the other. Otherwise the
comparison is "within spread", which a verdict reports as inconclusive.
(With 2 seeds this is the same as "the means differ by more than the sum of
the spreads"; with 3 or more it is not, and the ranges decide.)
"""

import dataclasses
import statistics
from typing import Dict, List

MIN_SEEDS = 2  # a comparison with fewer seeds per arm has no spread, so no verdict


@dataclasses.dataclass(frozen=True)
class Summary:
    mean: float
    spread: float  # half the range over seeds
    seeds: int
    low: float = float("nan")  # the lowest seed
    high: float = float("nan")  # the highest seed

    def __str__(self):
        if not self.seeds:
            return "n/a"
        if self.seeds == 1:  # no spread yet: "± 0.0" would claim a seed-proof number
            return f"{100 * self.mean:.1f} (1 seed)"
        return f"{100 * self.mean:.1f} ± {100 * self.spread:.1f}"


def summarize(values: List[float]) -> Summary:
    if not values:
        return Summary(float("nan"), float("nan"), 0)
    return Summary(statistics.fmean(values), (max(values) - min(values)) / 2, len(values), min(values), max(values))


@dataclasses.dataclass(frozen=True)
class Compare:
    a: Summary
    b: Summary

    @property
    def diff(self):
        return f"{100 * (self.a.mean - self.b.mean):.1f} points"

    @property
    def direction(self):
        """"higher" / "lower" (every seed of a above / below every seed of b), "within spread", or "pending"."""
        if min(self.a.seeds, self.b.seeds) < MIN_SEEDS:
            return "pending"
        if self.a.low > self.b.high:
            return "higher"
        if self.a.high < self.b.low:
            return "lower"
        return "within spread"


def arm_summary(results: Dict[str, List[dict]], arm: str, key: str) -> Summary:
    """The arm's mean ± spread of `key`, from its finished runs' rows."""
    return summarize([row[key] for row in results.get(arm, []) if row.get(key) is not None])


def compare(results: Dict[str, List[dict]], a: str, b: str, key: str) -> Compare:
    """Arm `a` against arm `b` on `key`, from the finished runs' rows of each arm."""
    return Compare(arm_summary(results, a, key), arm_summary(results, b, key))
