"""Drawing results on frames: boxes with labels for detection, a top-1 banner for classification.

``annotate(frame, result, labels=None, caption=None)`` returns an annotated copy; the input frame is
never modified (the inference loop may still be using it). ``result`` is a decoder result
(``edgekit.vision.decoders``); ``labels`` overrides the label names carried in the result.
"""

import numpy as np

# BGR, distinct and readable on both dark and light scenes (class id picks the colour)
PALETTE = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
)


def color_for(index):
    return PALETTE[int(index) % len(PALETTE)]


def _text_color(bg):
    b, g, r = bg
    return (0, 0, 0) if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else (255, 255, 255)


def _name(item, labels):
    index = int(item.get("index", -1))
    if labels is not None and 0 <= index < len(labels):
        return labels[index]
    return item.get("label", str(index))


def _scale(frame):
    """Line thickness and font scale that stay readable from 320 to 1920 pixels wide."""
    side = max(frame.shape[0], frame.shape[1])
    return max(1, int(round(side / 400.0))), max(0.4, side / 1200.0)


def _label_box(cv2, image, text, x, y, color, font_scale, thickness):
    """Filled label background with text, placed above (x, y) or inside the frame if no room."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, font_scale, max(1, thickness - 1))
    x = int(min(max(x, 0), max(image.shape[1] - tw - 4, 0)))
    top = y - th - base - 4
    if top < 0:
        top = y
    top = int(min(max(top, 0), max(image.shape[0] - th - base - 4, 0)))
    cv2.rectangle(image, (x, top), (x + tw + 4, top + th + base + 4), color, -1)
    cv2.putText(image, text, (x + 2, top + th + 2), font, font_scale, _text_color(color),
                max(1, thickness - 1), cv2.LINE_AA)


def _draw_detections(cv2, image, result, labels, thickness, font_scale):
    # lowest score first: where labels overlap, the most confident one ends up on top
    for det in sorted(result.get("detections", []), key=lambda d: float(d.get("score", 0.0))):
        x1, y1, x2, y2 = [int(round(v)) for v in det["box"]]
        color = color_for(det.get("index", 0))
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
        text = "%s %.2f" % (_name(det, labels), float(det.get("score", 0.0)))
        _label_box(cv2, image, text, x1, y1, color, font_scale, thickness)


def _draw_classification(cv2, image, result, labels, thickness, font_scale):
    top = result.get("top") or []
    if not top:
        return
    best = top[0]
    text = "%s %.1f%%" % (_name(best, labels), 100.0 * float(best.get("score", 0.0)))
    _label_box(cv2, image, text, 4, 4, color_for(best.get("index", 0)), font_scale * 1.3, thickness + 1)


DRAWERS = {"detection": _draw_detections, "classification": _draw_classification}


def annotate(frame, result, labels=None, caption=None):
    """Copy of the BGR ``frame`` with ``result`` drawn (boxes + labels, or the top-1 class);
    ``caption`` (e.g. "#1234") is written in the bottom-right corner: cameras and the synthetic source
    print their own time or frame number at the bottom left, and one must not cover the other."""
    import cv2

    image = np.array(frame, dtype=np.uint8, copy=True)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    thickness, font_scale = _scale(image)
    result = result or {}
    drawer = DRAWERS.get(result.get("task"))
    if drawer is None and "detections" in result:
        drawer = _draw_detections
    if drawer is not None:
        drawer(cv2, image, result, labels, thickness, font_scale)
    if caption:
        _label_box(cv2, image, str(caption), image.shape[1], image.shape[0], (32, 32, 32), font_scale, thickness)
    return image


def encode_jpeg(image, quality=80):
    """JPEG bytes of a BGR uint8 ``image`` at ``quality`` (the page, snapshots, the pre-roll ring, harvest)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed for a frame of shape %s" % (getattr(image, "shape", None),))
    return buf.tobytes()
