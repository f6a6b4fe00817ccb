"""Tiny models and files for the export/inspect/lint tests (built in the test, a few KB each)."""

import torch
from torch import nn


class Tiny(nn.Module):
    """conv-bn-relu, global pool, linear: the smallest classifier worth exporting."""

    def __init__(self, classes=3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class Drifting(nn.Module):
    """Its output changes with every call: the traced graph bakes one call in, so parity must fail.
    Outputs: 'scaled' and 'shifted' drift, 'stable' does not."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        y = self.conv(x).mean((2, 3))
        return y * self.calls, y + self.calls, y


class GridSampler(nn.Module):
    """grid_sample: needs ONNX opset 16."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        grid = torch.zeros(x.shape[0], 4, 4, 2)
        return nn.functional.grid_sample(self.conv(x), grid, align_corners=False).flatten(1)


class Masked(nn.Module):
    """Boolean indexing: exports NonZero, which TensorRT 8.2's parser rejects."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        return (y[y > 0].sum() + y.mean()).reshape(1, 1)


class Upsampler(nn.Module):
    """The three ways detectors upsample (nearest and bilinear by scale, nearest to a computed size)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        a = nn.functional.interpolate(y, scale_factor=2, mode="nearest")
        b = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        c = nn.functional.interpolate(y, size=(x.shape[2] * 2, x.shape[3] * 2), mode="nearest")
        return (a + b + c).mean((2, 3))


class TwoHeads(nn.Module):
    """A dict of outputs: their keys become the ONNX output names."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return {"heatmap": torch.sigmoid(y[:, :2]), "regression": y[:, 2:]}


def tiny_checkpoint(path, labels=("circle", "square", "triangle"), size=32, arch="tiny_cnn", seed=0):
    """An edgekit checkpoint (docs/desktop/train.md, "Outputs") of the registry's tiny_cnn with random weights."""
    from edgekit.desktop.train.models import build_model
    from edgekit.meta import ModelMeta

    torch.manual_seed(seed)
    kwargs = {"num_classes": len(labels), "width": 8}
    model = build_model(arch, **kwargs)
    meta = ModelMeta(task="classification", labels=list(labels),
                     input={"name": "images", "shape": [1, 3, size, size]},
                     preprocess={"color": "RGB", "resize": "stretch", "mean": [0.5, 0.5, 0.5], "std": [0.25] * 3},
                     decoder={"type": "classification", "top_k": 3},
                     source={"recipe": "test", "framework": "torch"})
    torch.save({"format": "edgekit-checkpoint/1", "arch": {"name": arch, "kwargs": kwargs},
                "state_dict": model.state_dict(), "meta": meta.to_dict(), "output_names": ["logits"],
                "recipe": {"name": "test"}, "epoch": 3, "metrics": {"val_acc": 0.5}}, str(path))
    return str(path)


FACTORY_SOURCE = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def make():
    return Tiny()


def not_a_model():
    return {"conv": 1}
'''
