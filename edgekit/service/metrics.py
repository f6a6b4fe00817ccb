"""Counters, gauges and histograms with Prometheus text exposition, no dependency.

Names follow Prometheus conventions: ``edgekit_frames_total``, ``edgekit_stage_seconds``
(histogram, label ``stage``), units in seconds. Thread-safe.
"""

import threading

# seconds: 0.5 ms .. 10 s
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _key(labels):
    return tuple(sorted(labels.items()))


def _fmt_labels(key, extra=None):
    items = list(key) + list(extra or [])
    if not items:
        return ""
    return "{" + ",".join('%s="%s"' % (k, str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
                          for k, v in items) + "}"


def _fmt_value(value):
    return "+Inf" if value == float("inf") else repr(value)


class Metrics(object):
    def __init__(self, namespace="edgekit"):
        self.namespace = namespace
        self._lock = threading.Lock()
        self._help = {}
        self._type = {}
        self._values = {}       # name -> {labels_key: value}
        self._hist = {}         # name -> {labels_key: [bucket_counts, sum, count]}
        self._buckets = {}

    def _full(self, name):
        return name if name.startswith(self.namespace + "_") else "%s_%s" % (self.namespace, name)

    def describe(self, name, kind, help_text, buckets=None):
        name = self._full(name)
        with self._lock:
            self._help[name] = help_text
            self._type[name] = kind
            if kind == "histogram":
                self._buckets[name] = tuple(buckets or DEFAULT_BUCKETS)

    def inc(self, name, value=1, **labels):
        name = self._full(name)
        with self._lock:
            self._type.setdefault(name, "counter")
            series = self._values.setdefault(name, {})
            k = _key(labels)
            series[k] = series.get(k, 0) + value

    def set(self, name, value, **labels):
        name = self._full(name)
        with self._lock:
            self._type.setdefault(name, "gauge")
            self._values.setdefault(name, {})[_key(labels)] = value

    def observe(self, name, seconds, **labels):
        name = self._full(name)
        with self._lock:
            self._type.setdefault(name, "histogram")
            buckets = self._buckets.setdefault(name, DEFAULT_BUCKETS)
            series = self._hist.setdefault(name, {})
            k = _key(labels)
            entry = series.get(k)
            if entry is None:
                entry = series[k] = [[0] * len(buckets), 0.0, 0]
            for i, bound in enumerate(buckets):
                if seconds <= bound:
                    entry[0][i] += 1
            entry[1] += seconds
            entry[2] += 1

    def get(self, name, **labels):
        name = self._full(name)
        with self._lock:
            if name in self._hist:
                entry = self._hist[name].get(_key(labels))
                return entry[2] if entry else 0
            return self._values.get(name, {}).get(_key(labels), 0)

    def snapshot(self):
        """Plain dict for JSON: counters/gauges by name (labels joined), histogram counts and sums."""
        out = {}
        with self._lock:
            for name, series in self._values.items():
                for k, v in series.items():
                    out[name + _fmt_labels(k)] = v
            for name, series in self._hist.items():
                for k, (_, total, count) in series.items():
                    out[name + "_count" + _fmt_labels(k)] = count
                    out[name + "_sum" + _fmt_labels(k)] = total
        return out

    def render_prometheus(self):
        lines = []
        with self._lock:
            names = sorted(set(self._values) | set(self._hist))
            for name in names:
                kind = self._type.get(name, "untyped")
                if name in self._help:
                    lines.append("# HELP %s %s" % (name, self._help[name]))
                lines.append("# TYPE %s %s" % (name, kind))
                if name in self._hist:
                    buckets = self._buckets[name]
                    for k, (counts, total, count) in sorted(self._hist[name].items()):
                        for bound, c in zip(buckets, counts):
                            lines.append("%s_bucket%s %d" % (name, _fmt_labels(k, [("le", repr(bound))]), c))
                        lines.append("%s_bucket%s %d" % (name, _fmt_labels(k, [("le", "+Inf")]), count))
                        lines.append("%s_sum%s %s" % (name, _fmt_labels(k), repr(float(total))))
                        lines.append("%s_count%s %d" % (name, _fmt_labels(k), count))
                else:
                    for k, v in sorted(self._values[name].items()):
                        lines.append("%s%s %s" % (name, _fmt_labels(k), _fmt_value(v)))
        return "\n".join(lines) + "\n"
