"""Augmentations on the uint8 BGR image (before the shared Preprocessor), boxes kept in step.

A recipe's ``augment:`` mapping names the operations; each is one small function
``op(image, boxes, rng, value) -> (image, boxes)`` where boxes are Nx5 [cls, x1, y1, x2, y2] in image
pixels (or None for classification). ``build_augment(spec)`` returns the composed callable or None.

  hflip, vflip: P            flip with probability P
  brightness, contrast: A    photometric jitter by up to +-A
  hsv: [H, S, V]             hue / saturation / value jitter (fractions, as YOLO's hsv_h/s/v)
  scale: [LO, HI], translate: F, min_visible: V
                             random zoom (scale < 1 shrinks, > 1 crops in) and shift; boxes are clipped
                             to the image and dropped when less than V (default 0.6) of their area
                             stays visible, or when thinner than 2 px
  mosaic: P, mosaic_off_epochs: N
                             (detection) four images in one at the model's size with probability P,
                             switched off for the last N epochs (default 2) so training ends on whole
                             images; ``mosaic: auto`` = 1.0 when training from scratch, off with --weights.
                             Handled by the dataset (it needs four images): ``mosaic(images, boxes, ...)``.
The model's own letterbox (the shared Preprocessor) then maps the result to the input size.
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


def _hsv(image, boxes, rng, value):
    """Hue, saturation and value gains drawn in 1 +- value (hue as a fraction of the colour wheel)."""
    import cv2

    gains = rng.uniform(-1, 1, size=3) * np.asarray(value, dtype=np.float64) + 1.0
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    merged = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(merged, cv2.COLOR_HSV2BGR), boxes


def clip_boxes(boxes, w, h, min_visible=0.6, min_side=2.0):
    """Boxes Nx5 moved by a geometric op (their pre-clip area is what they had) -> clipped to the image,
    keeping only those with at least ``min_visible`` of their area inside and both sides >= min_side."""
    b = boxes.copy()
    area = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, w)
    b[:, [2, 4]] = np.clip(b[:, [2, 4]], 0, h)
    kept = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    ok = (kept >= min_visible * np.maximum(area, 1e-6)) & (b[:, 3] - b[:, 1] >= min_side) & \
        (b[:, 4] - b[:, 2] >= min_side)
    return b[ok]


def _affine(image, boxes, rng, value):
    """Random zoom (scale range) and shift (translate fraction), same-size output, boxes clipped."""
    import cv2

    lo, hi, shift, min_visible = value
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
    return out, clip_boxes(b, w, h, min_visible)


def _affine_value(spec):
    scale = spec.get("scale", [1.0, 1.0])
    if isinstance(scale, (int, float)):
        scale = [1.0 - scale, 1.0 + scale]
    return (float(scale[0]), float(scale[1]), float(spec.get("translate", 0.0)), float(spec.get("min_visible", 0.6)))


OPS = {                                  # name -> (function, default value, takes part of affine)
    "hflip": _hflip,
    "vflip": _vflip,
    "brightness": _brightness,
    "contrast": _contrast,
    "hsv": _hsv,
}
AFFINE_KEYS = ("scale", "translate", "min_visible")
DATASET_KEYS = ("mosaic", "mosaic_off_epochs")      # handled by the dataset (see mosaic())


def build_augment(spec):
    """Recipe ``augment:`` mapping -> callable(image, boxes, rng) -> (image, boxes), or None."""
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise ConfigError("recipe augment: must be a mapping like {hflip: 0.5, brightness: 0.2}")
    unknown = [k for k in spec if k not in OPS and k not in AFFINE_KEYS and k not in DATASET_KEYS]
    if unknown:
        raise ConfigError("unknown augmentation %r" % unknown[0],
                          hint="use: %s" % ", ".join(sorted(list(OPS) + list(AFFINE_KEYS) + list(DATASET_KEYS))))
    mosaic_p = spec.get("mosaic", 0)
    if mosaic_p != "auto" and not (isinstance(mosaic_p, (int, float)) and 0 <= mosaic_p <= 1):
        raise ConfigError("augment mosaic must be a probability 0..1 or auto, got %r" % (mosaic_p,))
    steps = []
    if any(k in spec for k in AFFINE_KEYS):
        value = _affine_value(spec)
        if value[:3] != (1.0, 1.0, 0.0):
            steps.append((_affine, value))
    for k, v in spec.items():
        if k == "hsv":
            if not (isinstance(v, (list, tuple)) and len(v) == 3):
                raise ConfigError("augment hsv must be [hue, saturation, value] fractions, got %r" % (v,))
            if any(float(x) > 0 for x in v):
                steps.append((_hsv, tuple(float(x) for x in v)))
        elif k in OPS and float(v) > 0:
            steps.append((OPS[k], float(v)))
    if not steps:
        return None

    def augment(image, boxes, rng):
        for fn, value in steps:
            image, boxes = fn(image, boxes, rng, value)
        return image, boxes

    return augment


def mosaic_probability(spec, from_scratch):
    """The recipe's mosaic setting -> probability (``auto``: on from scratch, off when fine-tuning)."""
    value = (spec or {}).get("mosaic", 0)
    if value == "auto":
        return 1.0 if from_scratch else 0.0
    return float(value or 0.0)


def mosaic(images, boxes, out_hw, rng, min_visible=0.6):
    """Four images (uint8 BGR) and their boxes (Nx5 [cls, x1, y1, x2, y2] px) -> one out_hw image.

    Each image is resized to fit the output size (aspect kept) and placed in one quadrant around a random
    centre of a 2x canvas (YOLO's layout); the output is the canvas' middle window, so objects keep about
    the scale the letterbox gives them and each image shows a part. Boxes move with their image and are
    clipped (``clip_boxes``) to its visible part of the window.
    """
    import cv2

    oh, ow = int(out_hw[0]), int(out_hw[1])
    canvas = np.full((2 * oh, 2 * ow, 3), 114, dtype=np.uint8)
    xc = int(rng.uniform(0.5 * ow, 1.5 * ow))
    yc = int(rng.uniform(0.5 * oh, 1.5 * oh))
    out_boxes = []
    for k, (img, b) in enumerate(zip(images, boxes)):
        h, w = img.shape[:2]
        r = min(oh / float(h), ow / float(w))
        nw, nh = max(1, int(round(w * r))), max(1, int(round(h * r)))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x0 = xc - nw if k in (0, 2) else xc              # 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
        y0 = yc - nh if k in (0, 1) else yc
        cx1, cy1 = max(x0, 0), max(y0, 0)
        cx2, cy2 = min(x0 + nw, 2 * ow), min(y0 + nh, 2 * oh)
        canvas[cy1:cy2, cx1:cx2] = img[cy1 - y0:cy2 - y0, cx1 - x0:cx2 - x0]
        if b is not None and len(b):
            moved = np.asarray(b, dtype=np.float32).copy()
            moved[:, [1, 3]] = moved[:, [1, 3]] * (nw / float(w)) + x0
            moved[:, [2, 4]] = moved[:, [2, 4]] * (nh / float(h)) + y0
            # what of this image is visible: its own placed rectangle, inside the output window
            wx1, wy1 = max(cx1, ow // 2), max(cy1, oh // 2)
            wx2, wy2 = min(cx2, ow // 2 + ow), min(cy2, oh // 2 + oh)
            if wx2 <= wx1 or wy2 <= wy1:
                continue
            moved[:, [1, 3]] -= wx1
            moved[:, [2, 4]] -= wy1
            kept = clip_boxes(moved, wx2 - wx1, wy2 - wy1, min_visible)
            kept[:, [1, 3]] += wx1 - ow // 2
            kept[:, [2, 4]] += wy1 - oh // 2
            out_boxes.append(kept)
    window = np.ascontiguousarray(canvas[oh // 2:oh // 2 + oh, ow // 2:ow // 2 + ow])
    merged = np.concatenate(out_boxes) if out_boxes else np.zeros((0, 5), dtype=np.float32)
    return window, merged.astype(np.float32)
