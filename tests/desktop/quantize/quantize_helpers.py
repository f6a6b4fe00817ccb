"""Tiny models and images for the quantize tests (built here: no downloads, a few KB each).

The classifier sees which colour channel dominates a 32x32 image: classes red/green/blue. Its
weights are set by hand so the answer is certain and robust to INT8 (logit gaps of several units).
``outlier=True`` adds a channel with a huge range to the first layer's output: per-tensor INT8 then
crushes the small channels the decision rests on, the classic case for keeping a layer in FP32.
"""

import os

import cv2
import numpy as np

LABELS = ["red", "green", "blue"]          # model output order (RGB channel order)
BGR_INDEX = {"red": 2, "green": 1, "blue": 0}


def build_classifier(path, outlier=False, with_meta=True, opset=13):
    import onnx
    import torch

    from edgekit.meta import ModelMeta, attach_to_onnx

    torch.manual_seed(0)
    conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
    conv2 = torch.nn.Conv2d(6, 6, 3, padding=1)
    fc = torch.nn.Linear(6, 3)
    with torch.no_grad():
        for layer in (conv1, conv2, fc):
            layer.weight.mul_(0.05)
            layer.bias.zero_()
        for c in range(3):
            conv1.weight[c].zero_()
            conv1.weight[c, c, 1, 1] = 1.0
            conv2.weight[c].zero_()
            conv2.weight[c, c, 1, 1] = 1.0
        if outlier:
            conv1.weight[3].zero_()
            conv1.weight[3, :, 1, 1] = 2000.0
            conv2.weight[:, 3].zero_()
        fc.weight.zero_()
        for c in range(3):
            fc.weight[c, c] = 10.0
    model = torch.nn.Sequential(conv1, torch.nn.ReLU(), conv2, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), fc).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), path, input_names=["images"], output_names=["logits"],
                      opset_version=opset, dynamo=False)
    if with_meta:
        proto = onnx.load(path)
        meta = ModelMeta(task="classification", labels=LABELS,
                         input={"name": "images", "shape": [1, 3, 32, 32]},
                         preprocess={"color": "RGB", "resize": "stretch", "mean": [0, 0, 0], "std": [1, 1, 1]},
                         decoder={"type": "classification", "top_k": 3})
        attach_to_onnx(proto, meta)
        onnx.save(proto, path)
    return path


def colour_image(label, rng, size=40):
    image = rng.randint(0, 70, size=(size, size, 3)).astype(np.uint8)
    image[:, :, BGR_INDEX[label]] = rng.randint(170, 256, size=(size, size))
    return image


def write_images(folder, count, seed=0, labelled=False, names=LABELS):
    """count images per class; ImageFolder layout when labelled, else one flat folder."""
    rng = np.random.RandomState(seed)
    for label in names:
        sub = os.path.join(folder, label) if labelled else folder
        os.makedirs(sub, exist_ok=True)
        for i in range(count):
            cv2.imwrite(os.path.join(sub, "%s_%03d.png" % (label, i)), colour_image(label, rng))
    return folder
