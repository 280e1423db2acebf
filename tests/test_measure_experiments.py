"""The experiment statistics agree with scipy to 1e-6, and their verdicts follow the numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from orchestrator.measure.experiments import (
    Z_95,
    Z_POWER_80,
    Arm,
    choose_control,
    compare,
    evaluate,
    required_per_arm,
    verdict,
)

CASES = [
    # (control entries, conversions, arm entries, conversions)
    (1000, 100, 1000, 130),
    (500, 50, 520, 49),
    (30, 3, 28, 9),
    (10_000, 1_210, 9_870, 1_301),
    (12, 0, 15, 3),
    (200, 199, 210, 180),
    (7, 7, 9, 2),
    (100_000, 5_000, 100_000, 5_150),
]


def _scipy(n1: int, x1: int, n2: int, x2: int) -> tuple[float, float, float, float]:
    """(difference, ci_low, ci_high, p_value) by scipy's normal distribution."""
    p1, p2 = x1 / n1, x2 / n2
    d = p2 - p1
    half = stats.norm.ppf(0.975) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    z = d / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return d, d - half, d + half, float(2 * stats.norm.sf(abs(z)))


def test_the_quantiles_are_scipys() -> None:
    assert abs(Z_95 - float(stats.norm.ppf(0.975))) < 1e-12
    assert abs(Z_POWER_80 - float(stats.norm.ppf(0.8))) < 1e-12


@pytest.mark.parametrize(("n1", "x1", "n2", "x2"), CASES)
def test_difference_interval_and_p_value_agree_with_scipy(
    n1: int, x1: int, n2: int, x2: int
) -> None:
    ours = compare(Arm("control", False, n1, x1), Arm("B", False, n2, x2))
    assert ours is not None
    difference, low, high, p_value = _scipy(n1, x1, n2, x2)
    assert ours.difference == pytest.approx(difference, abs=1e-6)
    assert ours.ci_low == pytest.approx(low, abs=1e-6)
    assert ours.ci_high == pytest.approx(high, abs=1e-6)
    assert ours.p_value == pytest.approx(p_value, abs=1e-6)


@pytest.mark.parametrize(("n1", "x1", "n2", "x2"), CASES)
def test_sample_size_agrees_with_the_formula_by_scipy(n1: int, x1: int, n2: int, x2: int) -> None:
    p1, p2 = x1 / n1, x2 / n2
    mean = (p1 + p2) / 2
    expected = (
        stats.norm.ppf(0.975) * math.sqrt(2 * mean * (1 - mean))
        + stats.norm.ppf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / (p1 - p2) ** 2
    ours = required_per_arm(p1, p2)
    assert ours is not None and ours == pytest.approx(float(expected), rel=1e-9)


def test_the_textbook_sample_size() -> None:
    # 10% vs 15% at alpha 0.05, power 0.8: the well-known ~686 per arm.
    needed = required_per_arm(0.10, 0.15)
    assert needed is not None and math.ceil(needed) == 686


counts = st.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
)


@given(counts, counts)
def test_interval_contains_the_difference_and_p_is_a_probability(
    control: tuple[int, int], arm: tuple[int, int]
) -> None:
    result = compare(Arm("control", False, *control), Arm("B", False, *arm))
    assert result is not None
    assert result.ci_low <= result.difference <= result.ci_high
    assert 0.0 <= result.p_value <= 1.0
    assert -1.0 <= result.difference <= 1.0


@given(counts, counts)
def test_swapping_the_arms_mirrors_the_result(a: tuple[int, int], b: tuple[int, int]) -> None:
    ab = compare(Arm("A", False, *a), Arm("B", False, *b))
    ba = compare(Arm("B", False, *b), Arm("A", False, *a))
    assert ab is not None and ba is not None
    assert ab.difference == pytest.approx(-ba.difference, abs=1e-12)
    assert ab.p_value == pytest.approx(ba.p_value, abs=1e-12)
    assert ab.ci_low == pytest.approx(-ba.ci_high, abs=1e-12)


@given(counts, counts)
def test_a_verdict_is_one_of_the_three_and_agrees_with_the_p_value(
    control: tuple[int, int], arm: tuple[int, int]
) -> None:
    c, b = Arm("control", False, *control), Arm("B", False, *arm)
    result = compare(c, b)
    words = verdict(c, b, result)
    assert result is not None
    if result.p_value < 0.05:
        assert words.endswith("than control, 95% confident")
        assert ("better" in words) == (result.difference > 0)
    else:
        assert words == "no difference detected" or words.startswith("not enough data yet: about ")


def test_verdicts_in_words() -> None:
    control = Arm("control", False, 1000, 100)
    better = Arm("B", False, 1000, 150)
    assert verdict(control, better, compare(control, better)) == (
        "B converts better than control, 95% confident"
    )
    small = Arm("B", False, 100, 12)
    little = Arm("control", False, 100, 10)
    words = verdict(little, small, compare(little, small))
    needed = required_per_arm(0.10, 0.12)
    assert needed is not None
    assert (
        words
        == f"not enough data yet: about {math.ceil(needed) - 100} more customers per arm needed"
    )
    same = Arm("B", False, 1000, 100)
    assert verdict(control, same, compare(control, same)) == "no difference detected"
    empty = Arm("B", False, 0, 0)
    assert compare(control, empty) is None
    assert verdict(control, empty, None) == "not enough data yet: no customers in B so far"


def test_the_control_is_named_control_else_the_holdout_else_the_first_by_name() -> None:
    a, b = Arm("a", False, 1, 0), Arm("b", False, 1, 0)
    held, named = Arm("z", True, 1, 0), Arm("control", False, 1, 0)
    assert choose_control([b, held, named, a]) is named
    assert choose_control([b, held, a]) is held
    assert choose_control([b, a]) is a
    experiment = evaluate("split-1", [b, held, a])
    assert experiment.control == "z"
    assert [r.arm.variant for r in experiment.arms] == ["z", "a", "b"]
    assert experiment.arms[0].comparison is None
