"""Datasets: the shapes writer, ImageFolder and YOLO readers with every error case, augmentation,
and the promise that training preprocessing is the runtime's Preprocessor."""

import os

import numpy as np
import pytest

from edgekit import cli
from edgekit.desktop.data.datasets import ImageDataset, list_image_folder, load_yolo, make_shapes
from edgekit.errors import DatasetError


def tree_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = handle.read()
    return out


@pytest.fixture(scope="module")
def yolo_root(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("yolo") / "shapes", "detection", train=6, val=4, size=48, seed=3)


def copy_tree(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return str(dst)


# -- shapes ------------------------------------------------------------------------------------------
def test_shapes_are_deterministic_per_seed(tmp_path):
    a = make_shapes(tmp_path / "a", "classification", train=8, val=4, size=32, seed=1)
    b = make_shapes(tmp_path / "b", "classification", train=8, val=4, size=32, seed=1)
    c = make_shapes(tmp_path / "c", "classification", train=8, val=4, size=32, seed=2)
    assert tree_bytes(a) == tree_bytes(b)
    assert tree_bytes(a) != tree_bytes(c)
    samples, names = list_image_folder(os.path.join(a, "train"))
    assert len(samples) == 8 and set(names) <= {"circle", "square", "triangle", "star", "cross"}


def test_shapes_cache_is_reused_and_regenerated_on_new_parameters(tmp_path):
    root = make_shapes(tmp_path / "s", "classification", train=4, val=2, size=32, seed=0)
    marker = os.path.join(root, ".edgekit-shapes.json")
    stamp = os.stat(marker).st_mtime_ns
    make_shapes(root, "classification", train=4, val=2, size=32, seed=0)
    assert os.stat(marker).st_mtime_ns == stamp
    make_shapes(root, "classification", train=5, val=2, size=32, seed=0)
    assert len(list_image_folder(os.path.join(root, "train"))[0]) == 5


def test_shapes_detection_is_yolo_with_several_objects(yolo_root):
    samples, names = load_yolo(yolo_root, "train")
    assert len(samples) == 6 and names[:4] == ["circle", "square", "triangle", "star"]
    counts = [len(labels) for _, labels in samples]
    assert max(counts) >= 2 and min(counts) >= 1
    for _, labels in samples:
        assert labels.dtype == np.float32 and labels.shape[1] == 5
        assert (labels[:, 1:] > 0).all() and (labels[:, 1:] <= 1).all()
    val, _ = load_yolo(os.path.join(yolo_root, "data.yaml"), "val")
    assert len(val) == 4


# -- ImageFolder errors ------------------------------------------------------------------------------
def write_png(path, size=(8, 8)):
    import cv2

    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    cv2.imwrite(str(path), np.full(size + (3,), 127, np.uint8))


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        list_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        list_image_folder(tmp_path / "flat")
    write_png(tmp_path / "ds" / "cat" / "1.png")
    (tmp_path / "ds" / "dog").mkdir()
    with pytest.raises(DatasetError, match="dog holds no images"):
        list_image_folder(tmp_path / "ds")
    write_png(tmp_path / "ds" / "dog" / "1.png")
    write_png(tmp_path / "ds" / "loose.png")
    samples, names = list_image_folder(tmp_path / "ds")           # loose image: warned, skipped
    assert names == ["cat", "dog"] and len(samples) == 2
    with pytest.raises(DatasetError, match="1 images without a class folder"):
        list_image_folder(tmp_path / "ds", strict=True)
    write_png(tmp_path / "val" / "bird" / "1.png")
    with pytest.raises(DatasetError, match="'bird' that the train split lacks"):
        list_image_folder(tmp_path / "val", class_names=names)


# -- YOLO errors -------------------------------------------------------------------------------------
def label_file(root, split="train", name="00000"):
    return os.path.join(root, "labels", split, name + ".txt")


@pytest.mark.parametrize("content, match", [
    ("0 0.5 0.5 0.2\n", r"00000.txt line 1: expected 5 fields"),
    ("0 0.5 0.5 0.2 0.2\n1 0.5 x 0.2 0.2\n", r"00000.txt line 2: not a number"),
    ("7 0.5 0.5 0.2 0.2\n", r"line 1: class 7 out of range 0..4"),
    ("1.5 0.5 0.5 0.2 0.2\n", r"class 1.5 out of range"),
    ("0 1.5 0.5 0.2 0.2\n", r"line 1: box .* is not normalised"),
    ("0 0.5 0.5 0 0.2\n", r"not normalised"),
])
def test_malformed_labels_name_file_and_line(yolo_root, tmp_path, content, match):
    root = copy_tree(yolo_root, tmp_path / "y")
    with open(label_file(root), "w") as handle:
        handle.write(content)
    with pytest.raises(DatasetError, match=match):
        load_yolo(root, "train")


def test_yolo_config_errors(yolo_root, tmp_path):
    with pytest.raises(DatasetError, match="data.yaml"):
        load_yolo(tmp_path, "train")
    root = copy_tree(yolo_root, tmp_path / "y")
    yaml_path = os.path.join(root, "data.yaml")
    with pytest.raises(DatasetError, match="no 'test' split"):
        load_yolo(root, "test")
    for text, match in [("path: .\ntrain: images/train\nval: images/val\n", "no class names"),
                        ("train: images/nope\nval: images/val\nnames: [a]\n", "train split folder not found"),
                        ("train: images/train\nnames: [a, b]\nnc: 3\n", "nc is 3 but 2 names"),
                        ("train: [\n", "not valid YAML")]:
        with open(yaml_path, "w") as handle:
            handle.write(text)
        with pytest.raises(DatasetError, match=match):
            load_yolo(root, "train")
    empty = tmp_path / "empty"
    (empty / "images" / "train").mkdir(parents=True)
    (empty / "data.yaml").write_text("train: images/train\nnames: [a]\n")
    with pytest.raises(DatasetError, match="no images in the train split"):
        load_yolo(empty, "train")


def test_orphans_are_counted_and_strict_makes_them_fatal(yolo_root, tmp_path, capsys):
    root = copy_tree(yolo_root, tmp_path / "y")
    os.remove(label_file(root, name="00001"))
    os.remove(label_file(root, name="00002"))
    write_png(os.path.join(root, "images", "train", "zz.png"))      # also unlabelled -> 3
    with open(label_file(root, name="ghost"), "w") as handle:        # a label without its image
        handle.write("0 0.5 0.5 0.1 0.1\n")
    samples, _ = load_yolo(root, "train")
    err = capsys.readouterr().err
    assert "3 images without a label file" in err and "1 label files without an image" in err
    assert len(samples) == 4
    with pytest.raises(DatasetError, match="3 images without a label file"):
        load_yolo(root, "train", strict=True)
    for name in ("00001", "00002"):
        open(label_file(root, name=name), "w").close()               # empty file = no objects: fine
    os.remove(os.path.join(root, "images", "train", "zz.png"))
    with pytest.raises(DatasetError, match="1 label files without an image"):
        load_yolo(root, "train", strict=True)


def test_unreadable_image_is_a_dataset_error(tmp_path):
    from edgekit.vision.preprocess import Preprocessor

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image .*bad.png"):
        ImageDataset([str(bad)], Preprocessor((8, 8)), labels=[0])


# -- through the CLI: one line, exit 2 -------------------------------------------------------------
def cli_error(capsys, argv):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_dataset_errors_exit_2_with_one_line_through_the_cli(yolo_root, tmp_path, capsys):
    root = copy_tree(yolo_root, tmp_path / "y")
    with open(label_file(root), "w") as handle:
        handle.write("9 0.5 0.5 0.2 0.2\n")
    out = tmp_path / "out"
    cases = [
        (["train", "shapes-detector", "--data", root], "00000.txt line 1: class 9 out of range"),
        (["train", "shapes-classifier", "--data", str(tmp_path / "nothing")], "has no train/ folder"),
        (["train", "shapes-detector", "--data", str(tmp_path / "nothing")], "(data.yaml)"),
        (["train", "no-such-recipe", "--data", "shapes"], "recipe 'no-such-recipe' not found"),
        (["train", "shapes-classifier", "--data", "shapes", "--resume"], "last.pt not found"),
        (["train", "shapes-classifier", "--data", "shapes", "--device", "cuda"], "no CUDA GPU"),
    ]
    for argv, message in cases:
        code, err = cli_error(capsys, argv + ["--out", str(out), "--no-progress"])
        assert code == 2, argv
        assert len(err) == 1 and message in err[0] and err[0].startswith("edgekit train: error:"), err
    assert not out.exists()                                          # nothing written on error


def test_strict_orphans_exit_2_through_the_cli(yolo_root, tmp_path, capsys):
    root = copy_tree(yolo_root, tmp_path / "y")
    os.remove(label_file(root, "val", "00000"))
    code, err = cli_error(capsys, ["train", "shapes-detector", "--data", root, "--strict",
                                   "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and "1 images without a label file in the val split" in err[-1]
    assert len([line for line in err if "error" in line]) == 1


# -- augmentation ------------------------------------------------------------------------------------
def test_hflip_and_affine_keep_boxes_on_the_object():
    from edgekit.desktop.data.augment import build_augment
    from edgekit.desktop.data.shapes import draw_shape

    image = np.zeros((64, 64, 3), np.uint8)
    box = draw_shape(image, "square", 20, 30, 8, 0.0, (255, 255, 255))
    boxes = np.array([[2, *box]], np.float32)
    for spec in ({"hflip": 1.0}, {"vflip": 1.0}, {"scale": [0.7, 1.3], "translate": 0.2}):
        aug = build_augment(spec)
        for seed in range(5):
            out, b = aug(image, boxes, np.random.default_rng(seed))
            if not len(b):
                continue
            _, x1, y1, x2, y2 = b[0]
            ys, xs = np.nonzero(out[:, :, 0] > 127)
            assert abs(xs.min() - x1) <= 3 and abs(xs.max() + 1 - x2) <= 3, spec
            assert abs(ys.min() - y1) <= 3 and abs(ys.max() + 1 - y2) <= 3, spec
    from edgekit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown augmentation 'blur'"):
        build_augment({"blur": 1})


# -- training preprocessing == runtime preprocessing --------------------------------------------------
@pytest.mark.parametrize("recipe", ["shapes-classifier", "shapes-detector"])
def test_training_sample_equals_runtime_preprocessed_frame(tmp_path, recipe):
    import cv2

    from edgekit.desktop.train.recipe import load_recipe
    from edgekit.desktop.train.run import build_meta
    from edgekit.meta import ModelMeta
    from edgekit.vision.preprocess import Preprocessor, read_image

    rec = load_recipe(recipe)
    meta = build_meta(rec, ["a", "b"])
    # a non-square frame of another size, so resize / letterbox really act
    rng = np.random.default_rng(0)
    path = str(tmp_path / "frame.png")
    cv2.imwrite(path, rng.integers(0, 255, size=(50, 90, 3), dtype=np.uint8))
    boxes = [np.array([[1, 0.5, 0.5, 0.2, 0.3]], np.float32)] if rec["task"] == "detection" else None
    ds = ImageDataset([path], Preprocessor.from_meta(meta), labels=[1], boxes=boxes, augment=None)
    train_tensor = ds[0][0].numpy()
    # what the device does: metadata as stored in the checkpoint/ONNX (JSON round trip) -> Preprocessor
    runtime_meta = ModelMeta.from_json(meta.to_json())
    runtime_tensor, info = Preprocessor.from_meta(runtime_meta)(read_image(path))
    assert train_tensor.shape == runtime_tensor.shape[1:]
    assert np.array_equal(train_tensor, runtime_tensor[0])
    if boxes is not None:                                   # targets use the same letterbox mapping
        _, target, _ = ds.sample(0)
        frame_box = ds.frame_boxes(0)[:, 1:]
        np.testing.assert_allclose(info.to_frame(target[:, 1:]), frame_box, atol=1e-3)


def test_real_process_exit_code_and_single_line(yolo_root, tmp_path):
    import subprocess
    import sys

    root = copy_tree(yolo_root, tmp_path / "y")
    with open(label_file(root, "val", "00001"), "a") as handle:
        handle.write("0 0.5 0.5\n")
    proc = subprocess.run([sys.executable, "-m", "edgekit", "train", "shapes-detector", "--data", root,
                           "--out", str(tmp_path / "o")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "labels/val/00001.txt line" in lines[0] and "expected 5 fields" in lines[0]
    assert not (tmp_path / "o").exists()
