"""Jetson Nano latency estimate: its leave-one-out error over every published pure-engine figure.

Rebuilds each figure's architecture (torchvision with random weights; SE-ResNet-50 as mmcls builds it),
counts its per-layer costs from the ONNX export (cached under runs/estimate/: the first run exports 17
networks, VGG's 500 MB among them, a few minutes on a 2-core box; later runs take seconds), fits the
estimate's coefficients and leaves each figure out in turn (edgekit.desktop.export.estimate_fit). Claims:

1. leave-one-out median |error| <= 10%;
2. leave-one-out worst |error| <= 35%;
3. the coefficients the device side reads (edgekit/profiler/estimate_fit.json) are the ones this run fits.

Figures and sources: docs/performance-estimate.md ("The figures it is fitted on") sections A-C, quoted in edgekit/desktop/export/estimate_fit.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import ROOT, claim, write  # noqa: E402


def main():
    import json

    from edgekit.desktop.export import estimate_fit
    from edgekit.profiler.estimate import FIT_FILE, format_loo

    data = estimate_fit.compute(os.path.join(ROOT, "runs", "estimate"),
                                log=lambda text: print("  " + text, file=sys.stderr, flush=True))
    print(format_loo(data), flush=True)
    loo = data["loo"]
    with open(FIT_FILE) as handle:
        stored = json.load(handle)
    same = estimate_fit._close(stored["coefficients"], data["coefficients"])
    claims = [
        claim("Nano FP16 estimate, leave-one-out median |error| over %d figures" % len(loo["figures"]),
              loo["median_abs_error_pct"], "<= 10%", unit="%", ok=loo["median_abs_error_pct"] <= 10.0),
        claim("Nano FP16 estimate, leave-one-out worst |error|", loo["worst_abs_error_pct"], "<= 35%", unit="%",
              ok=loo["worst_abs_error_pct"] <= 35.0),
        claim("stored coefficients (edgekit/profiler/estimate_fit.json) equal this run's fit", "yes" if same else "no",
              "yes", ok=same),
    ]
    write("estimate", {"claims": claims, "fit": data})


if __name__ == "__main__":
    main()
