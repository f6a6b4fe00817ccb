"""Bundle verify/install: one streaming pass vs the usual two (extract, then hash).

A 32 MB model (8M float32 weights, random: real weights barely compress) bundled for x86-cpu.
Measured side by side, alternating, 3 rounds, medians:
  - floor:    gunzip + sha256 of every byte, nothing written (the least any check can cost);
  - two-pass: tarfile.extractall into a directory, then sha256 every extracted file (what a
              hand-written install script does; on Python 3.6 extractall has no safety filters);
  - edgekit:  verify_bundle(path, dest=DIR): safety checks, hashes and unpacking in one pass.
Claims: edgekit / two-pass time (goal <= 1.0: one pass is no slower than two, while also checking
safety), edgekit / floor (goal <= 1.5: the checks and the write cost little over reading the bundle).
Also reported: time to make the bundle and to install it (verify + unpack + switch), MB/s.

    .venv/bin/python benchmarks/bench_bundle.py            # or: python benchmarks/run.py bundle
"""

import gzip
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))     # the tests' tiny classifier builder

from _common import alternate, claim, median, write  # noqa: E402
from standins.models import tiny_classifier  # noqa: E402

WEIGHTS = 8 * 1024 * 1024          # float32 -> 32 MiB


def _model(path):
    import numpy as np

    rows = WEIGHTS // 3
    w = np.random.default_rng(0).standard_normal((3, rows)).astype(np.float32)
    tiny_classifier(path, labels=["a"], conv=0, head="matmul", weights=w, ir_version=None, meta_batch=1)
    return os.path.getsize(path)


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _floor(bundle):
    digest = hashlib.sha256()
    with gzip.open(bundle, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def _two_pass(bundle, work):
    dest = tempfile.mkdtemp(dir=work)
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(dest)
    for dirpath, _, files in os.walk(dest):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as handle:
                hashlib.sha256(handle.read()).hexdigest()
    shutil.rmtree(dest)


def _edgekit(bundle, work):
    from edgekit.bundle import verify_bundle

    dest = tempfile.mkdtemp(dir=work)
    verify_bundle(bundle, dest=dest)
    shutil.rmtree(dest)


def main():
    from edgekit.bundle import install
    from edgekit.desktop.bundle_make import make_bundle

    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "big.onnx")
        size_mb = _model(model) / 1e6
        bundle = os.path.join(work, "big.tar.gz")
        make_s = _timed(lambda: make_bundle(model, bundle, target="x86-cpu"))
        results = alternate({"floor": lambda: _timed(lambda: _floor(bundle)),
                             "two_pass": lambda: _timed(lambda: _two_pass(bundle, work)),
                             "edgekit": lambda: _timed(lambda: _edgekit(bundle, work))}, repeats=3)
        install_s = _timed(lambda: install(bundle, os.path.join(work, "root"), log=lambda m: None))
    med = dict((k, median(v)) for k, v in results.items())
    print("model %.1f MB: make %.2f s, floor %.2f s, two-pass %.2f s, edgekit verify+unpack %.2f s (%.0f MB/s), "
          "install %.2f s" % (size_mb, make_s, med["floor"], med["two_pass"], med["edgekit"],
                              size_mb / med["edgekit"], install_s))
    claims = [claim("verify+unpack edgekit/two-pass", med["edgekit"] / med["two_pass"], "<= 1.0",
                    ok=med["edgekit"] <= med["two_pass"]),
              claim("verify+unpack edgekit/floor", med["edgekit"] / med["floor"], "<= 1.5",
                    ok=med["edgekit"] <= 1.5 * med["floor"])]
    write("bundle", {"model_mb": size_mb, "make_s": make_s, "install_s": install_s, "seconds": results,
                     "median_s": med, "claims": claims})


if __name__ == "__main__":
    main()
