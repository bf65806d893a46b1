"""Percentiles, defined once for the whole toolkit.

From raw samples: the nearest rank, exactly as crebito-loader computes them
(stress/loader/src/main.rs, `percentiles`): the value at rank ceil(q * n) (1-based) of the
sorted samples, so p99 of 1..100 is 99 and every percentile is a value that was observed.

From a Prometheus histogram (crebito's own request timings): only an estimate is possible;
linear interpolation inside the bucket that holds the rank, as Prometheus'
histogram_quantile does, and the highest finite bound when the rank falls in +Inf.
"""

import math


def nearest_rank(values, q):
    """The q-quantile (0 < q <= 1) of values by nearest rank; None when there are none."""
    xs = sorted(values)
    if not xs:
        return None
    return xs[min(max(math.ceil(q * len(xs)), 1), len(xs)) - 1]


def histogram_quantile(buckets, q):
    """The q-quantile estimated from cumulative buckets {upper bound: count} (the +Inf
    bucket as float("inf")); None when the histogram is empty."""
    total = buckets.get(float("inf"), 0)
    if total <= 0:
        return None
    rank, prev_le, prev_n = q * total, 0.0, 0
    for le in sorted(buckets):
        if buckets[le] >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_n) / max(buckets[le] - prev_n, 1)
        prev_le, prev_n = le, buckets[le]
    return prev_le


def bucket_difference(prev, cur):
    """The histogram of what happened between two cumulative readings {bound text: count}
    (stress/sample.py's), with float bounds."""
    out = {}
    for k, n in cur.items():
        le = float("inf") if k == "+Inf" else float(k)
        out[le] = n - prev.get(k, 0)
    return out
