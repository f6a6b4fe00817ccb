"""Augmentations on the uint8 BGR image (before the shared Preprocessor), boxes kept in step.

A recipe's ``augment:`` mapping names the operations; each is one small function
``op(image, boxes, rng, value) -> (image, boxes)`` where boxes are Nx5 [cls, x1, y1, x2, y2] in image
pixels (or None for classification). ``build_augment(spec)`` returns the composed callable or None.
"""

import numpy as np

from edgekit.errors import ConfigError


def _hflip(image, boxes, rng, p):
    if rng.random() >= p:
        return image, boxes
    image = np.ascontiguousarray(image[:, ::-1])
    if boxes is not None and len(boxes):
        w = image.shape[1]
        boxes = boxes.copy()
        boxes[:, 1], boxes[:, 3] = w - boxes[:, 3], w - boxes[:, 1]
    return image, boxes


def _vflip(image, boxes, rng, p):
    if rng.random() >= p:
        return image, boxes
    image = np.ascontiguousarray(image[::-1])
    if boxes is not None and len(boxes):
        h = image.shape[0]
        boxes = boxes.copy()
        boxes[:, 2], boxes[:, 4] = h - boxes[:, 4], h - boxes[:, 2]
    return image, boxes


def _brightness(image, boxes, rng, amount):
    delta = rng.uniform(-amount, amount) * 255.0
    return np.clip(image.astype(np.float32) + delta, 0, 255).astype(np.uint8), boxes


def _contrast(image, boxes, rng, amount):
    factor = rng.uniform(1.0 - amount, 1.0 + amount)
    img = image.astype(np.float32)
    mean = img.mean()
    return np.clip((img - mean) * factor + mean, 0, 255).astype(np.uint8), boxes


def _affine(image, boxes, rng, value):
    """Random zoom (scale range) and shift (translate fraction), same-size output, boxes clipped."""
    import cv2

    lo, hi, shift = value
    h, w = image.shape[:2]
    s = rng.uniform(lo, hi)
    tx, ty = rng.uniform(-shift, shift, size=2) * np.array([w, h])
    m = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]], dtype=np.float32)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(114, 114, 114))      # reflecting would mirror unlabelled objects in
    if boxes is None or not len(boxes):
        return out, boxes
    b = boxes.copy()
    b[:, [1, 3]] = b[:, [1, 3]] * s + m[0, 2]
    b[:, [2, 4]] = b[:, [2, 4]] * s + m[1, 2]
    area = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, w)
    b[:, [2, 4]] = np.clip(b[:, [2, 4]], 0, h)
    kept = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    return out, b[kept > 0.6 * np.maximum(area, 1e-6)]


def _affine_value(spec):
    scale = spec.get("scale", [1.0, 1.0])
    if isinstance(scale, (int, float)):
        scale = [1.0 - scale, 1.0 + scale]
    return (float(scale[0]), float(scale[1]), float(spec.get("translate", 0.0)))


OPS = {                                  # name -> (function, default value, takes part of affine)
    "hflip": _hflip,
    "vflip": _vflip,
    "brightness": _brightness,
    "contrast": _contrast,
}
AFFINE_KEYS = ("scale", "translate")


def build_augment(spec):
    """Recipe ``augment:`` mapping -> callable(image, boxes, rng) -> (image, boxes), or None."""
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise ConfigError("recipe augment: must be a mapping like {hflip: 0.5, brightness: 0.2}")
    unknown = [k for k in spec if k not in OPS and k not in AFFINE_KEYS]
    if unknown:
        raise ConfigError("unknown augmentation %r" % unknown[0],
                          hint="use: %s" % ", ".join(sorted(list(OPS) + list(AFFINE_KEYS))))
    steps = []
    if any(k in spec for k in AFFINE_KEYS):
        value = _affine_value(spec)
        if value != (1.0, 1.0, 0.0):
            steps.append((_affine, value))
    steps.extend((OPS[k], float(v)) for k, v in spec.items() if k in OPS and float(v) > 0)
    if not steps:
        return None

    def augment(image, boxes, rng):
        for fn, value in steps:
            image, boxes = fn(image, boxes, rng, value)
        return image, boxes

    return augment
