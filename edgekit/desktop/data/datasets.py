"""Datasets for training: ImageFolder (classification), YOLO text format (detection), built-in shapes.

Public API (docs/desktop/train.md, "Datasets"):
  make_shapes(out_dir, task="classification"|"detection", train=N, val=M, size=S, seed=0) -> path
  list_image_folder(root, strict=False) -> (samples [(path, class_index)], class_names)
  load_yolo(root_or_data_yaml, split="val", strict=False) -> (samples [(image_path, float32 Nx5
      [cls, cx, cy, w, h] normalised)], names)

Every problem is a ``DatasetError`` (one line, exit 2) naming the file (and line) at fault. Images
without labels and labels without images are counted and reported; ``strict=True`` makes them fatal.

``ImageDataset`` turns samples into training tensors through the shared ``Preprocessor`` (the one
inference uses); augmentations act on the uint8 BGR image before it.
"""

import os

import numpy as np

from edgekit.desktop.data.shapes import CLASSES as SHAPE_CLASSES, make_shapes  # noqa: F401  (re-export)
from edgekit.errors import DatasetError
from edgekit.progress import warn

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def is_image(name):
    return name.lower().endswith(IMAGE_EXTS)


def _orphans(kind, paths, strict, hint):
    """Report files that have no partner (images without labels, labels without images)."""
    if not paths:
        return
    example = paths[0]
    text = "%d %s (for example %s)" % (len(paths), kind, example)
    if strict:
        raise DatasetError(text, hint=hint + "; or drop --strict to train without them")
    warn(text + "; skipped (--strict makes this an error)")


# -- ImageFolder ----------------------------------------------------------------------------------
def list_image_folder(root, strict=False, class_names=None):
    """``root/<class>/<image>`` -> (samples [(path, class_index)], class_names sorted by folder name).

    ``class_names`` fixes the class order (a val split must use the train split's classes).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DatasetError("dataset folder not found: %s" % root,
                           hint="expected ImageFolder layout ROOT/<class>/<image>.png")
    entries = sorted(os.listdir(root))
    found = [d for d in entries if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")]
    loose = [os.path.join(root, f) for f in entries if is_image(f)]
    if not found:
        raise DatasetError("%s has no class folders" % root,
                           hint="put the images of each class in ROOT/<class name>/")
    if class_names is None:
        class_names = found
    else:
        unknown = [d for d in found if d not in class_names]
        if unknown:
            raise DatasetError("%s has class folder %r that the train split lacks" % (root, unknown[0]),
                               hint="use the same class folders in every split (train has: %s)"
                               % ", ".join(class_names))
    samples = []
    for index, name in enumerate(class_names):
        folder = os.path.join(root, name)
        files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        images = [os.path.join(folder, f) for f in files if is_image(f)]
        if not images and name in found:
            raise DatasetError("class folder %s holds no images" % folder,
                               hint="add images (%s) or remove the folder" % ", ".join(IMAGE_EXTS[:3]))
        samples.extend((path, index) for path in images)
    if not samples:
        raise DatasetError("no images in %s" % root, hint="expected ROOT/<class>/<image>.png")
    _orphans("images without a class folder in %s" % root, loose, strict,
             "move them into ROOT/<class>/")
    return samples, list(class_names)


# -- YOLO -----------------------------------------------------------------------------------------
def _yolo_config(root_or_yaml):
    from edgekit.yamlfile import load_yaml
    from edgekit.errors import ConfigError

    path = os.fspath(root_or_yaml)
    if os.path.isdir(path):
        path = os.path.join(path, "data.yaml")
    if not os.path.exists(path):
        raise DatasetError("YOLO dataset description not found: %s" % path,
                           hint="write data.yaml with path, train, val and names")
    try:
        cfg = load_yaml(path)
    except ConfigError as exc:
        raise DatasetError(exc.message, hint=exc.hint)
    names = cfg.get("names")
    if isinstance(names, dict):
        try:
            names = [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise DatasetError("%s: names must map class ids 0..N-1 to names" % path)
    if not isinstance(names, list) or not names:
        raise DatasetError("%s has no class names" % path, hint="add `names: [cat, dog, ...]`")
    if "nc" in cfg and cfg["nc"] != len(names):
        raise DatasetError("%s: nc is %s but %d names are listed" % (path, cfg["nc"], len(names)),
                           hint="make nc match the names")
    base = os.path.dirname(os.path.abspath(path))
    root = os.path.normpath(os.path.join(base, str(cfg.get("path") or ".")))
    return path, root, cfg, [str(n) for n in names]


def _split_images(yaml_path, root, cfg, split):
    entry = cfg.get(split)
    if entry is None:
        raise DatasetError("%s has no %r split" % (yaml_path, split),
                           hint="add `%s: images/%s` to it" % (split, split))
    entries = entry if isinstance(entry, list) else [entry]
    images = []
    for item in entries:
        where = os.path.normpath(os.path.join(root, str(item)))
        if os.path.isdir(where):
            files = sorted(os.listdir(where))
            images.extend(os.path.join(where, f) for f in files if is_image(f))
        elif where.endswith(".txt") and os.path.isfile(where):
            with open(where) as handle:
                lines = [line.strip() for line in handle if line.strip()]
            images.extend(os.path.normpath(os.path.join(root, line)) for line in lines)
        else:
            raise DatasetError("%s split folder not found: %s" % (split, where),
                               hint="fix `%s:` in %s" % (split, yaml_path))
    if not images:
        raise DatasetError("no images in the %s split (%s)" % (split, ", ".join(map(str, entries))),
                           hint="add images or fix `%s:` in %s" % (split, yaml_path))
    return images


def label_path_for(image_path):
    """YOLO convention: .../images/.../x.png -> .../labels/.../x.txt."""
    head, name = os.path.split(image_path)
    parts = head.split(os.sep)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return os.path.join(os.sep.join(parts), os.path.splitext(name)[0] + ".txt")


def parse_yolo_labels(path, num_classes):
    """One label file -> float32 Nx5 [cls, cx, cy, w, h]; DatasetError naming file and line."""
    rows = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            where = "%s line %d" % (path, number)
            if len(fields) != 5:
                raise DatasetError("%s: expected 5 fields `class cx cy w h`, got %d" % (where, len(fields)),
                                   hint="fix the label line")
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise DatasetError("%s: not a number in %r" % (where, line.strip()), hint="fix the label line")
            cls = values[0]
            if cls != int(cls) or not 0 <= cls < num_classes:
                raise DatasetError("%s: class %s out of range 0..%d" % (where, fields[0], num_classes - 1),
                                   hint="fix the label or add the class to names in data.yaml")
            cx, cy, w, h = values[1:]
            if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1.001 and 0 < h <= 1.001):
                raise DatasetError("%s: box %s is not normalised to 0..1" % (where, " ".join(fields[1:])),
                                   hint="YOLO boxes are centre x, centre y, width, height divided by the "
                                   "image size")
            rows.append(values)
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def load_yolo(root_or_data_yaml, split="val", strict=False):
    """A YOLO dataset split -> (samples [(image_path, labels float32 Nx5)], names)."""
    yaml_path, root, cfg, names = _yolo_config(root_or_data_yaml)
    images = _split_images(yaml_path, root, cfg, split)
    samples, missing = [], []
    for image in images:
        if not os.path.isfile(image):
            raise DatasetError("image listed in the %s split not found: %s" % (split, image),
                               hint="fix the list file")
        label = label_path_for(image)
        if not os.path.isfile(label):
            missing.append(image)
            continue
        samples.append((image, parse_yolo_labels(label, len(names))))
    _orphans("images without a label file in the %s split" % split, missing, strict,
             "add labels/<name>.txt (an empty file marks an image with no objects)")
    wanted = set(os.path.splitext(os.path.basename(p))[0] for p in images)
    label_dirs = sorted(set(os.path.dirname(label_path_for(p)) for p in images))
    stray = []
    for folder in label_dirs:
        if os.path.isdir(folder):
            stray.extend(os.path.join(folder, f) for f in sorted(os.listdir(folder))
                         if f.endswith(".txt") and os.path.splitext(f)[0] not in wanted)
    _orphans("label files without an image in the %s split" % split, stray, strict,
             "remove them or add their images")
    if not samples:
        raise DatasetError("no labelled images in the %s split of %s" % (split, yaml_path),
                           hint="add labels/<name>.txt next to images/<name>.png")
    return samples, names


# -- torch datasets ---------------------------------------------------------------------------------
def _read(path):
    from edgekit.vision.preprocess import read_image

    return read_image(path)


class ImageDataset(object):
    """Samples -> (tensor CxHxW, target) through augmentation (uint8 BGR) then the shared Preprocessor.

    ``boxes[i]`` (detection): float32 Nx5 [cls, cx, cy, w, h] normalised to the source image.
    Images are decoded once at construction (which also finds unreadable files early) when they fit
    in ``cache_bytes``; otherwise each is read when used.
    """

    def __init__(self, paths, preprocessor, labels=None, boxes=None, augment=None, seed=0,
                 encode=None, cache_bytes=1 << 30):
        self.paths = list(paths)
        self.labels = labels
        self.boxes = boxes
        self.pre = preprocessor
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.encode = encode          # detection: boxes in input pixels -> dense targets
        self.mosaic_p, self.mosaic_until, self.mosaic_hw = 0.0, 0, None
        self._cache = None
        if self.paths:
            first = _read(self.paths[0])
            if first.nbytes * len(self.paths) <= cache_bytes:
                self._cache = [first] + [_read(p) for p in self.paths[1:]]

    def __len__(self):
        return len(self.paths)

    def image(self, i):
        return self._cache[i] if self._cache is not None else _read(self.paths[i])

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def use_mosaic(self, probability, input_hw, epochs, off_epochs=2):
        """Mosaic (augment.mosaic) with ``probability`` for epochs before ``epochs - off_epochs``."""
        self.mosaic_p = float(probability)
        self.mosaic_until = int(epochs) - int(off_epochs)
        self.mosaic_hw = tuple(int(v) for v in input_hw)

    def mosaic_active(self):
        return self.mosaic_p > 0 and self.boxes is not None and self.epoch < self.mosaic_until and len(self) > 1

    def frame_boxes(self, i, image=None):
        """Boxes of sample i as Nx5 [cls, x1, y1, x2, y2] in source-image pixels."""
        if self.boxes is None:
            return None
        if image is None:
            image = self.image(i)
        h, w = image.shape[:2]
        b = self.boxes[i]
        out = np.empty((len(b), 5), dtype=np.float32)
        out[:, 0] = b[:, 0]
        out[:, 1] = (b[:, 1] - b[:, 3] / 2) * w
        out[:, 2] = (b[:, 2] - b[:, 4] / 2) * h
        out[:, 3] = (b[:, 1] + b[:, 3] / 2) * w
        out[:, 4] = (b[:, 2] + b[:, 4] / 2) * h
        return out

    def sample(self, i):
        """(input array CxHxW float32, label or boxes in input pixels Nx5, LetterboxInfo)."""
        image = self.image(i)
        boxes = self.frame_boxes(i, image)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.mosaic_active() and rng.random() < self.mosaic_p:
            from edgekit.desktop.data.augment import mosaic

            picks = [i] + [int(j) for j in rng.integers(0, len(self), size=3)]
            images = [image] + [self.image(j) for j in picks[1:]]
            image, boxes = mosaic(images, [boxes] + [self.frame_boxes(j, im) for j, im in zip(picks[1:], images[1:])],
                                  self.mosaic_hw, rng)
        if self.augment is not None:
            image, boxes = self.augment(image, boxes, rng)
        tensor, info = self.pre(image)
        if boxes is not None:
            boxes = boxes.copy()
            boxes[:, [1, 3]] = boxes[:, [1, 3]] * info.scale_x + info.pad_x
            boxes[:, [2, 4]] = boxes[:, [2, 4]] * info.scale_y + info.pad_y
        return tensor[0], (self.labels[i] if boxes is None else boxes), info

    def __getitem__(self, i):
        import torch

        tensor, target, _ = self.sample(i)
        if self.encode is not None:
            target = tuple(torch.from_numpy(t) for t in self.encode(target))
        return torch.from_numpy(tensor), target
