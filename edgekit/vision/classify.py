"""Classification decoder: logits or probabilities -> top-k labels.

It runs once per frame right after inference, when the CPU's caches hold the model rather than this
code, so it makes few NumPy calls: top-k by ``partition`` instead of sorting every class, and the
softmax of the k winners only (its denominator is the one full pass).
"""

import numpy as np


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def decode(outputs, meta, infos=None, top_k=None):
    """First output (N x classes) -> one result per image:
    {"task": "classification", "top": [{"index", "label", "score"}...]}, best first (ties: lower index)."""
    params = meta.decoder
    logits = np.asarray(list(outputs.values())[0] if isinstance(outputs, dict) else outputs)
    logits = logits.reshape(logits.shape[0], -1)
    if logits.dtype != np.float32:
        logits = logits.astype(np.float32)
    classes = logits.shape[1]
    k = min(int(top_k or params.get("top_k", 5)), classes)
    probabilities = bool(params.get("softmax_applied"))
    labels = meta.labels
    results = []
    for row in logits:
        if k < classes:       # every class scoring at least the k-th best (more than k on a tie)
            index = np.flatnonzero(row >= np.partition(row, classes - k)[classes - k])
        else:
            index = np.arange(classes)
        values = row[index]
        order = np.lexsort((index, -values))[:k]      # best first; equal scores by class index
        index, values = index[order], values[order]
        if probabilities:
            scores = values.tolist()
        else:
            best = values[0]
            scores = (np.exp(values - best) / np.exp(row - best).sum()).tolist()
        results.append({"task": "classification",
                        "top": [{"index": i, "label": _label(labels, i), "score": s}
                                for i, s in zip(index.tolist(), scores)]})
    return results


def _label(labels, index):
    return labels[index] if 0 <= index < len(labels) else str(index)
