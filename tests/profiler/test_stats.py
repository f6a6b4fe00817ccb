import math

import pytest

from edgekit.errors import ConfigError
from edgekit.profiler import stats


def test_nearest_rank_against_hand_computed_values():
    # 10 samples 1..10: p50 -> rank ceil(5.0)=5 -> 5; p90 -> rank 9 -> 9; p95 -> ceil(9.5)=10 -> 10
    values = [7, 3, 9, 1, 5, 10, 2, 8, 4, 6]
    s = stats.summarize(values, (50, 90, 95, 99))
    assert (s["p50"], s["p90"], s["p95"], s["p99"]) == (5, 9, 10, 10)
    assert s["min"] == 1 and s["max"] == 10 and s["mean"] == 5.5
    # population std of 1..10: sqrt(8.25)
    assert s["std"] == pytest.approx(math.sqrt(8.25))
    assert s["samples"] == [float(v) for v in values]       # every sample, measurement order
    assert s["count"] == 10


def test_nearest_rank_is_always_a_measured_value():
    values = sorted([1.0, 2.0, 4.0, 100.0])
    # p25 -> rank 1; p26 -> rank ceil(1.04)=2; p75 -> rank 3; p76 -> rank 4
    assert stats.percentile(values, 25) == 1.0
    assert stats.percentile(values, 26) == 2.0
    assert stats.percentile(values, 75) == 4.0
    assert stats.percentile(values, 76) == 100.0
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile([], 50) is None
    assert stats.key(99.9) == "p99.9" and stats.key(50) == "p50"


def test_min_samples_matches_loadgen_bounds():
    assert stats.min_samples(90) == 64
    assert stats.min_samples(99) == 662
    assert stats.min_samples(99.9) == 6636
    assert stats.min_samples(50) == 11


def test_warnings_for_few_samples_and_noise():
    steady = stats.summarize([10.0] * 100)
    warnings = stats.warnings_for(steady, (50, 90, 99))
    assert len(warnings) == 1 and "p99" in warnings[0] and "p90" not in warnings[0].split("back")[1].split("(")[0]
    noisy = stats.summarize([10.0, 12.0] * 400, (50, 90, 99))
    assert stats.cv(noisy) == pytest.approx(1.0 / 11.0)
    text = stats.warnings_for(noisy, (50, 90, 99))
    assert any("coefficient of variation 9.1%" in w for w in text)
    assert not any("too few" in w for w in text)


def test_empty_summary_does_not_crash():
    s = stats.summarize([], (50,))
    assert s["count"] == 0 and s["p50"] is None and s["mean"] is None
    assert stats.cv(s) is None


def test_parse_percentiles():
    assert stats.parse_percentiles("50, 90,99.9") == (50, 90, 99.9)
    for bad in ("", "abc", "0", "100", "50,101"):
        with pytest.raises(ConfigError):
            stats.parse_percentiles(bad)
