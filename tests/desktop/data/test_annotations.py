"""COCO JSON and Pascal VOC XML readers on small written files, every error they name, --classes."""

import json
import os

import cv2
import numpy as np
import pytest

from edgekit.desktop.data.annotations import detect_format, load_coco, load_detection, load_voc, select_classes
from edgekit.errors import DatasetError


def _image(path, w=40, h=30):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((h, w, 3), 90, np.uint8))


def write_coco(root, split="train", anns=None, images=None, categories=None, layout="coco"):
    """COCO layout: annotations/instances_SPLIT.json + images/SPLIT/; roboflow: SPLIT/_annotations.coco.json."""
    images = images if images is not None else [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
                                                 {"id": 2, "file_name": "b.png", "width": 40, "height": 30}]
    categories = categories if categories is not None else [{"id": 3, "name": "car"}, {"id": 7, "name": "person"}]
    anns = anns if anns is not None else [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [4, 6, 10, 12], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [20, 0, 20, 30], "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 8, 8], "iscrowd": 1}]
    if layout == "coco":
        img_dir, json_path = os.path.join(root, "images", split), os.path.join(root, "annotations",
                                                                                "instances_%s.json" % split)
    else:
        img_dir = os.path.join(root, split)
        json_path = os.path.join(img_dir, "_annotations.coco.json")
    for im in images:
        _image(os.path.join(img_dir, im["file_name"]), int(im.get("width", 40)), int(im.get("height", 30)))
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w") as handle:
        json.dump({"images": images, "annotations": anns, "categories": categories}, handle)
    return json_path


VOC_XML = """<annotation><filename>{name}</filename><size><width>40</width><height>30</height><depth>3</depth></size>
{objects}</annotation>"""
VOC_OBJ = "<object><name>{cls}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>" \
          "</bndbox></object>"


def write_voc(root, items, splits=None):
    """items: {image_id: [(cls, x1, y1, x2, y2)]} -> VOC folder; splits: {split: [ids]}."""
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
    for image_id, objects in items.items():
        _image(os.path.join(root, "JPEGImages", image_id + ".jpg"))
        body = "".join(VOC_OBJ.format(cls=c, x1=a, y1=b, x2=x, y2=y) for c, a, b, x, y in objects)
        with open(os.path.join(root, "Annotations", image_id + ".xml"), "w") as handle:
            handle.write(VOC_XML.format(name=image_id + ".jpg", objects=body))
    for split, ids in (splits or {"train": list(items), "val": list(items)}).items():
        with open(os.path.join(root, "ImageSets", "Main", split + ".txt"), "w") as handle:
            handle.write("\n".join(ids) + "\n")
    return str(root)


# -- COCO ----------------------------------------------------------------------------------------
def test_coco_reads_boxes_names_from_categories_and_skips_crowds(tmp_path):
    path = write_coco(str(tmp_path))
    samples, names = load_coco(path, str(tmp_path / "images" / "train"))
    assert names == ["car", "person"]                        # category id order: 3, 7
    (a, la), (b, lb) = samples
    assert a.endswith("a.png") and b.endswith("b.png")
    np.testing.assert_allclose(la, [[1, 9 / 40, 12 / 30, 10 / 40, 12 / 30], [0, 30 / 40, 0.5, 0.5, 1.0]], atol=1e-6)
    assert lb.shape == (0, 5)                               # the crowd region is not an object


def test_coco_roboflow_layout_and_format_detection(tmp_path):
    write_coco(str(tmp_path), "train", layout="roboflow")
    write_coco(str(tmp_path), "valid", layout="roboflow")
    assert detect_format(str(tmp_path)) == "coco"
    samples, names = load_detection(str(tmp_path), "val")
    assert len(samples) == 2 and names == ["car", "person"]


@pytest.mark.parametrize("change, message", [
    (dict(anns=[{"id": 9, "image_id": 1, "category_id": 5, "bbox": [1, 1, 2, 2]}]),
     r"instances_train.json: image a.png has an annotation with unknown category 5"),
    (dict(anns=[{"id": 9, "image_id": 1, "category_id": 3, "bbox": [30, 10, 20, 5]}]),
     r"image a.png has a box \[30, 10, 50, 15\] outside the image \(40x30\)"),
    (dict(anns=[{"id": 9, "image_id": 4, "category_id": 3, "bbox": [1, 1, 2, 2]}]),
     r"annotation 9 refers to image id 4, which is not in images"),
    (dict(anns=[{"id": 9, "image_id": 1, "category_id": 3, "bbox": [1, 1, 0, 2]}]),
     r"image a.png has an empty box"),
    (dict(anns=[{"id": 9, "image_id": 1, "category_id": 3}]), r"image a.png has an annotation without bbox"),
    (dict(categories=[]), r"has no categories"),
])
def test_coco_errors_name_file_image_and_problem(tmp_path, change, message):
    path = write_coco(str(tmp_path), **change)
    with pytest.raises(DatasetError, match=message):
        load_coco(path, str(tmp_path / "images" / "train"))


def test_coco_missing_image_and_bad_json(tmp_path):
    path = write_coco(str(tmp_path))
    os.remove(str(tmp_path / "images" / "train" / "b.png"))
    with pytest.raises(DatasetError, match=r"instances_train.json: image b.png not found"):
        load_coco(path, str(tmp_path / "images" / "train"))
    with open(path, "w") as handle:
        handle.write("{not json")
    with pytest.raises(DatasetError, match="is not valid JSON"):
        load_coco(path)
    with open(path, "w") as handle:
        json.dump({"images": []}, handle)
    with pytest.raises(DatasetError, match="is not a COCO detection file"):
        load_coco(path)


def test_coco_box_within_tolerance_is_clipped(tmp_path):
    path = write_coco(str(tmp_path), anns=[{"id": 1, "image_id": 1, "category_id": 3, "bbox": [30, 20, 11, 11]}])
    samples, _ = load_coco(path, str(tmp_path / "images" / "train"))
    cls, cx, cy, w, h = samples[0][1][0]
    assert cx + w / 2 == pytest.approx(1.0) and cy + h / 2 == pytest.approx(1.0)


# -- VOC -----------------------------------------------------------------------------------------
def test_voc_reads_boxes_and_names_from_the_files(tmp_path):
    root = write_voc(tmp_path, {"001": [("dog", 1, 1, 20, 10), ("cat", 11, 11, 40, 30)], "002": [("dog", 5, 5, 9, 9)]},
                     {"train": ["001"], "val": ["002"]})
    assert detect_format(root) == "voc"
    samples, names = load_voc(root, "train")
    assert names == ["cat", "dog"]                  # from every split's XML, sorted
    path, labels = samples[0]
    assert path.endswith("001.jpg")
    np.testing.assert_allclose(labels[0], [1, 10 / 40, 5 / 30, 20 / 40, 10 / 30], atol=1e-6)   # 1-based inclusive
    np.testing.assert_allclose(labels[1], [0, 25 / 40, 20 / 30, 30 / 40, 20 / 30], atol=1e-6)
    val, val_names = load_detection(root, "val")
    assert len(val) == 1 and val_names == names


@pytest.mark.parametrize("objects, message", [
    ([("dog", 1, 1, 50, 10)], r"001.xml: image 001.jpg has a box \[0, 0, 50, 10\] outside the image \(40x30\)"),
    ([("dog", 10, 1, 5, 10)], r"001.xml: image 001.jpg has an empty box"),
    ([("dog", "a", 1, 5, 10)], r"<xmin> is not a number"),
])
def test_voc_box_errors(tmp_path, objects, message):
    root = write_voc(tmp_path, {"001": objects})
    with pytest.raises(DatasetError, match=message):
        load_voc(root, "train")


def test_voc_missing_image_listing_and_bad_xml(tmp_path):
    root = write_voc(tmp_path, {"001": [("dog", 1, 1, 5, 5)]}, {"train": ["001", "404"]})
    with pytest.raises(DatasetError, match=r"train.txt lists 404, but 404.xml is not in"):
        load_voc(root, "train")
    with pytest.raises(DatasetError, match=r"has no ImageSets/Main/val.txt"):
        load_voc(root, "val")
    os.remove(os.path.join(root, "JPEGImages", "001.jpg"))
    with pytest.raises(DatasetError, match=r"001.xml: image 001.jpg not found in"):
        load_voc(root, "train")
    with open(os.path.join(root, "Annotations", "001.xml"), "w") as handle:
        handle.write("<annotation>")
    with pytest.raises(DatasetError, match="001.xml is not valid XML"):
        load_voc(root, "train")


# -- the class subset and the entry point -------------------------------------------------------------
def test_classes_subset_keeps_order_and_drops_other_boxes(tmp_path):
    root = write_voc(tmp_path, {"001": [("dog", 1, 1, 20, 10), ("cat", 11, 11, 40, 30), ("cow", 2, 2, 4, 4)]})
    samples, names = load_detection(root, "train", classes="dog,cat")
    assert names == ["dog", "cat"]
    assert samples[0][1][:, 0].tolist() == [0, 1]
    with pytest.raises(DatasetError, match=r"--classes: 'horse' not in the dataset's classes \(cat, cow, dog\)"):
        select_classes(*load_voc(root, "train"), classes=["horse"])


def test_unknown_layout_is_named(tmp_path):
    with pytest.raises(DatasetError, match="cannot tell the annotation format"):
        load_detection(str(tmp_path), "train")


def test_train_takes_coco_with_classes(tmp_path):
    from edgekit.desktop.train.tasks import TASKS

    write_coco(str(tmp_path), "train")
    write_coco(str(tmp_path), "val")
    train, val, labels = TASKS["detection"].list_data(str(tmp_path), classes="person")
    assert labels == ["person"] and len(train) == 2
    assert train[0][1][:, 0].tolist() == [0] and len(train[1][1]) == 0
