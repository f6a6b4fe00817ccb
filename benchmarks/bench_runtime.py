"""ONNX Runtime vs PyTorch eager latency on the demo models (Foundation issue).

One run, side by side: the two runtimes alternate (A, B, A, B ...) on the same input, each
repetition timing a burst of inferences; the claim is the median of the per-repetition ratios.
Models: the demo's detector (shapes-detector) and classifier (shapes-classifier), random weights
(speed does not depend on the weights), exported with `edgekit export` for x86-cpu.
"""

import tempfile
import time

import numpy as np

from _common import claim, export_recipe, median, write

REPEATS = 7
BURST_S = 0.4


def burst(fn):
    """Mean ms per call over a burst of at least BURST_S seconds."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= BURST_S and n >= 5:
            return elapsed * 1000.0 / n


def bench_recipe(name, workdir):
    import torch

    from edgekit.runners import open_runner

    model, meta, onnx_path = export_recipe(name, workdir, ["c%d" % i for i in range(5)])
    h, w = meta.input_hw
    x = np.random.RandomState(0).standard_normal((1, 3, h, w)).astype(np.float32)
    xt = torch.from_numpy(x)
    threads = torch.get_num_threads()
    with open_runner("onnxruntime", onnx_path, threads=threads) as runner, torch.inference_mode():
        feed = {runner.input_specs()[0].name: x}
        for _ in range(10):
            runner.infer(feed, check=False)
            model(xt)
        times = {"onnxruntime": [], "torch": []}
        for _ in range(REPEATS):
            times["onnxruntime"].append(burst(lambda: runner.infer(feed, check=False)))
            times["torch"].append(burst(lambda: model(xt)))
    ratios = [t / o for t, o in zip(times["torch"], times["onnxruntime"])]
    return {"model": name, "threads": threads, "input": [1, 3, h, w], "ms": times, "ratios": ratios,
            "speedup": median(ratios)}


def main():
    results = []
    claims = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in ("shapes-detector", "shapes-classifier"):
            r = bench_recipe(name, workdir)
            results.append(r)
            claims.append(claim("runtime.%s.ort_vs_torch_eager" % name, r["speedup"], "> 1.0x (ORT faster)",
                                unit="x", ok=r["speedup"] > 1.0))
            print("  context: ORT p50-of-bursts %.3f ms, torch eager %.3f ms, %d threads" % (
                median(r["ms"]["onnxruntime"]), median(r["ms"]["torch"]), r["threads"]))
    write("runtime", {"claims": claims, "results": results})


if __name__ == "__main__":
    main()
