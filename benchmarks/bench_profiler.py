"""Profiler benchmark (one run, docs/design/measurement.md):

1. profiler-reported p50 vs a bare ``session.run`` loop over the very same ONNX Runtime session,
   alternating A/B, median of repeats (goal: within 3%): the profiler adds no overhead you can see.
(The Jetson Nano estimate's error is measured by bench_estimate.py.)

Model: torchvision mobilenet_v2 (the daemon-sized model; random weights are fine for speed).
"""

import io
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import alternate, claim, median, write  # noqa: E402

REPEATS = 25         # short alternating blocks: on a shared, loaded box both sides see the same load
ITERS = 40           # per side per block


def export(name, path=None):
    import torch
    import torchvision

    model = getattr(torchvision.models, name)().eval()
    target = path or io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), target, dynamo=False, opset_version=13,
                          input_names=["images"], output_names=["logits"])
    return target


def bare_p50(session, feed, iters):
    """The reference: time session.run itself, nothing else."""
    samples = []
    for _ in range(iters):
        t = time.perf_counter()
        session.run(None, feed)
        samples.append((time.perf_counter() - t) * 1000.0)
    samples.sort()
    return samples[len(samples) // 2]


def overhead_claim():
    from edgekit.profiler.run import profile_runner
    from edgekit.runners import open_runner

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mobilenet_v2.onnx")
        export("mobilenet_v2", path)
        with open_runner("onnxruntime", path, threads=1) as runner:
            feed = runner.random_feed()
            session = runner.session
            for _ in range(30):                    # shared warm-up of the session
                session.run(None, feed)

            def profiler():
                result = profile_runner(runner, warmup_ms=0, duration_s=0.0, min_iters=ITERS, telemetry=False,
                                        log=lambda m: None)
                return result["latency_ms"]["p50"]

            runs = alternate({"profiler": profiler, "bare": lambda: bare_p50(session, feed, ITERS)}, REPEATS)
    ratios = [a / b for a, b in zip(runs["profiler"], runs["bare"])]
    ratio = median(ratios)
    c = claim("profiler p50 / bare session.run p50 (mobilenet_v2, 1 thread, median of %d back-to-back pairs)"
              % REPEATS, ratio, "within 3% (0.97..1.03)", ok=0.97 <= ratio <= 1.03)
    print("  context: profiler p50 median %.3f ms, bare p50 median %.3f ms; pairwise ratios min %.3f max %.3f; "
          "load average %.1f" % (median(runs["profiler"]), median(runs["bare"]), min(ratios), max(ratios),
                                 os.getloadavg()[0]))
    return c, runs


def loop_overhead_us():
    """What the profiler's loop adds per call, measured on a no-op (runner wrapper excluded)."""
    from edgekit.profiler.run import measure

    calls = 20000
    t = time.perf_counter()
    for _ in range(calls):
        time.perf_counter()
        time.perf_counter()
    bare = (time.perf_counter() - t) / calls
    out = measure(lambda: None, warmup_ms=0, duration_s=0.0, min_iters=calls)
    per_call = out["wall_s"] / calls
    value = (per_call - bare) * 1e6
    print("  context: profiler loop bookkeeping %.2f us per call (vs two perf_counter calls)" % value)
    return value


def main():
    overhead, runs = overhead_claim()
    loop_us = loop_overhead_us()
    write("profiler", {"claims": [overhead], "overhead_runs_ms": runs,
                       "loop_overhead_us": loop_us, "repeats": REPEATS, "iterations_per_side": ITERS,
                       "load_average": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
