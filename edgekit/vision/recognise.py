"""Recognising third-party detector ONNX files that carry no edgekit block (device side, no onnx needed).

``recognise_onnx(path) -> ModelMeta or None`` reads the file's ``metadata_props`` and its graph inputs and
outputs (names and shapes, from the protobuf wire format) and asks each decoder of
``edgekit.vision.decoders.DECODERS`` that has a ``recognise`` entry, in registration order: the
Ultralytics metadata first (``names``, ``stride``, ``imgsz``, ``head``), then output signatures (names,
ranks, shapes: YOLOX, GFL heads, SSD, torchvision). The first match wins; ``meta.source["recognised"]``
says what matched, so ``edgekit inspect`` and ``edgekit serve`` can tell the user. A file nothing matches
gets None (the caller asks for ``--meta FILE.yaml``): nothing is guessed beyond a format's own
conventions (its preprocessing, its strides), and each one is written down in docs/third-party-models.md.

A recogniser is ``fn(props, inputs, outputs) -> ModelMeta or None`` with ``inputs``/``outputs`` lists of
(name, shape), dims ints or ``dim_param`` strings.
"""

from edgekit.meta import ModelMeta, read_onnx_metadata_props
from edgekit.registry import load_target
from edgekit.vision.decoders import DECODERS

COCO80 = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
          "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
          "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
          "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
          "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
          "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
          "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
          "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
          "teddy bear", "hair drier", "toothbrush"]


def coco91():
    """torchvision's COCO category list: background at 0 and "N/A" for the ids COCO left unused."""
    out = ["__background__"] + list(COCO80)
    for index in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83):
        out.insert(index, "N/A")
    return out


def default_labels(count):
    """(labels, note): COCO's names for 80 classes (what every public checkpoint of these formats is
    trained on), else class0, class1... -- the note says which, and that --meta gives real names."""
    if count == 80:
        return list(COCO80), "labels: COCO's 80 names (80 classes; give others with --meta FILE.yaml)"
    return ["class%d" % i for i in range(count)], "labels: class0..class%d (give names with --meta FILE.yaml)" % (
        count - 1)


def fixed_hw(shape, rank=4):
    """(H, W) of an image input shape when both are fixed ints, else None."""
    if not shape or len(shape) != rank:
        return None
    h, w = shape[-2], shape[-1]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    return None


def build_meta(labels, input_name, hw, preprocess, decoder, framework, how, layout="NCHW"):
    shape = [3, hw[0], hw[1]] if layout == "CHW" else [1, 3, hw[0], hw[1]]
    return ModelMeta(task="detection", labels=labels,
                     input={"name": input_name, "shape": shape, "layout": layout, "dtype": "float32"},
                     preprocess=preprocess, decoder=decoder,
                     source={"framework": framework, "recognised": how})


def recognisers():
    """(decoder name, function) for every decoder with a ``recognise`` entry, in registration order."""
    out = []
    for name in DECODERS:
        target = DECODERS.get(name, "recognise")
        if target:
            out.append((name, load_target(target, what="recogniser of decoder %s" % name)))
    return out


def recognise(props, inputs, outputs):
    seen = set()
    for _name, function in recognisers():
        if id(function) in seen:
            continue
        seen.add(id(function))
        meta = function(props, inputs, outputs)
        if meta is not None:
            return meta
    return None


def recognise_onnx(path):
    from edgekit.vision.yolo import read_onnx_io_shapes

    props = read_onnx_metadata_props(path)
    inputs, outputs = read_onnx_io_shapes(path)
    return recognise(props, inputs, outputs)
