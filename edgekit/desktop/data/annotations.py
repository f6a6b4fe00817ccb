"""Detection annotations as labelling tools write them: YOLO text, COCO JSON, Pascal VOC XML.

Public API (docs/desktop/train.md, "Annotation formats"):
  detect_format(path) -> "yolo" | "coco" | "voc"
  load_detection(path, split="val", classes=None, strict=False, fmt=None)
      -> (samples [(image_path, float32 Nx5 [cls, cx, cy, w, h] normalised)], names)
  load_coco(json_path, images_dir=None)          -> (samples, names)   one annotation file
  load_voc(root, split)                          -> (samples, names)   VOCdevkit-style folder
  select_classes(samples, names, classes)        -> (samples, names)   the --classes subset

Every reader returns the YOLO reader's sample format, so training, evaluation and quantization take
any of them without a conversion step. Class names come from the file (COCO ``categories``, the VOC
``<name>`` tags, YOLO ``names``). Every problem is a ``DatasetError`` naming the file, the image and
the problem: a box outside the image, an unknown category, a missing image, a malformed entry.
"""

import json
import os
import xml.etree.ElementTree as ET

import numpy as np

from edgekit.errors import DatasetError

FORMATS = ("yolo", "coco", "voc")
# A box may poke out of the image by this many pixels (rounding in labelling tools) before it is an error;
# within the tolerance it is clipped.
EDGE_TOLERANCE = 2.0
SPLIT_ALIASES = {"val": ("val", "valid", "validation"), "train": ("train",), "test": ("test",)}


def _to_yolo(boxes_xyxy, classes, width, height):
    """Pixel boxes (x1, y1, x2, y2), class ids and the image size -> float32 Nx5 [cls, cx, cy, w, h] in 0..1."""
    out = np.zeros((len(boxes_xyxy), 5), dtype=np.float32)
    for i, ((x1, y1, x2, y2), c) in enumerate(zip(boxes_xyxy, classes)):
        out[i] = (c, (x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height, (x2 - x1) / width, (y2 - y1) / height)
    return out


def _check_box(where, image, box, width, height):
    """Validate a pixel box against the image size; clip within EDGE_TOLERANCE; DatasetError otherwise."""
    x1, y1, x2, y2 = box
    if not all(np.isfinite(v) for v in box):
        raise DatasetError("%s: image %s has a box with a non-number: %s" % (where, image, list(box)),
                           hint="fix or remove the annotation")
    if x2 <= x1 or y2 <= y1:
        raise DatasetError("%s: image %s has an empty box %s (x2 <= x1 or y2 <= y1)" % (where, image, _fmt(box)),
                           hint="fix or remove the annotation")
    tol = EDGE_TOLERANCE
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        raise DatasetError("%s: image %s has a box %s outside the image (%dx%d)"
                           % (where, image, _fmt(box), width, height),
                           hint="fix the box or the image size in the annotation")
    return (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))


def _fmt(box):
    return "[%s]" % ", ".join("%g" % v for v in box)


# -- COCO -----------------------------------------------------------------------------------------
def _coco_image_path(json_path, file_name, images_dir):
    """Where an image of a COCO file is: beside the JSON (Roboflow), in images_dir, or ../images/."""
    base = os.path.dirname(os.path.abspath(json_path))
    candidates = []
    if images_dir:
        candidates.append(os.path.join(images_dir, file_name))
    candidates.extend([os.path.join(base, file_name), os.path.join(os.path.dirname(base), file_name),
                       os.path.join(os.path.dirname(base), "images", file_name)])
    for path in candidates:
        if os.path.isfile(path):
            return os.path.normpath(path)
    return None


def _coco_number(where, value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError("%s: %s must be a number, got %r" % (where, what, value), hint="fix the annotation file")
    return float(value)


def load_coco(json_path, images_dir=None):
    """One COCO ``instances`` JSON -> (samples, names); names from ``categories`` in id order."""
    json_path = os.fspath(json_path)
    if not os.path.isfile(json_path):
        raise DatasetError("COCO annotation file not found: %s" % json_path, hint="check --data")
    try:
        with open(json_path) as handle:
            doc = json.load(handle)
    except ValueError as exc:
        raise DatasetError("%s is not valid JSON (%s)" % (json_path, exc), hint="re-export it from the labelling tool")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                      "categories")):
        raise DatasetError("%s is not a COCO detection file: it needs lists images, annotations and categories"
                           % json_path, hint="export COCO (instances) JSON from the labelling tool")
    categories = {}
    for cat in doc["categories"]:
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DatasetError("%s: category %r lacks id or name" % (json_path, cat), hint="fix categories")
        categories[cat["id"]] = str(cat["name"])
    if not categories:
        raise DatasetError("%s has no categories" % json_path, hint="add categories [{id, name}]")
    ids = sorted(categories, key=lambda k: (str(type(k)), k))
    index = dict((cid, i) for i, cid in enumerate(ids))
    names = [categories[cid] for cid in ids]
    images = {}
    for img in doc["images"]:
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise DatasetError("%s: image entry %r lacks id or file_name" % (json_path, img), hint="fix images")
        where = "%s image %s" % (json_path, img["file_name"])
        width = _coco_number(where, img.get("width"), "width")
        height = _coco_number(where, img.get("height"), "height")
        path = _coco_image_path(json_path, img["file_name"], images_dir)
        if path is None:
            raise DatasetError("%s: image %s not found (looked beside the file%s)"
                               % (json_path, img["file_name"], " and in %s" % images_dir if images_dir else ""),
                               hint="put the images beside the JSON or in ../images/, or remove the entry")
        images[img["id"]] = {"path": path, "name": img["file_name"], "w": width, "h": height, "boxes": [],
                             "classes": []}
    for ann in doc["annotations"]:
        if not isinstance(ann, dict):
            raise DatasetError("%s: annotation %r is not an object" % (json_path, ann), hint="fix annotations")
        image = images.get(ann.get("image_id"))
        if image is None:
            raise DatasetError("%s: annotation %s refers to image id %r, which is not in images"
                               % (json_path, ann.get("id"), ann.get("image_id")), hint="fix image_id or add the image")
        if ann.get("category_id") not in index:
            raise DatasetError("%s: image %s has an annotation with unknown category %r (known: %s)"
                               % (json_path, image["name"], ann.get("category_id"),
                                  ", ".join("%s=%s" % (k, categories[k]) for k in ids[:8])),
                               hint="add the category or fix category_id")
        if ann.get("iscrowd"):
            continue                        # crowd regions are not objects to detect (COCO ignores them too)
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetError("%s: image %s has an annotation without bbox [x, y, w, h]: %r"
                               % (json_path, image["name"], bbox), hint="fix the annotation")
        x, y, w, h = [_coco_number("%s image %s" % (json_path, image["name"]), v, "bbox") for v in bbox]
        box = _check_box(json_path, image["name"], (x, y, x + w, y + h), image["w"], image["h"])
        image["boxes"].append(box)
        image["classes"].append(index[ann["category_id"]])
    samples = [(im["path"], _to_yolo(im["boxes"], im["classes"], im["w"], im["h"]))
               for _, im in sorted(images.items(), key=lambda kv: kv[1]["name"])]
    if not samples:
        raise DatasetError("%s lists no images" % json_path, hint="export the split with its images")
    return samples, names


def _coco_file(root, split):
    """The COCO JSON of a split under root: SPLIT/_annotations.coco.json (Roboflow) or
    annotations/instances_SPLIT*.json (COCO), or the json itself."""
    if os.path.isfile(root) and root.endswith(".json"):
        return root
    tried = []
    for name in SPLIT_ALIASES.get(split, (split,)):
        for path in (os.path.join(root, name, "_annotations.coco.json"),
                     os.path.join(root, "annotations", "instances_%s.json" % name),
                     os.path.join(root, "annotations", "%s.json" % name)):
            tried.append(path)
            if os.path.isfile(path):
                return path
        folder = os.path.join(root, "annotations")
        if os.path.isdir(folder):
            for f in sorted(os.listdir(folder)):
                if f.startswith("instances_%s" % name) and f.endswith(".json"):
                    return os.path.join(folder, f)
    raise DatasetError("no COCO annotations for the %s split under %s" % (split, root),
                       hint="expected one of %s" % ", ".join(os.path.relpath(p, root) for p in tried[:3]))


def _coco_images_dir(root, json_path, split):
    for name in SPLIT_ALIASES.get(split, (split,)):
        for folder in (os.path.join(root, "images", name), os.path.join(root, name)):
            if os.path.isdir(folder):
                return folder
    base = os.path.dirname(os.path.dirname(os.path.abspath(json_path)))
    for f in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if f.startswith(split) and os.path.isdir(os.path.join(base, f)):        # COCO's train2017/
            return os.path.join(base, f)
    return None


# -- Pascal VOC ----------------------------------------------------------------------------------
def _voc_text(node, tag, where):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError("%s: missing <%s>" % (where, tag), hint="fix the XML")
    return child.text.strip()


def _voc_float(node, tag, where):
    text = _voc_text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise DatasetError("%s: <%s> is not a number: %r" % (where, tag, text), hint="fix the XML")


def parse_voc_xml(path, images_dir):
    """One VOC XML -> (image_path, [(name, (x1, y1, x2, y2))], width, height)."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise DatasetError("%s is not valid XML (%s)" % (path, exc), hint="re-export it from the labelling tool")
    root = tree.getroot()
    filename = _voc_text(root, "filename", path)
    image_path = os.path.join(images_dir, filename)
    if not os.path.isfile(image_path):
        raise DatasetError("%s: image %s not found in %s" % (path, filename, images_dir),
                           hint="put it in JPEGImages/ or fix <filename>")
    size = root.find("size")
    if size is None:
        raise DatasetError("%s: image %s has no <size>" % (path, filename), hint="add <size><width>..</size>")
    width, height = _voc_float(size, "width", path), _voc_float(size, "height", path)
    objects = []
    for obj in root.findall("object"):
        name = _voc_text(obj, "name", path)
        where = "%s object %s" % (path, name)
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DatasetError("%s: image %s object %s has no <bndbox>" % (path, filename, name), hint="fix the XML")
        # VOC pixel indices are 1-based and inclusive: x in 1..width
        x1, y1, x2, y2 = (_voc_float(bnd, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        box = _check_box(path, filename, (x1 - 1, y1 - 1, x2, y2), width, height)
        objects.append((name, box))
    return os.path.normpath(image_path), objects, width, height


def _voc_root(root):
    """A VOCdevkit folder, VOC2012/ inside it, or the folder itself holding Annotations/."""
    if os.path.isdir(os.path.join(root, "Annotations")):
        return root
    for f in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        if os.path.isdir(os.path.join(root, f, "Annotations")):
            return os.path.join(root, f)
    raise DatasetError("%s is not a Pascal VOC folder (no Annotations/)" % root,
                       hint="expected Annotations/*.xml, JPEGImages/ and ImageSets/Main/{train,val}.txt")


def load_voc(root, split="val"):
    """A Pascal VOC folder's split -> (samples, names sorted by name, from the XML files of all splits)."""
    root = _voc_root(os.fspath(root))
    ann_dir, img_dir = os.path.join(root, "Annotations"), os.path.join(root, "JPEGImages")
    if not os.path.isdir(img_dir):
        raise DatasetError("%s has no JPEGImages/ folder" % root, hint="put the images in JPEGImages/")
    list_path = None
    for name in SPLIT_ALIASES.get(split, (split,)):
        path = os.path.join(root, "ImageSets", "Main", name + ".txt")
        if os.path.isfile(path):
            list_path = path
            break
    if list_path is None:
        raise DatasetError("%s has no ImageSets/Main/%s.txt" % (root, split),
                           hint="list the %s image ids (one per line) in it" % split)
    parsed = {}
    everything = sorted(f for f in os.listdir(ann_dir) if f.endswith(".xml"))
    for f in everything:                          # class names come from every split's files
        parsed[os.path.splitext(f)[0]] = parse_voc_xml(os.path.join(ann_dir, f), img_dir)
    names = sorted(set(n for _, objs, _, _ in parsed.values() for n, _ in objs))
    if not names:
        raise DatasetError("%s: no <object> in any annotation" % ann_dir, hint="label some objects")
    index = dict((n, i) for i, n in enumerate(names))
    with open(list_path) as handle:
        ids = [line.split()[0] for line in handle if line.strip()]
    samples = []
    for image_id in ids:
        if image_id not in parsed:
            raise DatasetError("%s lists %s, but %s.xml is not in %s" % (list_path, image_id, image_id, ann_dir),
                               hint="add the annotation or remove the line")
        path, objs, width, height = parsed[image_id]
        samples.append((path, _to_yolo([b for _, b in objs], [index[n] for n, _ in objs], width, height)))
    if not samples:
        raise DatasetError("%s lists no images" % list_path, hint="list the image ids, one per line")
    return samples, names


# -- one entry point ------------------------------------------------------------------------------
def detect_format(path):
    path = os.fspath(path)
    if os.path.isfile(path):
        if path.endswith((".yaml", ".yml")):
            return "yolo"
        if path.endswith(".json"):
            return "coco"
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "data.yaml")):
            return "yolo"
        try:
            _voc_root(path)
            return "voc"
        except DatasetError:
            pass
        try:
            _coco_file(path, "train")
            return "coco"
        except DatasetError:
            pass
    raise DatasetError("cannot tell the annotation format of %s" % path,
                       hint="give a YOLO folder (data.yaml), a COCO folder (annotations/instances_train.json or "
                       "train/_annotations.coco.json) or a Pascal VOC folder (Annotations/, JPEGImages/)")


def select_classes(samples, names, classes):
    """Keep only the ``classes`` (names, in that order); boxes of other classes are dropped."""
    if not classes:
        return samples, names
    wanted = [c.strip() for c in (classes.split(",") if isinstance(classes, str) else classes) if c.strip()]
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise DatasetError("--classes: %s not in the dataset's classes (%s)"
                           % (", ".join(repr(u) for u in unknown), ", ".join(names[:20])),
                           hint="name classes as the annotation file does")
    remap = np.full(len(names), -1, dtype=np.int64)
    for new, name in enumerate(wanted):
        remap[names.index(name)] = new
    out = []
    for path, labels in samples:
        new_cls = remap[labels[:, 0].astype(np.int64)] if len(labels) else np.zeros(0, dtype=np.int64)
        kept = labels[new_cls >= 0].copy()
        kept[:, 0] = new_cls[new_cls >= 0]
        out.append((path, kept))
    return out, wanted


def load_detection(path, split="val", classes=None, strict=False, fmt=None):
    """Any supported annotation format's split -> (samples, names), optionally a class subset."""
    from edgekit.desktop.data.datasets import load_yolo

    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise DatasetError("dataset not found: %s" % path,
                           hint="check --data: a YOLO folder (data.yaml), a COCO or a Pascal VOC folder")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DatasetError("unknown annotation format %r" % fmt, hint="use one of: %s" % ", ".join(FORMATS))
    if fmt == "yolo":
        samples, names = load_yolo(path, split, strict=strict)
    elif fmt == "voc":
        samples, names = load_voc(path, split)
    else:
        json_path = _coco_file(path, split)
        base = path if os.path.isdir(path) else os.path.dirname(path)
        if os.path.basename(base) == "annotations":
            base = os.path.dirname(base)
        images_dir = _coco_images_dir(base, json_path, split)
        samples, names = load_coco(json_path, images_dir)
    return select_classes(samples, names, classes)
