"""The calibrated estimate without torch or onnx (device side, Python 3.6): the stored coefficients are the fit
of the stored figures and features, the leave-one-out errors recompute, and the method's parts behave."""

import copy

import pytest

from edgekit.errors import ConfigError
from edgekit.profiler import estimate as est


@pytest.fixture(scope="module")
def fit():
    return est.load_fit()


def test_stored_coefficients_are_the_fit_of_the_stored_table(fit):
    coef, scale = est.refit(fit)
    for name in est.FEATURES:
        assert coef[name] == pytest.approx(fit["coefficients"][name], rel=1e-4, abs=1e-9), name
    assert scale == pytest.approx(fit["source_scale"], rel=1e-4)
    assert all(v >= 0 for v in coef.values())                          # physical: rates and times
    assert coef["overhead"] > 0 and coef["launch"] > 0 and coef["memory"] > 0
    assert 0.5 < coef["spatial"] < coef["other"]                       # 3x3 convs reach more of the peak


def test_leave_one_out_recomputes_and_meets_the_goal(fit):
    rows = [(fit["model_features"]["%s@%d" % (f["model"], f["input"])], f["ms"], f["source"])
            for f in fit["figures"] if f["kind"] == "engine"]
    assert len(rows) == len(fit["loo"]["figures"]) >= 20
    loo = est.leave_one_out(rows, fit["scaled_sources"])
    for (pred, err), stored in zip(loo, fit["loo"]["figures"]):
        assert 100 * err == pytest.approx(stored["loo_error_pct"], abs=0.02)
        assert pred == pytest.approx(stored["loo_ms"], abs=0.002)
    errors = sorted(abs(e) for _p, e in loo)
    assert max(errors) * 100 == pytest.approx(fit["loo"]["worst_abs_error_pct"], abs=0.02)
    assert fit["loo"]["median_abs_error_pct"] <= 10.0 and fit["loo"]["worst_abs_error_pct"] <= 35.0
    # every figure says where it comes from
    assert set(f["source"] for f in fit["figures"]) <= set(fit["sources"])
    assert "estimate_fit" in fit["regenerate"]


def test_a_figure_left_out_is_not_used():
    """Leave-one-out must not see the figure it predicts: change it and its prediction stays."""
    fit = est.load_fit()
    rows = [(fit["model_features"]["%s@%d" % (f["model"], f["input"])], f["ms"], f["source"])
            for f in fit["figures"] if f["kind"] == "engine"]
    changed = copy.deepcopy(rows)
    changed[0] = (changed[0][0], changed[0][1] * 3, changed[0][2])
    assert est.leave_one_out(changed)[0][0] == pytest.approx(est.leave_one_out(rows)[0][0])


def test_nnls_is_exact_and_non_negative():
    # b = 2 a0 + 0 a1 - 1 a2 (a negative solution): NNLS must return the best non-negative one
    a = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [2, 0, 1]]
    b = [1.0, 0.0, 2.0, 3.0]
    x = est.nnls(a, b)
    assert all(v >= 0 for v in x)
    import numpy as np

    best = min(float(np.sum((np.asarray(a, float).dot(np.asarray(c)) - b) ** 2))
               for c in [[p, q, r] for p in np.linspace(0, 3, 31) for q in np.linspace(0, 1, 11)
                         for r in np.linspace(0, 1, 11)])
    assert float(np.sum((np.asarray(a, float).dot(x) - b) ** 2)) <= best + 1e-9


def layer(name, op, flops, elems_in, elems_out, params=0, inputs=(), outputs=None, **extra):
    d = {"name": name, "op": op, "flops": flops, "params": params, "input_elements": elems_in,
         "output_elements": elems_out, "inputs": list(inputs), "outputs": outputs or [name]}
    d.update(extra)
    return d


def conv(name, src, flops=1e6, n=1000, k=3, stride=1, group=1, params=100):
    return layer(name, "Conv", flops, n, n, params, [src], kernel=[k, k], stride=[stride, stride], group=group)


def test_kernels_fuse_like_tensorrt():
    costs = [
        conv("c1", "x"), layer("bn1", "BatchNormalization", 2000, 1000, 1000, inputs=["c1"]),
        layer("r1", "Relu", 1000, 1000, 1000, inputs=["bn1"]),
        conv("c2", "r1"), layer("add", "Add", 1000, 2000, 1000, inputs=["c2", "r1"]),     # residual: fused
        layer("relu2", "Relu", 1000, 1000, 1000, inputs=["add"]),
        layer("cat", "Concat", 0, 2000, 2000, inputs=["relu2", "r1"]),                    # written in place
        layer("bn3", "BatchNormalization", 4000, 2000, 2000, inputs=["cat"]),             # standalone
        layer("r3", "Relu", 2000, 2000, 2000, inputs=["bn3"]),                            # joins bn3's kernel
        layer("gap", "GlobalAveragePool", 2000, 2000, 20, inputs=["r3"]),
        layer("mul", "Mul", 2000, 2020, 2000, inputs=["r3", "gap"]),                      # broadcast: own kernel
    ]
    kerns = est.kernels(costs)
    assert [k["name"] for k in kerns] == ["c1", "c2", "bn3", "gap", "mul"]
    assert kerns[0]["members"] == ["c1", "bn1", "r1"] and kerns[1]["members"] == ["c2", "add", "relu2"]
    assert kerns[1]["elements"] == 1000 + 1000 + 1000 + 100           # conv in/out + the residual read + weights
    assert kerns[2]["members"] == ["bn3", "r3"] and kerns[2]["class"] == "memory"
    assert [k["class"] for k in kerns[:2]] == ["spatial", "spatial"]
    # r3 has two readers (gap, mul): neither fuses into bn3's kernel
    assert est.kernel_class(conv("g", "x", group=4)) == "grouped"
    assert est.kernel_class(conv("s", "x", stride=2)) == "other"
    assert est.kernel_class(conv("p", "x", k=1)) == "other"
    assert est.kernel_class(layer("fc", "Gemm", 1, 1, 1)) == "other"


def test_estimate_adds_the_kernel_terms():
    fit = est.load_fit()
    c = fit["coefficients"]
    fc = layer("fc", "Gemm", 2e6, 1000, 1000, params=1000 * 1000)
    r = est.estimate([conv("c1", "x", flops=472e6), fc], "jetson-nano", "fp16")
    conv_ms = c["launch"] + c["spatial"] * 1.0 + c["memory"] * 1000.0 * 2 * 2100 / 25.6e9
    fc_ms = c["launch"] + c["other"] * 1000.0 * 2e6 / 472e9 + c["memory"] * 1000.0 * 2 * 1002000 / 25.6e9
    by = dict((x["name"], x) for x in r["layers"])
    assert by["c1"]["ms"] == pytest.approx(conv_ms) and by["c1"]["bound"] == "compute"
    assert by["fc"]["ms"] == pytest.approx(fc_ms) and by["fc"]["bound"] == "memory"      # streams its weights
    assert r["latency_ms"] == pytest.approx(c["overhead"] + conv_ms + fc_ms)
    assert r["validated"] and "leave-one-out" in r["error_note"] and "unvalidated" not in r["error_note"]


def test_targets_without_figures_say_unvalidated_and_bad_input_is_a_user_error():
    one = [conv("c1", "x")]
    other = est.estimate(one, "jetson-orin-nano", "fp16")
    assert not other["validated"] and "unvalidated" in other["error_note"]
    assert "unvalidated" in est.estimate(one, "jetson-nano", "fp32")["error_note"]
    with pytest.raises(ConfigError, match="x86-cpu"):
        est.estimate(one, "x86-cpu")
    with pytest.raises(ConfigError, match="int8"):
        est.estimate(one, "jetson-nano", "int8")
    with pytest.raises(ConfigError, match="precision"):
        est.estimate(one, "jetson-nano", "bf16")
