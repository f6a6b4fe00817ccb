"""The statistics the daemon benchmark's claims rest on (benchmarks/bench_daemon.py): the interval for
a median, the steady-state frames/s of bursty publications, and the bracketed bound. No timing is
asserted: these are computations on made-up numbers."""

import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import bench_daemon  # noqa: E402


def below(n, k):
    """P(Binomial(n, 1/2) <= k)."""
    return sum(math.comb(n, j) for j in range(k + 1)) / 2.0 ** n


@pytest.mark.parametrize("n", [6, 10, 16, 30, 80, 128])
def test_median_interval_is_the_tightest_pair_of_order_statistics_that_covers_95_percent(n):
    values = [float(v) for v in range(n)][::-1]           # unsorted on purpose: values are their ranks - 1
    lo, hi = bench_daemon.median_interval(values)
    k = int(lo) + 1                                       # the k-th smallest and the k-th largest
    assert hi == n - k
    assert 1 - 2 * below(n, k - 1) >= 0.95               # it covers
    assert 1 - 2 * below(n, k) < 0.95                    # one step narrower would not


def test_median_interval_of_16_is_the_4th_smallest_to_the_4th_largest():
    assert bench_daemon.median_interval(list(range(16))) == (3, 12)


def test_median_interval_of_too_few_values_is_their_range():
    assert bench_daemon.median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)


def bursts(rate, burst, seconds, phase):
    """Publication times of a stream that publishes ``burst`` frames at once, ``rate`` frames/s on
    average, the first burst at ``phase`` s."""
    period = burst / float(rate)
    times, t = [], phase
    while t < seconds:
        times.extend([t] * burst)
        t += period
    return times


def test_steady_fps_of_a_steady_stream_is_its_rate():
    times = [0.005 * i for i in range(1, 400)]            # 200 frames/s, one at a time
    published = (times, 1.5, 0.0)
    assert bench_daemon.steady_fps(published) == pytest.approx(200.0, rel=1e-6)
    assert bench_daemon.window_fps(published) == pytest.approx(200.0, rel=0.01)


def test_steady_fps_of_bursts_does_not_move_with_where_the_bursts_land():
    """Bursts of 16 at 200 frames/s on average: the count between fixed ends jumps by a whole burst
    with the phase; the slope through the publications stays within a few percent of the rate."""
    slopes, counts = [], []
    for i in range(40):
        published = (bursts(200.0, 16, 2.0, phase=0.002 * i), 1.0, 0.0)
        slopes.append(bench_daemon.steady_fps(published))
        counts.append(bench_daemon.window_fps(published))
    assert max(abs(s / 200.0 - 1) for s in slopes) < 0.04
    assert max(counts) - min(counts) > 15.0               # the count moves by about a burst per 0.9 s


def test_steady_fps_leaves_out_the_start_and_the_drain():
    start = [0.01 * i for i in range(1, 10)]              # 100 frames/s until 0.1 s
    steady = [0.1 + 0.005 * i for i in range(1, 181)]     # 200 frames/s until the stop is asked at 1.0 s
    drain = [1.0 + 0.02 * i for i in range(1, 6)]         # a slow drain after it
    published = (start + steady + drain, 1.0, 0.0)
    assert bench_daemon.steady_fps(published) == pytest.approx(200.0, rel=1e-6)
    assert bench_daemon.window_fps(published) == pytest.approx(200.0, rel=0.01)


def test_steady_fps_with_too_few_publications_falls_back_to_the_count():
    published = ([0.5, 0.6], 1.0, 0.0)
    assert bench_daemon.steady_fps(published) == bench_daemon.window_fps(published) == pytest.approx(2 / 0.9)


def test_bracket_is_the_mean_of_before_and_after_for_each_stage():
    before = {"decode": (0.001, 0.002), "infer": (0.004, 0.008)}
    after = {"decode": (0.003, 0.004), "infer": (0.006, 0.010)}
    got = bench_daemon.bracket(before, after)
    assert got["decode"] == pytest.approx((0.002, 0.003))
    assert got["infer"] == pytest.approx((0.005, 0.009))
    bound, cpu = bench_daemon.bound_of(dict(got, preprocess=(0.0, 0.0), postprocess=(0.0, 0.0)), cores=2)
    assert cpu == pytest.approx(0.012)
    assert bound == pytest.approx(min(2 / 0.012, 1 / 0.005))
