"""Detection augmentation keeps boxes right: objects are drawn in unique colours, augmented, and every
box must be the tight box of its colour's pixels; mosaic, the crop's min visible fraction, hsv."""

import numpy as np
import pytest

from edgekit.desktop.data.augment import build_augment, mosaic, mosaic_probability
from edgekit.desktop.data.datasets import ImageDataset

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 255, 255),
           (0, 0, 0), (128, 0, 255), (255, 128, 0), (0, 128, 255), (128, 255, 0)]


def drawn(rng, h, w, colours):
    """An image (grey-brown background) with one filled rectangle per colour; boxes Nx5 [colour index, ...]."""
    img = np.full((h, w, 3), (60, 90, 30), np.uint8)
    boxes = []
    slots = np.array_split(np.arange(w), len(colours))
    for (k, colour), xs in zip(colours, slots):
        x1 = int(xs[0]) + int(rng.integers(0, 3))
        x2 = int(xs[-1]) - int(rng.integers(0, 3))
        y1 = int(rng.integers(0, h // 2))
        y2 = int(rng.integers(y1 + 6, h))
        img[y1:y2, x1:x2] = colour
        boxes.append((k, x1, y1, x2, y2))
    return img, np.asarray(boxes, np.float32)


def colour_box(img, colour):
    near = np.abs(img.astype(np.int32) - np.asarray(colour)).sum(axis=2) < 40
    ys, xs = np.nonzero(near)
    if not len(xs):
        return None
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def check(img, boxes, tol=1.6):
    for k, x1, y1, x2, y2 in boxes:
        found = colour_box(img, COLOURS[int(k)])
        assert found is not None, "box of colour %d has no pixels" % k
        np.testing.assert_allclose(found, (x1, y1, x2, y2), atol=tol, err_msg="colour %d" % k)


@pytest.mark.parametrize("spec", [{"hflip": 1.0}, {"vflip": 1.0}, {"scale": [0.5, 1.6], "translate": 0.2},
                                  {"hflip": 0.5, "scale": [0.3, 1.0], "translate": 0.3, "min_visible": 0.3}])
def test_geometric_ops_keep_boxes_on_their_objects(spec):
    aug = build_augment(spec)
    clipped = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        img, boxes = drawn(rng, 96, 160, list(enumerate(COLOURS[:4])))
        out, out_boxes = aug(img, boxes, rng)
        assert out.shape == img.shape
        check(out, out_boxes)
        clipped += len(boxes) - len(out_boxes)
    if "translate" in spec:
        assert clipped > 0       # some objects left the frame and were dropped


def test_crop_drops_boxes_below_the_min_visible_fraction():
    aug = build_augment({"scale": [2.0, 2.0], "min_visible": 0.5})
    img, boxes = drawn(np.random.default_rng(0), 100, 100, list(enumerate(COLOURS[:4])))
    out, out_boxes = aug(img, boxes, np.random.default_rng(1))
    for k, x1, y1, x2, y2 in boxes:               # zoom x2 about the centre: visible fraction computable
        full = (x2 - x1) * (y2 - y1) * 4
        vx1, vx2 = np.clip([(x1 - 50) * 2 + 50, (x2 - 50) * 2 + 50], 0, 100)
        vy1, vy2 = np.clip([(y1 - 50) * 2 + 50, (y2 - 50) * 2 + 50], 0, 100)
        visible = max(0, vx2 - vx1) * max(0, vy2 - vy1) / full
        assert (k in out_boxes[:, 0]) == (visible >= 0.5), (k, visible)
    check(out, out_boxes)


def test_mosaic_places_four_images_and_their_boxes():
    sources = set()
    for seed in range(8):
        rng = np.random.default_rng(seed)
        images, boxes = [], []
        for q in range(4):
            h, w = [(80, 120), (120, 80), (64, 64), (100, 150)][q]
            img, b = drawn(rng, h, w, [(3 * q + j, COLOURS[3 * q + j]) for j in range(3)])
            images.append(img)
            boxes.append(b)
        out, out_boxes = mosaic(images, boxes, (96, 128), rng)
        assert out.shape == (96, 128, 3)
        check(out, out_boxes)
        sources.update(out_boxes[:, 0].astype(int) // 3)
    assert sources == {0, 1, 2, 3}            # every quadrant's image contributes boxes


def test_hsv_changes_colour_not_boxes():
    aug = build_augment({"hsv": [0.1, 0.7, 0.4]})
    img, boxes = drawn(np.random.default_rng(0), 64, 64, [(0, (40, 120, 200))])
    out, out_boxes = aug(img, boxes, np.random.default_rng(3))
    assert out.shape == img.shape and not np.array_equal(out, img)
    np.testing.assert_array_equal(out_boxes, boxes)


def test_mosaic_setting_and_the_dataset_switch_it_off_for_the_last_epochs(tmp_path):
    import cv2

    from edgekit.meta import ModelMeta
    from edgekit.vision.preprocess import Preprocessor

    assert mosaic_probability({"mosaic": "auto"}, True) == 1.0
    assert mosaic_probability({"mosaic": "auto"}, False) == 0.0
    paths, yolo = [], []
    for i in range(4):
        img, b = drawn(np.random.default_rng(i), 64, 64, [(0, COLOURS[i])])
        paths.append(str(tmp_path / ("%d.png" % i)))
        cv2.imwrite(paths[-1], img)
        k, x1, y1, x2, y2 = b[0]
        yolo.append(np.array([[0, (x1 + x2) / 128, (y1 + y2) / 128, (x2 - x1) / 64, (y2 - y1) / 64]], np.float32))
    meta = ModelMeta(task="detection", labels=["a"], input={"name": "images", "shape": [1, 3, 64, 64]},
                     preprocess={"color": "RGB", "resize": "letterbox", "mean": [0, 0, 0], "std": [1, 1, 1]},
                     decoder={"type": "centernet", "stride": 8})
    ds = ImageDataset(paths, Preprocessor.from_meta(meta), boxes=yolo, seed=0)
    ds.use_mosaic(1.0, (64, 64), epochs=5, off_epochs=2)
    ds.set_epoch(2)
    assert ds.mosaic_active()
    tensor, boxes, _ = ds.sample(0)
    assert tensor.shape == (3, 64, 64)
    ds.set_epoch(3)
    assert not ds.mosaic_active()
    assert [len(ds.sample(i)[1]) for i in range(4)] == [1, 1, 1, 1]
