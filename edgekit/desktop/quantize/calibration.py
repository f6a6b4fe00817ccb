"""Calibration images for INT8: listed, split, read through the model's own preprocessing.

The tensors fed to the calibrator come from ``Preprocessor.from_meta(meta)``: the very code the
daemon and the profiler run, so a model is never calibrated with one preprocessing and served with
another. ``ImageReader`` is ONNX Runtime's ``CalibrationDataReader`` protocol (``get_next() -> feed
or None``) over tensors prepared once (read errors surface before calibration starts).
"""

import os
import random

import numpy as np

from edgekit.errors import DatasetError
from edgekit.progress import progress, warn
from edgekit.vision.preprocess import Preprocessor, read_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# Fewest calibration images each method needs: below this the ranges are noisy (warn).
# Histogram methods (entropy, percentile) estimate tails and need more than min/max.
MIN_IMAGES = {"minmax": 16, "entropy": 64, "percentile": 64}
DEFAULT_COUNT = 200          # calibration images used when --calib-count is not given
HELD_OUT_FRACTION = 0.2      # share of --calib images kept aside to measure agreement
MAX_HELD_OUT = 100


def list_images(folder, what="calibration"):
    """Every image file under ``folder`` (recursive, sorted). DatasetError when none."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DatasetError("%s folder not found: %s" % (what, folder), hint="give a folder of images")
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                     if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not found:
        raise DatasetError("%s folder %s holds no images (%s)" % (what, folder, ", ".join(IMAGE_EXTENSIONS[:4])),
                           hint="add images like the ones the camera will see")
    return found


def split_images(paths, count=None, hold_out=True, seed=0):
    """Shuffle (seeded) and split into (calibration, held_out).

    Held-out images measure agreement when no labelled --val set is given; they are never used
    for calibration. With a single image nothing can be held out (held_out is empty).
    """
    paths = list(paths)
    random.Random(seed).shuffle(paths)
    n_held = 0
    if hold_out and len(paths) >= 2:
        n_held = min(MAX_HELD_OUT, max(1, int(round(len(paths) * HELD_OUT_FRACTION))))
    held, rest = paths[:n_held], paths[n_held:]
    if count is not None:
        rest = rest[:count]
    return rest, held


def check_count(count, method):
    """Refuse zero images; warn below what the method needs. Returns the warning text or None."""
    need = MIN_IMAGES[method]
    if count == 0:
        raise DatasetError("no calibration images", hint="give --calib DIR with at least %d images" % need)
    if count < need:
        message = ("only %d calibration image%s for %s calibration (it needs at least %d for stable ranges)"
                   % (count, "" if count == 1 else "s", method, need))
        warn(message)
        return message
    return None


def load_tensors(paths, meta, what="calibration", show=True):
    """Read and preprocess images -> list of (1xCxHxW array, LetterboxInfo, frame shape).

    Every unreadable file is reported at once (DatasetError); nothing is skipped silently.
    """
    pre = Preprocessor.from_meta(meta)
    tensors, bad = [], []
    with progress(total=len(paths), desc="reading %s images" % what, disable=None if show else True) as bar:
        for path in paths:
            try:
                frame = read_image(path)
            except DatasetError:
                bad.append(path)
                bar.update(1)
                continue
            tensor, info = pre(frame)
            tensors.append((tensor, info, frame.shape[:2]))
            bar.update(1)
    if bad:
        shown = ", ".join(os.path.basename(p) for p in bad[:3]) + (" ..." if len(bad) > 3 else "")
        raise DatasetError("%d %s image%s cannot be read: %s" % (len(bad), what, "" if len(bad) == 1 else "s",
                                                                 shown),
                           hint="remove or replace them (first: %s)" % bad[0])
    return tensors


def _reader_base():
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


def make_reader(input_name, tensors):
    """An ONNX Runtime CalibrationDataReader over preprocessed tensors (re-iterable via rewind())."""

    class ImageReader(_reader_base()):
        def __init__(self):
            self.arrays = [np.ascontiguousarray(t[0]) for t in tensors]
            self.rewind()

        def get_next(self):
            if self._pos >= len(self.arrays):
                return None
            feed = {input_name: self.arrays[self._pos]}
            self._pos += 1
            return feed

        def rewind(self):
            self._pos = 0

        def __len__(self):
            return len(self.arrays)

        def set_range(self, start_index, end_index):
            self.arrays = self.arrays[start_index:end_index]
            self.rewind()

    return ImageReader()
