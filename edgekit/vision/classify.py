"""Classification decoder: logits or probabilities -> top-k labels."""

import numpy as np


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def decode(outputs, meta, infos=None, top_k=None):
    """First output (N x classes) -> one result per image:
    {"task": "classification", "top": [{"index", "label", "score"}...]}."""
    params = meta.decoder
    k = int(top_k or params.get("top_k", 5))
    logits = np.asarray(list(outputs.values())[0] if isinstance(outputs, dict) else outputs)
    logits = logits.reshape(logits.shape[0], -1).astype(np.float32)
    probs = logits if params.get("softmax_applied") else softmax(logits, axis=1)
    k = min(k, probs.shape[1])
    results = []
    for row in probs:
        order = np.argsort(-row)[:k]
        results.append({
            "task": "classification",
            "top": [{"index": int(i), "label": _label(meta.labels, i), "score": float(row[i])} for i in order],
        })
    return results


def _label(labels, index):
    return labels[index] if 0 <= index < len(labels) else str(index)
