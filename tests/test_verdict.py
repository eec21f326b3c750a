"""The verdict: paired comparisons over seeds with Holm's correction, the seeds needed, and the failures' causes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from initlab.report._build import _ACCURACY_RANGE, _LOSS_RANGE, _ci
from initlab.studies import Store, Study, run_study
from initlab.studies.summary import Stat
from initlab.studies.verdict import ALPHA, holm, paired_p_value, seeds_needed, verdict

finite = st.floats(-1.0, 1.0, allow_nan=False)


@given(st.lists(finite, min_size=2, max_size=12), st.lists(finite, min_size=2, max_size=12))
def test_the_paired_p_value_is_scipys_ttest_rel(a, b):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    p = paired_p_value(diffs)
    mean = sum(diffs) / n
    if all(d == diffs[0] for d in diffs) or max(diffs) - min(diffs) < 1e-12 * max(1.0, abs(mean)):
        return  # no spread: scipy returns NaN; we say 0 or 1 (see the next test)
    expected = stats.ttest_rel(a, b).pvalue
    assert p == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_differences_without_spread_are_certain():
    assert paired_p_value([0.0, 0.0, 0.0]) == 1.0
    assert paired_p_value([0.2, 0.2]) is None  # no spread: the t statistic is undefined
    assert seeds_needed([0.2, 0.2]) is None
    assert paired_p_value([0.3]) is None


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_holm_adjusts_upwards_keeps_the_order_and_stays_a_probability(p):
    adjusted = holm(p)
    assert all(q >= r - 1e-15 for q, r in zip(adjusted, p, strict=True))
    assert all(0.0 <= q <= 1.0 for q in adjusted)
    order = sorted(range(len(p)), key=lambda i: p[i])
    assert all(adjusted[order[i]] <= adjusted[order[i + 1]] for i in range(len(p) - 1))
    # The smallest p-value is multiplied by the number of comparisons (Bonferroni's step).
    assert adjusted[order[0]] == pytest.approx(min(1.0, len(p) * p[order[0]]))


def test_holm_on_a_worked_example():
    # Holm (1979): p = 0.01, 0.04, 0.03, 0.005 with k = 4 -> 0.03, 0.06, 0.06, 0.02.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=2, max_size=8))
def test_the_seeds_needed_would_make_the_interval_exclude_zero(diffs):
    n = seeds_needed(diffs)
    mean = sum(diffs) / len(diffs)
    if n is None:
        return
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    assert stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < abs(mean)
    if n > 2:  # and one seed fewer would not
        assert stats.t.ppf(0.975, n - 2) * sd / math.sqrt(n - 1) >= abs(mean)


def test_intervals_stay_in_their_quantitys_range():
    loss = Stat(mean=0.05, std=0.08, ci95=0.72, n=2)
    assert _ci(loss, digits=3, clip=_LOSS_RANGE) == "[0.000, 0.770]*"
    acc = Stat(mean=0.99, std=0.01, ci95=0.09, n=2)
    assert _ci(acc, 100.0, clip=_ACCURACY_RANGE) == "[90.00, 100.00]*"
    assert _ci(Stat(0.5, 0.01, 0.02, 3), 100.0, clip=_ACCURACY_RANGE) == "[48.00, 52.00]"


def _study(tmp_path, inits: str):
    study = Study.from_config({"name": inits, "dataset": "digits", "model": "mlp:32", "inits": inits.split(","),
                               "seeds": 3, "train": {"epochs": 2}})  # fmt: skip
    folder = run_study(study, tmp_path / inits.replace(",", "-"), workers=1)
    with Store.in_dir(folder, readonly=True) as store:
        return verdict(store)


def test_he_normal_and_he_uniform_are_indistinguishable(tmp_path):
    found = _study(tmp_path, "he_normal,he_uniform")
    (comparison,) = found.comparisons
    assert comparison.seeds == 3
    assert comparison.p_adjusted >= ALPHA
    assert found.tied_with_best == [comparison.arm]
    assert any("Statistically indistinguishable from it" in line for line in found.sentences())
    assert not found.failed


def test_zeros_and_he_normal_differ_and_zeros_is_explained(tmp_path):
    found = _study(tmp_path, "zeros,he_normal")
    assert found.best == "he_normal"
    assert found.different == ["zeros"]
    assert "symmetry not broken" in found.failed["zeros"]
    assert found.seeds_needed is not None
    assert found.seeds_needed <= 3
