"""Which layers suffer most from INT8, and how many to keep in FP32.

Method (one calibration, reused): quantize ONE candidate node at a time (Conv, Gemm, MatMul; the
calibration ranges come from the cache, so each trial only rewrites the graph) and measure the
relative output error ||q - r||^2 / ||r||^2 against the FP32 model on a few images (at most
``SENSITIVITY_IMAGES``). Cost: one small quantization and a few inferences per candidate node,
independent of the size of the validation set. Nodes are ranked by that error, worst first.

``auto_exclude`` then keeps the worst k in FP32 for k = 1, 2, ... (each trial a full quantization
and evaluation) until the accuracy drop is within the limit, and returns the smallest such set.
"""

from edgekit.progress import progress, say

CANDIDATE_OPS = ("Conv", "Gemm", "MatMul")
SENSITIVITY_IMAGES = 16


def candidates(model_proto, exclude=()):
    """Names of the quantizable compute nodes, in graph order, minus those already excluded."""
    skip = set(exclude)
    return [(n.name, n.op_type) for n in model_proto.graph.node if n.op_type in CANDIDATE_OPS and n.name
            and n.name not in skip]


def rank(nodes, quantize_only, score, show=True):
    """``quantize_only(node) -> model path`` with just that node quantized; ``score(path) -> error``.
    Returns [{"node", "op", "score"}] worst first."""
    ranked = []
    with progress(total=len(nodes), desc="sensitivity", disable=None if show else True) as bar:
        for name, op in nodes:
            ranked.append({"node": name, "op": op, "score": score(quantize_only(name))})
            bar.update(1)
    ranked.sort(key=lambda r: -r["score"])
    return ranked


def auto_exclude(ranked, try_excluding, max_drop):
    """Grow the FP32 set worst-first until ``try_excluding(names) -> (drop_pp, trial)`` is within
    ``max_drop``. Returns (names, drop_pp, trial, steps) -- names is None when even all fail."""
    steps = []
    names = []
    for entry in ranked:
        names = names + [entry["node"]]
        drop, trial = try_excluding(names)
        steps.append({"excluded": list(names), "drop_pp": drop})
        say("auto-exclude: %d node%s in FP32 (%s) -> drop %.2f pp" % (
            len(names), "" if len(names) == 1 else "s", entry["node"], drop))
        if drop <= max_drop:
            return names, drop, trial, steps
    return None, None, None, steps
