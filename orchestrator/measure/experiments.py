"""Split experiments: each arm's conversion against the control, in plain numbers and words.

Pure functions (no I/O, no scipy: the normal distribution comes from `math.erfc`).

- The difference of an arm to the control is `rate(arm) - rate(control)`, with a 95%
  confidence interval by the unpooled Wald formula:
  `d ± z(0.975) * sqrt(p1(1-p1)/n1 + p2(1-p2)/n2)`.
- Its two-sided p-value is the pooled two-proportion z-test's: with `p = (x1+x2)/(n1+n2)`,
  `z = d / sqrt(p(1-p)(1/n1 + 1/n2))`, `p_value = erfc(|z| / sqrt(2))`.
- The sample size per arm to detect the observed rates at alpha 0.05 (two-sided) with power
  0.8 is the standard formula
  `n = (z(0.975) sqrt(2 p̄(1-p̄)) + z(0.8) sqrt(p1(1-p1) + p2(1-p2)))² / (p1-p2)²`, p̄ the mean.

The control of a split is the arm named `control`, else the holdout arm, else the first arm
by name. Looking at a running experiment again and again and stopping at the first
"95% confident" inflates false positives far beyond 5%: decide the sample size first (the
"about N more customers per arm" line says how many the observed difference needs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CONTROL",
    "Arm",
    "ArmResult",
    "Comparison",
    "Experiment",
    "choose_control",
    "compare",
    "evaluate",
    "required_per_arm",
    "verdict",
]

CONTROL = "control"
"""The variant name that makes an arm the control."""

Z_95 = 1.959963984540054
"""The standard normal's 0.975 quantile: a two-sided 95% interval, alpha 0.05."""

Z_POWER_80 = 0.8416212335729143
"""The standard normal's 0.8 quantile: power 0.8."""

ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of a split: the instances that got it and how many of them reached the goal."""

    variant: str
    holdout: bool
    entries: int
    conversions: int

    @property
    def rate(self) -> float | None:
        """Conversions per entry; None before the first entry."""
        return self.conversions / self.entries if self.entries else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """An arm against the control: difference of rates, its 95% interval, the z-test."""

    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float


@dataclass(frozen=True, slots=True)
class ArmResult:
    """An arm with its comparison to the control (None for the control itself or no data)."""

    arm: Arm
    comparison: Comparison | None
    verdict: str | None


@dataclass(frozen=True, slots=True)
class Experiment:
    """One split's arms, its control, and the verdict in words."""

    step: str
    control: str
    arms: tuple[ArmResult, ...]
    verdict: str


def compare(control: Arm, arm: Arm) -> Comparison | None:
    """`arm` against `control`; None while either has no entries."""
    n1, n2 = control.entries, arm.entries
    if not n1 or not n2:
        return None
    p1, p2 = control.conversions / n1, arm.conversions / n2
    difference = p2 - p1
    half = Z_95 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (control.conversions + arm.conversions) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    # Both rates 0 or both 1: no spread, no evidence of a difference.
    z = difference / se if se > 0 else 0.0
    return Comparison(
        difference, difference - half, difference + half, z, math.erfc(abs(z) / math.sqrt(2))
    )


def required_per_arm(p1: float, p2: float) -> float | None:
    """Customers per arm to detect rates `p1` vs `p2` (alpha 0.05 two-sided, power 0.8);
    None when the rates are equal (no size detects no difference)."""
    if p1 == p2:
        return None
    mean = (p1 + p2) / 2
    root = Z_95 * math.sqrt(2 * mean * (1 - mean)) + Z_POWER_80 * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return root**2 / (p1 - p2) ** 2


def verdict(control: Arm, arm: Arm, comparison: Comparison | None) -> str:
    """The comparison in plain words."""
    if comparison is None:
        empty = control if not control.entries else arm
        return f"not enough data yet: no customers in {empty.variant} so far"
    if comparison.p_value < ALPHA:
        better = "better" if comparison.difference > 0 else "worse"
        return f"{arm.variant} converts {better} than {control.variant}, 95% confident"
    needed = required_per_arm(control.conversions / control.entries, arm.conversions / arm.entries)
    have = min(control.entries, arm.entries)
    if needed is not None and math.ceil(needed) > have:
        more = math.ceil(needed) - have
        return f"not enough data yet: about {more} more customers per arm needed"
    return "no difference detected"


def choose_control(arms: Sequence[Arm]) -> Arm:
    """The arm named `control`, else the holdout arm, else the first arm by name."""
    if not arms:
        raise ValueError("a split experiment needs at least one arm")
    by_name = sorted(arms, key=lambda a: a.variant)
    for arm in by_name:
        if arm.variant == CONTROL:
            return arm
    for arm in by_name:
        if arm.holdout:
            return arm
    return by_name[0]


def evaluate(step: str, arms: Sequence[Arm]) -> Experiment:
    """Every arm of split `step` against its control; the verdicts joined for the split
    (each after its arm's name when there are several)."""
    control = choose_control(arms)
    results = []
    for arm in sorted(arms, key=lambda a: (a is not control, a.variant)):
        if arm is control:
            results.append(ArmResult(arm, None, None))
            continue
        comparison = compare(control, arm)
        results.append(ArmResult(arm, comparison, verdict(control, arm, comparison)))
    said = [(r.arm.variant, r.verdict) for r in results if r.verdict is not None]
    if len(said) == 1:
        words = said[0][1]
    else:  # several arms: say whose each verdict is, unless it says so itself
        words = "; ".join(
            text if text.startswith(f"{variant} ") else f"{variant}: {text}"
            for variant, text in said
        )
    return Experiment(step, control.variant, tuple(results), words or "only one arm")
