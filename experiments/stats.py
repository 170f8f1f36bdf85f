"""Mean and spread over seeds, and the one rule that turns two arms into a verdict.

The spread of an arm is half the range of its seeds (min to max). Two arms
differ only when their seed ranges do not overlap, that is when the
difference of their means exceeds the sum of their spreads; otherwise the
comparison is "within spread", which a verdict reports as inconclusive.
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

    def __str__(self):
        if not self.seeds:
            return "n/a"
        return f"{100 * self.mean:.1f} ± {100 * self.spread:.1f}"


def summarize(values: List[float]) -> Summary:
    if not values:
        return Summary(float("nan"), float("nan"), 0)
    return Summary(statistics.fmean(values), (max(values) - min(values)) / 2, len(values))


@dataclasses.dataclass(frozen=True)
class Compare:
    a: Summary
    b: Summary

    @property
    def diff(self):
        return f"{100 * (self.a.mean - self.b.mean):.1f} points"

    @property
    def direction(self):
        """"higher" / "lower" (a than b, beyond both spreads), "within spread", or "pending"."""
        if min(self.a.seeds, self.b.seeds) < MIN_SEEDS:
            return "pending"
        difference = self.a.mean - self.b.mean
        if abs(difference) <= self.a.spread + self.b.spread:
            return "within spread"
        return "higher" if difference > 0 else "lower"


def arm_summary(results: Dict[str, List[dict]], arm: str, key: str) -> Summary:
    """The arm's mean ± spread of `key`, from its finished runs' rows."""
    return summarize([row[key] for row in results.get(arm, []) if row.get(key) is not None])


def compare(results: Dict[str, List[dict]], a: str, b: str, key: str) -> Compare:
    """Arm `a` against arm `b` on `key`, from the finished runs' rows of each arm."""
    return Compare(arm_summary(results, a, key), arm_summary(results, b, key))
