"""The estimate's table regenerates (desktop side, torch): the figures in estimate_fit.json are the quoted
table, the stored features are what the architectures' ONNX graphs give (recomputed here for small models),
and the estimate of a network the fit has seen lands on its fitted value."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("torchvision")

from edgekit.desktop.export import estimate_fit as ef  # noqa: E402
from edgekit.profiler import estimate as est  # noqa: E402


def test_stored_figures_are_the_quoted_table():
    fit = est.load_fit()
    assert fit["figures"] == ef.figures()
    assert fit["sources"] == ef.SOURCES and fit["scaled_sources"] == sorted(ef.SCALED_SOURCES)
    assert all(f["kind"] == "engine" for f in fit["figures"])        # no end-to-end figure in the fit


@pytest.mark.parametrize("name,size", [("resnet18", 224), ("squeezenet1_0", 224), ("resnet18", 256)])
def test_stored_features_regenerate_from_the_architecture(name, size):
    costs = ef.export_costs(name, size, cache_dir=None)              # a fresh export, no cache
    feats = est.features(costs, "jetson-nano", "fp16")
    stored = est.load_fit()["model_features"]["%s@%d" % (name, size)]
    for key in est.FEATURES:
        assert feats[key] == pytest.approx(stored[key], rel=1e-5, abs=1e-6), key
    r = est.estimate(costs, "jetson-nano", "fp16")
    fitted = [f for f in est.load_fit()["loo"]["figures"] if (f["model"], f["input"]) == (name, size)][0]
    scale = est.load_fit()["source_scale"][fitted["source"]]
    assert r["latency_ms"] * scale == pytest.approx(fitted["fitted_ms"], rel=1e-3)


def test_se_block_adds_kernels_the_plain_resnet_does_not_have():
    """The SE-ResNet-50 built here (mmcls layout) has the ResNet-50's convolutions plus 16 SE blocks."""
    import torch

    se = ef.build("se_resnet50")
    plain = ef.build("resnet50")
    extra = sum(p.numel() for p in se.parameters()) - sum(p.numel() for p in plain.parameters())
    assert 2_000_000 < extra < 3_000_000                            # mmcls: 28.09 M vs 25.56 M parameters
    assert se(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
