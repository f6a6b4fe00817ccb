"""Third-party detector formats as ONNX files built here, recognised and served without edgekit metadata.

- Hand-built torch heads with each format's exact output layout (YOLOX raw and decoded, NanoDet-Plus'
  single output, PicoDet's per-level outputs, jetson-inference's SSD ``scores``/``boxes``), exported with
  ``torch.onnx.export(dynamo=False, opset 13)``. Random weights; each head's output is ``0 * head + K``
  where K holds known boxes encoded the format's way (tests/vision/test_formats.py), so the boxes that come
  back through ONNX Runtime, the decoder and the letterbox/stretch undo are checked to 1e-3 source pixels.
- torchvision's real ``ssdlite320_mobilenet_v3_large`` (weights=None, weights_backbone=None), exported with
  its post-processing; its ONNX boxes are compared with the eager model's.
- Ultralytics' real YOLOv8n / YOLO11n / YOLOv10n / YOLO26n / RT-DETR-l built from their yaml (random
  weights, nothing downloaded) and exported by Ultralytics itself (metadata_props written by it), when the
  ``ultralytics`` package is installed.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from edgekit.commands.inspect import render  # noqa: E402
from edgekit.desktop.export.inspect import inspect_model  # noqa: E402
from edgekit.meta import read_meta  # noqa: E402
from edgekit.predictor import Predictor  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
_spec = importlib.util.spec_from_file_location("formats_arrays", os.path.join(ROOT, "tests", "vision", "test_formats.py"))
F = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(F)
NC = len(F.LABELS)
NUMBERED = ["class%d" % i for i in range(NC)]


def conv(cin, cout, stride):
    return torch.nn.Conv2d(cin, cout, 3, stride, 1)


class Pyramid(torch.nn.Module):
    """A tiny backbone: feature maps at strides 8, 16, 32 (and 64), ceil-sized like the real ones."""

    def __init__(self, levels):
        super().__init__()
        self.stem = conv(3, 8, 8)
        self.down = torch.nn.ModuleList([conv(8, 8, 2) for _ in range(levels - 1)])

    def forward(self, x):
        feats = [torch.relu(self.stem(x))]
        for layer in self.down:
            feats.append(torch.relu(layer(feats[-1])))
        return feats


class YoloxHead(torch.nn.Module):
    """YOLOX: per level reg (4), obj (1), cls (C) convs; eval cat [reg, obj.sigmoid, cls.sigmoid], flatten, permute."""

    def __init__(self, known):
        super().__init__()
        self.backbone = Pyramid(3)
        self.reg = torch.nn.ModuleList([torch.nn.Conv2d(8, 4, 1) for _ in range(3)])
        self.obj = torch.nn.ModuleList([torch.nn.Conv2d(8, 1, 1) for _ in range(3)])
        self.cls = torch.nn.ModuleList([torch.nn.Conv2d(8, NC, 1) for _ in range(3)])
        self.register_buffer("known", torch.from_numpy(known))

    def forward(self, x):
        outs = [torch.cat([r(f), o(f).sigmoid(), c(f).sigmoid()], 1).flatten(2)
                for f, r, o, c in zip(self.backbone(x), self.reg, self.obj, self.cls)]
        return torch.cat(outs, 2).permute(0, 2, 1) * 0 + self.known


class GflHead(torch.nn.Module):
    """NanoDet-Plus (one output: [cls.sigmoid, reg] per level, flattened and permuted) or PicoDet (per level
    (B, A_l, C) sigmoid scores then (B, A_l, 32) distributions, all scores first)."""

    def __init__(self, known_scores, known_dists, per_level):
        super().__init__()
        self.backbone = Pyramid(4)
        self.cls = torch.nn.ModuleList([torch.nn.Conv2d(8, NC, 1) for _ in range(4)])
        self.reg = torch.nn.ModuleList([torch.nn.Conv2d(8, 32, 1) for _ in range(4)])
        self.per_level = per_level
        self.register_buffer("scores", torch.from_numpy(known_scores))
        self.register_buffer("dists", torch.from_numpy(known_dists))

    def forward(self, x):
        feats = self.backbone(x)
        cls = [c(f).sigmoid().flatten(2).permute(0, 2, 1) for f, c in zip(feats, self.cls)]
        reg = [r(f).flatten(2).permute(0, 2, 1) for f, r in zip(feats, self.reg)]
        if not self.per_level:
            return torch.cat([torch.cat(cls, 1), torch.cat(reg, 1)], 2) * 0 + torch.cat([self.scores, self.dists], 2)
        outs, start = [], 0
        for c in cls:
            outs.append(c * 0 + self.scores[:, start:start + c.shape[1]])
            start += c.shape[1]
        start = 0
        for r in reg:
            outs.append(r * 0 + self.dists[:, start:start + r.shape[1]])
            start += r.shape[1]
        return tuple(outs)


class SsdHead(torch.nn.Module):
    """pytorch-ssd in test mode: confidences softmaxed over classes, locations decoded to corner boxes."""

    def __init__(self, known_scores, known_boxes):
        super().__init__()
        self.backbone = Pyramid(1)
        self.conf = torch.nn.Conv2d(8, 2 * (NC + 1), 1)
        self.loc = torch.nn.Conv2d(8, 2 * 4, 1)
        self.register_buffer("known_scores", torch.from_numpy(known_scores))
        self.register_buffer("known_boxes", torch.from_numpy(known_boxes))

    def forward(self, x):
        f = self.backbone(x)[0]
        conf = self.conf(f).permute(0, 2, 3, 1).reshape(x.shape[0], -1, NC + 1)
        loc = self.loc(f).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4)
        return torch.softmax(conf, dim=2) * 0 + self.known_scores, loc * 0 + self.known_boxes


class RtdetrHead(torch.nn.Module):
    """Ultralytics <= 8.3 RT-DETR export layout: (B, 300, 4 + C), cx, cy, w, h normalised, sigmoid scores."""

    def __init__(self, known):
        super().__init__()
        self.backbone = Pyramid(3)
        self.query = torch.nn.Linear(8, 300 * (4 + NC))
        self.register_buffer("known", torch.from_numpy(known))

    def forward(self, x):
        pooled = self.backbone(x)[-1].mean(dim=(2, 3))
        rows = self.query(pooled).reshape(x.shape[0], 300, 4 + NC)
        return torch.cat([rows[..., :4].sigmoid(), rows[..., 4:].sigmoid()], 2) * 0 + self.known


def export(module, path, hw, input_name="images", output_names=("output",)):
    module.eval()
    torch.onnx.export(module, torch.zeros(1, 3, hw[0], hw[1]), str(path), dynamo=False, opset_version=13,
                      input_names=[input_name], output_names=list(output_names))
    return str(path)


def serve(path, *extra):
    """`edgekit serve --model X.onnx --source synthetic://... --frames 5 --json` through the real CLI."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "edgekit", "serve", "--model", path, "--source",
                           "synthetic://?width=160&height=120", "--frames", "5", "--json"] + list(extra),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 5, summary
    return summary, proc.stderr


def recognised_and_checked(path, decoder, labels=NUMBERED, first=0):
    meta = read_meta(path)
    assert meta.decoder["type"] == decoder
    assert "output signature" in meta.source["recognised"]
    with Predictor.open(path, backend="onnxruntime") as model:
        F.check(model.predict(F.FRAME), labels=labels, first=first)
    return meta


def test_yolox_raw_export_is_recognised_and_decoded(tmp_path):
    meta = F.meta_for({"type": "yolox"}, pad_position="top_left", color="BGR")
    _, boxes = F.to_input(meta)
    path = export(YoloxHead(F.yolox_rows(boxes, (64, 64), decoded=False)), tmp_path / "yolox_raw.onnx", (64, 64))
    meta = recognised_and_checked(path, "yolox")
    assert meta.preprocess["std"] == [1.0 / 255] * 3 and meta.decoder["decoded"] is False
    _, stderr = serve(path)
    assert "decoder yolox recognised from output signature" in stderr
    info = inspect_model(path)
    assert info["metadata"] is None and info["recognised"]["decoder"]["type"] == "yolox"
    assert "recognised as decoder yolox from output signature" in render(info)


def test_inspect_says_when_nothing_is_recognised(tmp_path):
    path = export(torch.nn.Sequential(conv(3, 4, 2)), tmp_path / "plain.onnx", (32, 32))
    info = inspect_model(path)
    assert info["metadata"] is None and info["recognised"] is None
    assert "no known output signature" in render(info) and "--meta FILE.yaml" in render(info)


def test_yolox_decoded_export_serves_with_one_meta_flag(tmp_path):
    meta = F.meta_for({"type": "yolox", "decoded": True}, pad_position="top_left", color="BGR")
    _, boxes = F.to_input(meta)
    path = export(YoloxHead(F.yolox_rows(boxes, (64, 64), decoded=True)), tmp_path / "yolox_dec.onnx", (64, 64))
    yaml_path = tmp_path / "yolox.yaml"            # only what the signature cannot tell; the rest is recognised
    yaml_path.write_text("labels: [cat, dog, bird]\ndecoder: {decoded: true}\n")
    from edgekit.meta import load_meta_yaml

    meta = load_meta_yaml(str(yaml_path), model=path)
    assert meta.decoder["type"] == "yolox" and meta.decoder["decoded"] is True and meta.labels == F.LABELS
    assert meta.preprocess["pad_position"] == "top_left"
    with Predictor.open(path, backend="onnxruntime", meta=meta) as model:
        F.check(model.predict(F.FRAME))
    serve(path, "--meta", str(yaml_path))


@pytest.mark.parametrize("per_level", [False, True])
def test_gfl_exports_nanodet_plus_and_picodet(tmp_path, per_level):
    offset = 0.5 if per_level else 0.0
    meta = F.meta_for({"type": "gfl"}, resize="stretch", hw=(72, 72))
    _, boxes = F.to_input(meta)
    scores, dists, _ = F.gfl_arrays(boxes, (72, 72), offset)
    names = ["cls_%d" % s for s in (8, 16, 32, 64)] + ["reg_%d" % s for s in (8, 16, 32, 64)]
    path = export(GflHead(scores, dists, per_level), tmp_path / "gfl.onnx", (72, 72),
                  output_names=names if per_level else ("output",))
    meta = recognised_and_checked(path, "gfl")
    assert meta.source["framework"] == ("picodet" if per_level else "nanodet-plus")
    assert meta.decoder["cell_offset"] == offset
    if not per_level:
        serve(path)


def test_jetson_inference_ssd_layout(tmp_path):
    meta = F.meta_for({"type": "ssd"}, resize="stretch")
    _, boxes = F.to_input(meta)
    scores, out_boxes = F.ssd_arrays(boxes, (64, 64))
    path = export(SsdHead(scores, out_boxes), tmp_path / "ssd-mobilenet.onnx", (64, 64), input_name="input_0",
                  output_names=("scores", "boxes"))
    meta = recognised_and_checked(path, "ssd", labels=["BACKGROUND", "class1", "class2", "class3"], first=1)
    assert meta.preprocess["mean"] == [127.0 / 255] * 3
    serve(path)


@pytest.mark.slow
def test_torchvision_ssdlite_export(tmp_path):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4)
    model.eval()
    path = str(tmp_path / "ssdlite.onnx")
    image = torch.rand(3, 320, 320)
    torch.onnx.export(model, ([image],), path, dynamo=False, opset_version=13, input_names=["images"],
                      output_names=["boxes", "scores", "labels"])
    meta = read_meta(path)
    assert meta.decoder["type"] == "torchvision" and meta.input["layout"] == "CHW"
    assert meta.labels == list(tv.models.detection.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["categories"])
    # the decoder's boxes == the ONNX model's own boxes mapped back to the frame (random weights: compare what
    # comes out). Not compared with the eager model: its ONNX export keeps fewer boxes after NMS (192 of 204
    # here), a torchvision export matter, not the decoder's.
    frame = (np.random.RandomState(1).uniform(0, 255, (240, 160, 3))).astype(np.uint8)
    meta = meta.replace(decoder={"type": "torchvision", "score_threshold": 0.0, "max_detections": 1000})
    with Predictor.open(path, backend="onnxruntime", meta=meta) as runner:
        feed, info = runner.preprocess(frame)
        assert feed["images"].shape == (3, 320, 320)
        raw = runner.infer(feed)
        result = runner.postprocess(raw, info)
    got = np.array([d["box"] for d in result["detections"]], np.float32)
    order = np.argsort(-raw["scores"], kind="mergesort")
    want = raw["boxes"][order] / np.array([info.scale_x, info.scale_y, info.scale_x, info.scale_y], np.float32)
    want = np.clip(want, 0, [160, 240, 160, 240])
    assert got.shape == want.shape and got.shape[0] > 0
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert [d["index"] for d in result["detections"]] == raw["labels"][order].tolist()
    serve(path)


def test_rtdetr_ultralytics_83_layout_with_its_metadata_props(tmp_path):
    import onnx

    meta = F.meta_for({"type": "rtdetr"}, resize="stretch")
    _, boxes = F.to_input(meta)
    known = np.zeros((1, 300, 4 + NC), np.float32)
    known[0, :, 4:] = 0.01
    for i, ((cls, score, *_), box) in enumerate(zip(F.TRUTH, boxes)):
        known[0, 40 + i, :4] = F.xyxy_to_cxcywh(box) / 64.0
        known[0, 40 + i, 4 + cls] = score
    path = export(RtdetrHead(known), tmp_path / "rtdetr-l.onnx", (64, 64), output_names=("output0",))
    model = onnx.load(path)
    for key, value in {"description": "Ultralytics rtdetr-l model trained on coco.yaml", "author": "Ultralytics",
                       "version": "8.3.0", "stride": "32", "task": "detect", "batch": "1", "imgsz": "[64, 64]",
                       "names": repr(dict(enumerate(F.LABELS)))}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    meta = read_meta(path)
    assert meta.decoder["type"] == "rtdetr" and meta.decoder["columns"] == "scores"
    with Predictor.open(path, backend="onnxruntime") as runner:
        F.check(runner.predict(F.FRAME))


# -- Ultralytics' own exports ----------------------------------------------------------------------------
ULTRALYTICS_EXPORT = r"""
import sys
from ultralytics import RTDETR, YOLO
out = sys.argv[1]
for name, yaml, kw in [("yolov8n", "yolov8n.yaml", dict(imgsz=64)), ("yolo11n", "yolo11n.yaml", dict(imgsz=64)),
                       ("yolo11n-nms", "yolo11n.yaml", dict(imgsz=128, nms=True)),
                       ("yolov10n", "yolov10n.yaml", dict(imgsz=128, nms=False)),
                       ("yolo26n", "yolo26n.yaml", dict(imgsz=128, nms=False)),
                       ("rtdetr-l", "rtdetr-l.yaml", dict(imgsz=64, opset=16))]:
    model = (RTDETR if yaml.startswith("rtdetr") else YOLO)(yaml)
    kw.setdefault("opset", 13)
    path = model.export(format="onnx", simplify=False, dynamic=False, verbose=False, **kw)
    import shutil
    shutil.move(path, "%s/%s.onnx" % (out, name))
"""


@pytest.fixture(scope="module")
def ultralytics_dir(tmp_path_factory):
    pytest.importorskip("ultralytics")
    out = tmp_path_factory.mktemp("ultralytics")
    work = tmp_path_factory.mktemp("ultralytics-work")          # exports land here, then move to out
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(work / "cfg"), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", ULTRALYTICS_EXPORT, str(out)], cwd=str(work), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name, decoder, model", [
    ("yolov8n", "yolov8", "YOLOv8n"), ("yolo11n", "yolov8", "YOLO11n"), ("yolo11n-nms", "yolo_end2end", "YOLO11n"),
    ("yolov10n", "yolo_end2end", "YOLOv10n"),
    ("yolo26n", "yolo_end2end", "YOLO26n"), ("rtdetr-l", "rtdetr", "rtdetr-l")])
def test_ultralytics_exports_are_recognised(ultralytics_dir, name, decoder, model):
    path = str(ultralytics_dir / (name + ".onnx"))
    meta = read_meta(path)
    assert meta.decoder["type"] == decoder and meta.source["model"] == model
    assert "Ultralytics metadata_props" in meta.source["recognised"]
    assert meta.preprocess["resize"] == ("stretch" if decoder == "rtdetr" else "letterbox")
    meta = meta.replace(decoder=dict(meta.decoder, score_threshold=0.0))
    with Predictor.open(path, backend="onnxruntime", meta=meta) as runner:
        result = runner.predict(F.FRAME)
    boxes = np.array([d["box"] for d in result["detections"]]).reshape(-1, 4)
    # random weights: some boxes, inside the frame (nms=True bakes Ultralytics' conf 0.25 into the graph,
    # which random scores do not reach: nothing comes out of that one)
    assert (boxes.shape[0] > 0) == (name != "yolo11n-nms") and (boxes >= 0).all()
    assert (boxes[:, [0, 2]] <= 128).all() and (boxes[:, [1, 3]] <= 96).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolo11n", "yolov10n", "rtdetr-l"])
def test_ultralytics_exports_serve_unchanged_and_inspect_says_so(ultralytics_dir, name):
    path = str(ultralytics_dir / (name + ".onnx"))
    _, stderr = serve(path)
    assert "recognised from Ultralytics metadata_props" in stderr
    if name == "rtdetr-l":
        return                  # inspect counts RT-DETR-l's FLOPs for a minute: the metadata line is the same code
    text = render(inspect_model(path))
    assert "recognised as decoder %s" % read_meta(path).decoder["type"] in text
