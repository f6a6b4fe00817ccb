"""The generated ``scenes`` detection set: 10 object classes on cluttered, photographic-looking scenes.

Harder than ``shapes`` on purpose, so that accuracy claims are not made on a set a 16-channel network
saturates: objects from tiny (about 3% of the image width) to half-frame, stretched (aspect 1:2.5 to
2.5:1) and rotated (pose), filled with gradients and noise rather than flat colour, on backgrounds
made of fractal noise, horizons, gradients, tiles and blurred "bokeh" blobs, with clutter (lines,
outlines, text, dots that are no class) and partial occlusion between objects. Boxes are the tight box
of the *visible* pixels (COCO's convention); an object is kept only when at least ``MIN_VISIBLE`` of
it is visible, otherwise it is not drawn at all (so no unlabelled object hides in an image).

Deterministic per seed: each image comes from its own generator seeded by (seed, split, index).
Written in both formats at once:
  images/{train,val}/*.jpg, labels/{train,val}/*.txt, data.yaml       (YOLO)
  annotations/instances_{train,val}.json                              (COCO, same images)
``edgekit train RECIPE --data scenes`` generates it (recipe ``data: {scenes: {train, val, size}}``).
"""

import json
import os

import numpy as np

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "arrow", "crescent", "bolt")
SPLITS = ("train", "val")
MARKER = ".edgekit-scenes.json"
MIN_VISIBLE = 0.45
VERSION = 1


# -- backgrounds ------------------------------------------------------------------------------------
def _fractal(rng, h, w, octaves=5):
    """Multi-octave value noise in about -1..1 (the texture of foliage, gravel, clouds)."""
    import cv2

    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 1) + 1
        grid = rng.normal(0, 1, size=(cells, max(2, cells * w // h))).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    return out / total


def background(rng, h, w):
    """A photographic-looking or textured background, uint8 BGR."""
    import cv2

    kind = int(rng.integers(4))
    c1, c2 = rng.integers(20, 236, size=(2, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:                                                   # sky over ground with a horizon
        horizon = h * rng.uniform(0.25, 0.7) + _fractal(rng, 1, w, 3)[0] * h * 0.08
        t = (yy > horizon[None, :]).astype(np.float32)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
        img += (yy / h)[..., None] * rng.uniform(-40, 40, size=3)
    elif kind == 1:                                                 # tiles / bricks
        tile = rng.uniform(12, 48)
        tx = np.floor(xx / tile + (np.floor(yy / tile) % 2) * 0.5 * rng.integers(2))
        ty = np.floor(yy / tile)
        shade = ((tx + ty) % 2)[..., None]
        img = c1 * shade + c2 * (1 - shade) * 0.6 + c1 * (1 - shade) * 0.4
        grout = ((xx % tile) < 2) | ((yy % tile) < 2)
        img[grout] = img[grout] * 0.5
    elif kind == 2:                                                 # smooth gradient
        angle = rng.uniform(0, np.pi)
        t = ((xx * np.cos(angle) + yy * np.sin(angle)) / max(h, w))[..., None]
        img = c1 * (1 - t) + c2 * t
    else:                                                           # clouds / foliage
        n = _fractal(rng, h, w)[..., None]
        img = c1 + (c2 - c1) * (n * 0.5 + 0.5)
    img = img + _fractal(rng, h, w)[..., None] * rng.uniform(10, 45)
    for _ in range(int(rng.integers(0, 6))):                        # out-of-focus blobs
        blob = np.zeros((h, w), np.float32)
        cv2.circle(blob, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.uniform(0.05, 0.25) * w), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), rng.uniform(4, 16))
        img += blob[..., None] * rng.uniform(-60, 60, size=3)
    vignette = 1.0 - rng.uniform(0, 0.35) * (((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2)
    img = img * vignette[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def clutter(rng, img):
    """Things that are no class: lines, outlines, text, dots."""
    import cv2

    h, w = img.shape[:2]
    for _ in range(int(rng.integers(2, 9))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        kind = int(rng.integers(4))
        p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        if kind == 0:
            p2 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.line(img, p1, p2, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        elif kind == 1:
            p2 = (p1[0] + int(rng.uniform(8, w / 4)), p1[1] + int(rng.uniform(8, h / 4)))
            cv2.rectangle(img, p1, p2, colour, 1, cv2.LINE_AA)
        elif kind == 2:
            text = "".join(chr(int(c)) for c in rng.integers(65, 91, size=int(rng.integers(2, 6))))
            cv2.putText(img, text, p1, cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.3, 0.9), colour, 1, cv2.LINE_AA)
        else:
            for _ in range(int(rng.integers(3, 15))):
                q = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
                cv2.circle(img, q, int(rng.integers(1, 3)), colour, -1, cv2.LINE_AA)


# -- objects ----------------------------------------------------------------------------------------
def _outline(kind, rng):
    """Class outline as a list of polygons in a unit frame (-1..1); the first is filled, the rest cut out."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    if kind == "circle":
        return [circle], None
    if kind == "ring":
        return [circle], [circle * 0.55]
    if kind == "square":
        return [np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], float)], None
    if kind == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return [np.stack([np.cos(a), np.sin(a)], 1)], None
    if kind == "hexagon":
        a = np.arange(6) * np.pi / 3
        return [np.stack([np.cos(a), np.sin(a)], 1)], None
    if kind == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return [np.stack([r * np.cos(a), r * np.sin(a)], 1)], None
    if kind == "cross":
        k = 0.34
        return [np.array([(-k, -1), (k, -1), (k, -k), (1, -k), (1, k), (k, k), (k, 1), (-k, 1), (-k, k), (-1, k),
                          (-1, -k), (-k, -k)], float)], None
    if kind == "arrow":
        return [np.array([(-1, -0.3), (0.2, -0.3), (0.2, -0.8), (1, 0), (0.2, 0.8), (0.2, 0.3), (-1, 0.3)], float)], None
    if kind == "crescent":
        return [circle], [circle * 0.85 + np.array([0.45, -0.1])]
    if kind == "bolt":
        return [np.array([(-0.2, -1), (0.6, -1), (0.1, -0.15), (0.55, -0.15), (-0.4, 1), (-0.05, 0.1),
                          (-0.5, 0.1)], float)], None
    raise ValueError(kind)


def _texture(rng, h, w):
    """An object's fill: a two-colour gradient with noise, sometimes stripes."""
    c1 = rng.integers(0, 256, size=3).astype(np.float32)
    c2 = np.clip(c1 + rng.normal(0, 70, size=3), 0, 255)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    t = ((xx * np.cos(angle) + yy * np.sin(angle)) / max(h, w, 1))[..., None]
    img = c1 * (1 - t) + c2 * t
    if rng.random() < 0.3:
        period = rng.uniform(3, 10)
        img += (np.sin((xx + yy) * 2 * np.pi / period)[..., None] * rng.uniform(10, 40))
    img += rng.normal(0, rng.uniform(2, 12), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def object_mask(kind, rng, h, w, cx, cy, size, aspect, angle):
    """The object's mask (uint8 0/1) on an h x w canvas: unit outline scaled by size, stretched, rotated."""
    import cv2

    fill, holes = _outline(kind, rng)
    sx, sy = size / 2 * np.sqrt(aspect), size / 2 / np.sqrt(aspect)
    c, s = np.cos(angle), np.sin(angle)

    def place(poly):
        p = poly * np.array([sx, sy])
        p = p @ np.array([[c, s], [-s, c]])
        return np.round((p + np.array([cx, cy])) * 16).astype(np.int32)

    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [place(p) for p in fill], 1, lineType=cv2.LINE_8, shift=4)
    for p in holes or []:
        cv2.fillPoly(mask, [place(p)], 0, lineType=cv2.LINE_8, shift=4)
    return mask


def scene(rng, width, height, max_objects=8):
    """One image -> (uint8 BGR, [(cls, x1, y1, x2, y2)] boxes of the visible parts, in pixels)."""
    import cv2

    img = background(rng, height, width)
    clutter(rng, img)
    owner = np.full((height, width), -1, np.int32)        # which object each pixel shows
    drawn = []                                            # (cls, pixel count when drawn)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(8):
            cls = int(rng.integers(len(CLASSES)))
            size = float(np.exp(rng.uniform(np.log(0.035), np.log(0.5)))) * min(width, height) * 1.3
            aspect = float(np.exp(rng.uniform(np.log(0.4), np.log(2.5))))
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            mask = object_mask(CLASSES[cls], rng, height, width, cx, cy, size, aspect, rng.uniform(0, 2 * np.pi))
            area = int(mask.sum())
            if area < 12:
                continue
            # the new object may hide parts of others; each must keep MIN_VISIBLE of itself
            covered = np.bincount(owner[mask > 0] + 1, minlength=len(drawn) + 1)[1:]
            visible = np.bincount(owner.ravel() + 1, minlength=len(drawn) + 1)[1:]
            if all(visible[i] - covered[i] >= MIN_VISIBLE * drawn[i][1] for i in range(len(drawn))):
                break
        else:
            continue
        ys, xs = np.nonzero(mask)
        y1, y2 = max(0, ys.min() - 2), min(height, ys.max() + 3)
        x1, x2 = max(0, xs.min() - 2), min(width, xs.max() + 3)
        texture = _texture(rng, y2 - y1, x2 - x1)
        soft = cv2.GaussianBlur(mask[y1:y2, x1:x2].astype(np.float32), (3, 3), 0)[..., None]
        shade = rng.uniform(0.75, 1.0)
        region = img[y1:y2, x1:x2]
        region[:] = np.clip(region * (1 - soft) + texture * soft * shade, 0, 255).astype(np.uint8)
        owner[mask > 0] = len(drawn)
        drawn.append((cls, area))
    boxes = []
    for i, (cls, _) in enumerate(drawn):
        ys, xs = np.nonzero(owner == i)
        boxes.append((cls, float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
    if rng.random() < 0.5:                                            # sensor noise and blur, like a camera
        img = np.clip(img + rng.normal(0, rng.uniform(1, 6), size=img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.2))
    return img, boxes


# -- writing ----------------------------------------------------------------------------------------
def _params(train, val, size, seed):
    return {"train": int(train), "val": int(val), "size": int(size), "seed": int(seed), "classes": list(CLASSES),
            "version": VERSION}


def make_scenes(out_dir, train=1000, val=200, size=320, seed=0):
    """Write the scenes set (size x size*3/4 images, 4:3) to ``out_dir``; reused when written with the same
    parameters. Returns ``out_dir`` (a YOLO root with data.yaml that is also a COCO root)."""
    from edgekit.desktop.data.shapes import write_once
    from edgekit.progress import progress

    size = int(size)
    out_dir = os.path.abspath(os.fspath(out_dir))
    params = _params(train, val, size, seed)

    def fill(tmp):
        with progress(total=int(train) + int(val), desc="scenes", leave=False) as bar:
            for split_index, split in enumerate(SPLITS):
                _write_split(tmp, split, params[split], size, seed, split_index, bar)
        with open(os.path.join(tmp, "data.yaml"), "w") as handle:
            handle.write("# edgekit generated scenes (detection); COCO files in annotations/\npath: .\n"
                         "train: images/train\nval: images/val\nnc: %d\nnames: [%s]\n"
                         % (len(CLASSES), ", ".join(CLASSES)))

    return write_once(out_dir, params, MARKER, fill)


def _write_split(root, split, count, size, seed, split_index, bar):
    import cv2

    width, height = size, size * 3 // 4
    img_dir, lbl_dir = os.path.join(root, "images", split), os.path.join(root, "labels", split)
    os.makedirs(img_dir)
    os.makedirs(lbl_dir)
    coco = {"info": {"description": "edgekit scenes %s (seed %d)" % (split, seed)}, "images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}
    for i in range(count):
        rng = np.random.default_rng([seed, split_index, i, VERSION])
        img, boxes = scene(rng, width, height)
        name = "%05d.jpg" % i
        cv2.imwrite(os.path.join(img_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines = ["%d %.6f %.6f %.6f %.6f" % (c, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
                                             (x2 - x1) / width, (y2 - y1) / height) for c, x1, y1, x2, y2 in boxes]
        with open(os.path.join(lbl_dir, "%05d.txt" % i), "w") as handle:
            handle.write("\n".join(lines) + ("\n" if lines else ""))
        coco["images"].append({"id": i + 1, "file_name": name, "width": width, "height": height})
        for c, x1, y1, x2, y2 in boxes:
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": c + 1,
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                        "iscrowd": 0})
        bar.update(1)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    with open(os.path.join(root, "annotations", "instances_%s.json" % split), "w") as handle:
        json.dump(coco, handle)
