"""Model registry and the edgekit checkpoint format (docs/desktop/train.md, "Outputs").

  build_model(name, **kwargs) -> nn.Module
  load_checkpoint(path) -> (model.eval(), ckpt dict)      ModelError on a bad file
  output_names(name) -> ["logits"] or ["heatmap", "regression"]

A checkpoint is a ``torch.save``d dict loadable with ``torch.load(path, weights_only=True)``:
  {"format": "edgekit-checkpoint/1", "arch": {"name", "kwargs"}, "state_dict", "meta" (ModelMeta
   dict), "output_names", "recipe", "epoch", "metrics"}  (last.pt adds "optimizer", "scheduler",
   "scaler", "rng", "history", "best" for --resume)
torchvision backbones are built with random weights; nothing is ever downloaded.
"""

import os

import torch
from torch import nn

from edgekit.errors import ModelError

FORMAT = "edgekit-checkpoint/1"


class TinyCNN(nn.Module):
    """Stride-2 stem, max-pools down to 1/8, three conv-bn-relu stages, global max-pool, linear.

    Global max-pooling (not average) lets a shape-part detector fire anywhere in the image: on the
    shapes set it learns several times faster than average pooling, whose signal the background dilutes.
    """

    def __init__(self, num_classes, width=16):
        super().__init__()
        c = int(width)

        def cbr(cin, cout, stride=1):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*cbr(3, c, 2), nn.MaxPool2d(2), *cbr(c, 2 * c), nn.MaxPool2d(2),
                                      *cbr(2 * c, 4 * c), *cbr(4 * c, 4 * c))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(4 * c, int(num_classes))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _tiny_centernet(num_classes, **kwargs):
    from edgekit.desktop.train.detector import TinyCenterNet

    return TinyCenterNet(num_classes, **kwargs)


def _torchvision(name):
    def build(num_classes, **kwargs):
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=int(num_classes), **kwargs)

    build.__name__ = name
    return build


def _backbone_detector(backbone):
    def build(num_classes, **kwargs):
        from edgekit.desktop.train.detectors import CenterNetDetector

        return CenterNetDetector(num_classes, backbone=backbone, **kwargs)

    build.__name__ = "centernet_" + backbone
    return build


CLASSIFIER_OUTPUTS = ["logits"]
DETECTOR_OUTPUTS = ["heatmap", "regression"]

# name -> (builder(num_classes, **kwargs), task, output names)
ARCHS = {
    "tiny_cnn": (TinyCNN, "classification", CLASSIFIER_OUTPUTS),
    "tiny_centernet": (_tiny_centernet, "detection", DETECTOR_OUTPUTS),
    "mobilenet_v2": (_torchvision("mobilenet_v2"), "classification", CLASSIFIER_OUTPUTS),
    "mobilenet_v3_small": (_torchvision("mobilenet_v3_small"), "classification", CLASSIFIER_OUTPUTS),
    "resnet18": (_torchvision("resnet18"), "classification", CLASSIFIER_OUTPUTS),
    # detectors on torchvision backbones + FPN + CenterNet head (train/detectors.py)
    "centernet_mobilenet_v3_large": (_backbone_detector("mobilenet_v3_large"), "detection", DETECTOR_OUTPUTS),
    "centernet_mobilenet_v3_small": (_backbone_detector("mobilenet_v3_small"), "detection", DETECTOR_OUTPUTS),
    "centernet_resnet18": (_backbone_detector("resnet18"), "detection", DETECTOR_OUTPUTS),
}


def _arch(name):
    try:
        return ARCHS[name]
    except KeyError:
        raise ModelError("unknown architecture %r" % (name,), hint="use one of: %s" % ", ".join(sorted(ARCHS)))


def build_model(name, **kwargs):
    builder = _arch(name)[0]
    try:
        return builder(**kwargs)
    except TypeError as exc:
        raise ModelError("cannot build %s with %s: %s" % (name, kwargs, exc),
                         hint="check the model kwargs in the recipe")


def arch_task(name):
    return _arch(name)[1]


def output_names(name):
    return list(_arch(name)[2])


def torch_load(path):
    try:
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError("checkpoint not found: %s" % path, hint="check the path")
    except Exception as exc:    # pickle, zip and weights_only errors all mean the same to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError("%s is not a loadable PyTorch checkpoint (%s)" % (path, first[:160]),
                         hint="pass a best.pt/last.pt written by `edgekit train`")


def load_checkpoint(path):
    """An edgekit checkpoint -> (model in eval mode, checkpoint dict)."""
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError("%s is not an edgekit checkpoint (format %r)" % (
            path, ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__),
            hint="pass a best.pt/last.pt written by `edgekit train`")
    arch = ckpt.get("arch") or {}
    model = build_model(arch.get("name"), **dict(arch.get("kwargs") or {}))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise ModelError("%s: weights do not fit %s (%s)" % (path, arch.get("name"), str(exc).splitlines()[0]),
                         hint="the checkpoint is damaged or from another edgekit version")
    return model.eval(), ckpt


def save_checkpoint(path, ckpt):
    """Write a checkpoint atomically."""
    from edgekit.fsutil import atomic_write

    with atomic_write(path, "wb") as handle:
        torch.save(ckpt, handle)


def load_pretrained(model, path, log=None):
    """Load weights from a local file (torchvision state_dict, {"state_dict": ...} or an edgekit
    checkpoint) into ``model``, skipping tensors whose shape differs (a new classifier head).
    Backbone detectors load torchvision backbone weights their own way (detectors.load_weights)."""
    data = torch_load(path)
    if hasattr(model, "load_weights"):
        return model.load_weights(data, path, log=log)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    elif isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not all(torch.is_tensor(v) for v in data.values()):
        raise ModelError("%s holds no state_dict of tensors" % path,
                         hint="save weights with torch.save(model.state_dict(), path)")
    own = model.state_dict()
    data = {k[7:] if k.startswith("module.") else k: v for k, v in data.items()}
    fitting = {k: v for k, v in data.items() if k in own and own[k].shape == v.shape}
    if len(fitting) < len(own) // 2:          # a head may differ; most of the body must fit
        raise ModelError("no tensor in %s fits this architecture" % path if not fitting else
                         "only %d of %d tensors in %s fit this architecture" % (len(fitting), len(own), path),
                         hint="use weights of the same architecture as the recipe")
    model.load_state_dict(fitting, strict=False)
    skipped = len(own) - len(fitting)
    if log is not None:
        log("loaded %d/%d tensors from %s (%d kept their initial values, e.g. a new head)"
            % (len(fitting), len(own), path, skipped))
    return len(fitting), skipped
