"""Latency statistics as docs/design/measurement.md says: nearest-rank percentiles, every sample kept.

Nearest rank: the p-th percentile of N sorted samples is the value at rank ceil(p/100 * N)
(1-based), so it is always a measured value, never an interpolation; p0 is the minimum.

How many samples a percentile needs: LoadGen's early-stopping bound. A percentile p is backed by
N samples when, if the true p-quantile were the reported value, seeing at most one sample above
it would have a probability of no more than 1% (binomial with q = 1 - p/100):
``P(Binomial(N, q) <= 1) <= 0.01``. That gives 64 samples for p90 and 662 for p99 (docs/design/measurement.md),
11 for p50 and 130 for p95.
"""

import math

DEFAULT_PERCENTILES = (50, 90, 95, 99)
CV_WARN = 0.05          # coefficient of variation above which the run is called noisy
CONFIDENCE_MISS = 0.01  # early-stopping probability bound


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list; None when empty."""
    if not sorted_values:
        return None
    if p <= 0:
        return sorted_values[0]
    rank = int(math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def _binom_cdf_le1(n, q):
    return (1.0 - q) ** n + n * q * (1.0 - q) ** (n - 1)


def min_samples(p):
    """Smallest N with P(Binomial(N, 1 - p/100) <= 1) <= 1%: the samples a p-th percentile needs."""
    q = 1.0 - p / 100.0
    if q <= 0:
        return None     # p100 (the max) is never backed
    n = 2
    while _binom_cdf_le1(n, q) > CONFIDENCE_MISS:
        n += 1
    return n


def key(p):
    """Statistic name for a percentile: 50 -> 'p50', 99.9 -> 'p99.9'."""
    return "p%g" % p


def summarize(samples_ms, percentiles=DEFAULT_PERCENTILES):
    """{"min", "mean", "std", "p50", ..., "max", "samples"}: std is the population standard
    deviation; ``samples`` is every sample in measurement order."""
    values = [float(v) for v in samples_ms]
    ordered = sorted(values)
    n = len(values)
    out = {"count": n}
    if n:
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / n
        out.update(min=ordered[0], mean=mean, std=math.sqrt(var), max=ordered[-1])
    else:
        out.update(min=None, mean=None, std=None, max=None)
    for p in percentiles:
        out[key(p)] = percentile(ordered, p)
    out["samples"] = values
    return out


def cv(summary):
    """Coefficient of variation std/mean (None when it cannot be computed)."""
    if not summary.get("mean"):
        return None
    return summary["std"] / summary["mean"]


def warnings_for(summary, percentiles=DEFAULT_PERCENTILES, label="latency"):
    """Human warnings: too few samples for a percentile asked, or a noisy run."""
    out = []
    n = summary.get("count", len(summary.get("samples") or ()))
    short = [p for p in percentiles if min_samples(p) and n < min_samples(p)]
    if short:
        out.append("%s: %d samples are too few to back %s (needs %s); run longer with --duration or "
                   "--min-iters" % (label, n, ", ".join(key(p) for p in short),
                                    ", ".join("%s >= %d" % (key(p), min_samples(p)) for p in short)))
    c = cv(summary)
    if c is not None and c > CV_WARN:
        out.append("%s: coefficient of variation %.1f%% is above %.0f%%: the machine is noisy or the "
                   "clocks move; compare numbers with care" % (label, 100 * c, 100 * CV_WARN))
    return out


def parse_percentiles(text):
    """'50,90,99' -> (50.0, 90.0, 99.0); raises ConfigError on bad values."""
    from edgekit.errors import ConfigError

    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ConfigError("bad percentile %r" % item, hint="give numbers like --percentiles 50,90,99")
        if not 0 < value < 100:
            raise ConfigError("percentile %s is outside (0, 100)" % item, hint="give numbers like 50,90,99")
        out.append(int(value) if value.is_integer() else value)
    if not out:
        raise ConfigError("no percentiles given", hint="give numbers like --percentiles 50,90,99")
    return tuple(out)
