"""edgekit export vs plain torch.onnx.export: node counts, parity and the TensorRT 8.2 verdict.

For each model (torchvision resnet18, mobilenet_v2, mobilenet_v3_small with random weights at 224x224;
the registry's tiny_cnn as an edgekit checkpoint at 64x64):
  - plain:   torch.onnx.export(model, x, opset_version=13, dynamo=False) with its defaults
             (its own constant folding on), the baseline a user gets by hand;
  - default: torch.onnx.export(model, x) with torch's default exporter (dynamo, when onnxscript is
             installed): the opset it picks, its node count, and whether TensorRT 8.2 could parse it;
  - edgekit: export_model(..., target="jetson-nano"): onnxslim on top, checks, parity, lint.
Claims: node-count ratio edgekit/plain per model (goal < 1: fewer layers for TensorRT to parse),
parity vs PyTorch over 3 inputs: max_abs (goal <= 1e-4) and max_rel = max_abs / max|output| (goal <= 1e-3;
random-init torchvision classifiers have tiny logits, so max_rel is the telling figure), lint ok for
jetson-nano.

    .venv/bin/python benchmarks/bench_export.py            # or: python benchmarks/run.py export
"""

import contextlib
import io
import os
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import claim, write  # noqa: E402

MODELS = (("resnet18", 224), ("mobilenet_v2", 224), ("mobilenet_v3_small", 224), ("tiny_cnn", 64))


def _source(name, size, work):
    """(SOURCE string for edgekit, nn.Module for the plain exports)."""
    import torch

    from edgekit.desktop.train.models import build_model

    if name != "tiny_cnn":
        import torchvision

        torch.manual_seed(0)
        return "torchvision:%s" % name, torchvision.models.get_model(name, weights=None).eval()
    from edgekit.meta import ModelMeta

    torch.manual_seed(0)
    model = build_model("tiny_cnn", num_classes=4, width=16)
    meta = ModelMeta(task="classification", labels=["a", "b", "c", "d"],
                     input={"name": "images", "shape": [1, 3, size, size]},
                     preprocess={"mean": [0.5] * 3, "std": [0.25] * 3}, decoder={"type": "classification"})
    path = os.path.join(work, "tiny_cnn.pt")
    torch.save({"format": "edgekit-checkpoint/1", "arch": {"name": "tiny_cnn", "kwargs": {"num_classes": 4,
                "width": 16}}, "state_dict": model.state_dict(), "meta": meta.to_dict(),
                "output_names": ["logits"], "recipe": {}, "epoch": 0, "metrics": {}}, path)
    return path, model.eval()


def _plain(model, x, **kwargs):
    import onnx
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, **kwargs)
    return onnx.load_from_string(buffer.getvalue())


def _default_export(model, x):
    """torch's default exporter (dynamo in torch >= 2.9); None with a reason when it cannot run here."""
    import onnx
    import torch

    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return None, "onnxscript not installed"
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp, \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            path = os.path.join(tmp, "m.onnx")
            torch.onnx.export(model, (x,), path)
            return onnx.load(path), None
    except Exception as exc:     # report, do not fail the benchmark
        return None, "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:120])


def _opset(model):
    return [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]


def measure(name, size, work):
    import torch

    from edgekit.desktop.export.run import export_model
    from edgekit.desktop.export.lint import lint_model

    source, model = _source(name, size, work)
    x = torch.randn(1, 3, size, size)
    plain = _plain(model, x, opset_version=13, dynamo=False)
    started = time.perf_counter()
    report = export_model(source, os.path.join(work, name + ".onnx"), target="jetson-nano", input_size=size,
                          log=lambda text: None)
    seconds = time.perf_counter() - started
    row = {"model": name, "input": size, "plain_nodes": len(plain.graph.node),
           "plain_lint_ok": lint_model(plain, "jetson-nano")["ok"],
           "edgekit_nodes_raw": report["nodes_before"], "edgekit_nodes": report["nodes_after"],
           "ratio": report["nodes_after"] / float(len(plain.graph.node)),
           "parity": report["parity"], "lint_ok": report["lint"]["ok"],
           "lint_problems": len(report["lint"]["problems"]), "export_s": round(seconds, 2)}
    default, why = _default_export(model, x)
    if default is not None:
        row.update(default_opset=_opset(default), default_nodes=len(default.graph.node),
                   default_lint_ok=lint_model(default, "jetson-nano")["ok"])
    else:
        row["default_note"] = why
    return row


def main():
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    rows, claims = [], []
    with tempfile.TemporaryDirectory() as work:
        for name, size in MODELS:
            row = measure(name, size, work)
            rows.append(row)
            max_abs = max(p["max_abs"] for p in row["parity"].values())
            max_rel = max(p["max_rel"] for p in row["parity"].values())
            print("%s: plain %d nodes, edgekit %d (raw %d), max_abs %.2g, lint %s, %.1f s%s" % (
                name, row["plain_nodes"], row["edgekit_nodes"], row["edgekit_nodes_raw"], max_abs,
                "ok" if row["lint_ok"] else "FAIL", row["export_s"],
                ", torch default exporter: opset %d, %d nodes, TensorRT 8.2 lint %s" % (
                    row["default_opset"], row["default_nodes"], "ok" if row["default_lint_ok"] else "FAIL")
                if "default_opset" in row else " (default exporter: %s)" % row.get("default_note")), flush=True)
            claims.append(claim("%s nodes edgekit/plain" % name, row["ratio"], "< 1.0", ok=row["ratio"] < 1.0))
            claims.append(claim("%s parity max_abs" % name, "%.2g" % max_abs, "<= 1e-4", ok=max_abs <= 1e-4))
            claims.append(claim("%s parity max_rel" % name, "%.2g" % max_rel, "<= 1e-3", ok=max_rel <= 1e-3))
            claims.append(claim("%s jetson-nano lint" % name, "ok" if row["lint_ok"] else "fail", "ok",
                                ok=row["lint_ok"]))
    write("export", {"rows": rows, "claims": claims, "torch": torch.__version__})


if __name__ == "__main__":
    main()
