"""Detectors on real backbones: torchvision MobileNetV3 (large, small) or ResNet-18, a light FPN, and the
CenterNet-style anchor-free head of ``detector.py`` (same outputs, targets, loss and device-side decoder).

  CenterNetDetector(num_classes, backbone="mobilenet_v3_large", neck=64, stride=8)
  outputs: heatmap N x C x H/8 x W/8 (sigmoid applied), regression N x 4 x H/8 x W/8 ([dx, dy, w, h] in cells)

Graph: the backbone's own ops (Conv, BatchNorm folded at export, Relu, HardSigmoid/Mul for MobileNetV3's
hard-swish at opset 13, GlobalAveragePool + Mul for its squeeze-excitation, MaxPool and Add for ResNet),
then 1x1 lateral convs, nearest x2 Resize + Add top-down from stride 32 to 8, a 3x3 smoothing conv, and one
3x3 conv + 1x1 conv branch per output. No NMS, TopK or dynamic shapes in the graph: peak extraction runs in
NumPy (``edgekit/vision/centernet.py``), so the same ONNX serves ONNX Runtime and TensorRT 8.2 on a Nano.

Backbone weights (``edgekit train --weights FILE``): a local file with torchvision's published state_dict
for that architecture (``torch.save(torchvision.models.resnet18(...).state_dict(), FILE)``); the keys are
torchvision's (``features.0.0.weight``, ``layer1.0.conv1.weight``...), the classifier's are ignored.
``load_weights`` names the keys a file lacks or mis-shapes when it does not fit. Nothing is downloaded.
"""

import math

import torch
from torch import nn

from edgekit.desktop.train.detector import conv_bn
from edgekit.errors import ModelError

BACKBONES = ("mobilenet_v3_large", "mobilenet_v3_small", "resnet18")


def _torchvision_backbone(name):
    """(module holding torchvision's parameter names, list of (stage module, output stride)) for the body."""
    import torchvision

    if name not in BACKBONES:
        raise ModelError("unknown detector backbone %r" % (name,), hint="use one of: %s" % ", ".join(BACKBONES))
    model = getattr(torchvision.models, name)(weights=None)
    if name == "resnet18":
        del model.fc
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1)
        return model, [nn.Sequential(stem, model.layer2), model.layer3, model.layer4]
    del model.classifier
    features = model.features
    # split features where the output stride reaches 8, 16 and 32 (found with a dummy forward)
    x = torch.zeros(1, 3, 64, 64)
    cut, size = {}, 64
    with torch.no_grad():
        for i, block in enumerate(features):
            x = block(x)
            stride = size // x.shape[-1]
            if stride in (8, 16, 32):
                cut[stride] = i
    last = cut[32]
    # the last 1x1 expansion conv (960 / 576 channels) feeds only the classifier: not part of the body
    while last > cut[16] and isinstance(features[last], nn.Sequential) and \
            features[last][0].kernel_size == (1, 1) and features[last][0].stride == (1, 1):
        last -= 1
    del features[last + 1:]
    bounds = [(0, cut[8]), (cut[8] + 1, cut[16]), (cut[16] + 1, last)]
    stages = [nn.Sequential(*[features[j] for j in range(a, b + 1)]) for a, b in bounds]
    return model, stages


class CenterNetDetector(nn.Module):
    def __init__(self, num_classes, backbone="mobilenet_v3_large", neck=64, stride=8):
        super().__init__()
        if int(stride) != 8:
            raise TypeError("backbone detectors decode at stride 8")
        self.num_classes = int(num_classes)
        self.stride = 8
        self.backbone_name = backbone
        body, stages = _torchvision_backbone(backbone)
        self.body = body                        # parameters under torchvision's names (for --weights)
        self._stages = stages                   # views of body's modules, not registered twice
        f = int(neck)
        with torch.no_grad():
            chans = []
            x = torch.zeros(1, 3, 64, 64)
            for stage in stages:
                x = stage(x)
                chans.append(x.shape[1])
        self.lat3, self.lat4, self.lat5 = (conv_bn(c, f, 1) for c in chans)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.smooth = conv_bn(f, f)
        self.hm_head = nn.Sequential(conv_bn(f, f), nn.Conv2d(f, self.num_classes, 1))
        self.reg_head = nn.Sequential(conv_bn(f, f), nn.Conv2d(f, 4, 1))
        nn.init.constant_(self.hm_head[-1].bias, -math.log((1 - 0.01) / 0.01))     # prior 0.01 per cell

    def __setattr__(self, name, value):
        if name == "_stages":                   # keep the stage list out of the module registry
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x):
        c3 = self._stages[0](x)
        c4 = self._stages[1](c3)
        c5 = self._stages[2](c4)
        p = self.up(self.lat5(c5)) + self.lat4(c4)
        p = self.up(p) + self.lat3(c3)
        p = self.smooth(p)
        return torch.sigmoid(self.hm_head(p)), self.reg_head(p)

    def load_weights(self, data, path, log=None):
        """--weights FILE (``data``: what torch.load read from ``path``): torchvision backbone weights, or a
        whole edgekit detector of this architecture."""
        if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
            data = data["state_dict"]
        if not isinstance(data, dict) or not data or not all(torch.is_tensor(v) for v in data.values()):
            raise ModelError("%s holds no state_dict of tensors" % path,
                             hint="save weights with torch.save(torchvision.models.%s().state_dict(), FILE)"
                             % self.backbone_name)
        data = dict((k[7:] if k.startswith("module.") else k, v) for k, v in data.items())
        if any(k.startswith("body.") for k in data):                # an edgekit detector checkpoint
            own = self.state_dict()
            fitting = dict((k, v) for k, v in data.items() if k in own and own[k].shape == v.shape)
            if not any(k.startswith("body.") for k in fitting):
                raise ModelError("%s is a detector of another backbone than %s" % (path, self.backbone_name),
                                 hint="use weights of the recipe's backbone")
            self.load_state_dict(fitting, strict=False)
            if log:
                log("loaded %d/%d tensors from the detector %s (the rest, e.g. a head of another class count, "
                    "start fresh)" % (len(fitting), len(own), path))
            return len(fitting), len(own) - len(fitting)
        expected = self.body.state_dict()
        missing = [k for k in expected if k not in data]
        wrong = ["%s (file %s, expected %s)" % (k, list(data[k].shape), list(v.shape))
                 for k, v in expected.items() if k in data and data[k].shape != v.shape]
        if missing or wrong:
            what = []
            if missing:
                what.append("%d of %d expected tensors missing (e.g. %s)" % (len(missing), len(expected),
                                                                          ", ".join(missing[:3])))
            if wrong:
                what.append("%d with another shape (e.g. %s)" % (len(wrong), "; ".join(wrong[:2])))
            raise ModelError("%s does not fit the %s backbone: %s" % (path, self.backbone_name, "; ".join(what)),
                             hint="give torchvision's %s state_dict, keys like %s"
                             % (self.backbone_name, ", ".join(list(expected)[:2])))
        self.body.load_state_dict(dict((k, data[k]) for k in expected))
        unused = len([k for k in data if k not in expected])
        if log:
            log("loaded %d backbone tensors (torchvision %s) from %s; %d unused (the classifier)"
                % (len(expected), self.backbone_name, path, unused))
        return len(expected), unused

