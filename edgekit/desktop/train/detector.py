"""A tiny anchor-free detector in the CenterNet style, and its training targets and loss.

Built only from ops TensorRT 8.2 takes at opset <= 13: Conv, BatchNormalization (folded at export),
Relu, Resize (nearest, x2), Add, Sigmoid. No MaxPool in the graph: peak extraction (the 3x3
max-pool "NMS" of CenterNet) runs in NumPy in ``edgekit/vision/centernet.py`` so the same graph
serves every runtime. Outputs (documented in that module):
  heatmap    N x C x H/s x W/s  class-centre probabilities (sigmoid applied); s = stride, 8 or 4
  regression N x 4 x H/s x W/s  [dx, dy, w, h]: sub-cell centre offset and box size, in cells
"""

import math

import numpy as np
import torch
from torch import nn

STRIDE = 8
OUTPUT_NAMES = ["heatmap", "regression"]


def conv_bn(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyCenterNet(nn.Module):
    """Backbone to stride 16, a top-down path (nearest x2 + add) back to ``stride`` (8 or 4), one
    shared 3x3 head conv, then 1x1 convs to the heatmap and the regression maps."""

    def __init__(self, num_classes, width=16, stride=8):
        super().__init__()
        if stride not in (4, 8):
            raise TypeError("stride must be 4 or 8")
        c = int(width)
        self.num_classes = int(num_classes)
        self.stride = int(stride)
        self.stem = conv_bn(3, c, 3, 2)                                                # /2
        self.c2 = conv_bn(c, 2 * c, 3, 2)                                              # /4
        self.c3 = nn.Sequential(conv_bn(2 * c, 4 * c, 3, 2), conv_bn(4 * c, 4 * c))   # /8
        self.c4 = nn.Sequential(conv_bn(4 * c, 8 * c, 3, 2), conv_bn(8 * c, 8 * c))   # /16
        f = 4 * c
        self.lat4 = conv_bn(8 * c, f, 1)
        self.lat3 = conv_bn(4 * c, f, 1)
        self.lat2 = conv_bn(2 * c, f, 1) if stride == 4 else None
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.smooth = conv_bn(f, f)
        self.head = conv_bn(f, f)
        self.hm = nn.Conv2d(f, self.num_classes, 1)
        self.reg = nn.Conv2d(f, 4, 1)
        nn.init.constant_(self.hm.bias, -math.log((1 - 0.05) / 0.05))     # prior 0.05 per cell

    def forward(self, x):
        x2 = self.c2(self.stem(x))
        x3 = self.c3(x2)
        p = self.up(self.lat4(self.c4(x3))) + self.lat3(x3)
        if self.lat2 is not None:
            p = self.up(p) + self.lat2(x2)
        h = self.head(self.smooth(p))
        return torch.sigmoid(self.hm(h)), self.reg(h)


# -- targets ----------------------------------------------------------------------------------------
def gaussian_radius(h, w, min_overlap=0.7):
    """CenterNet's radius: the largest centre shift keeping IoU >= min_overlap (three cases, min)."""
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


class TargetEncoder(object):
    """Boxes Nx5 [cls, x1, y1, x2, y2] in input pixels -> dense (heatmap, regression, mask) arrays."""

    def __init__(self, num_classes, input_hw, stride=STRIDE):
        self.num_classes = int(num_classes)
        self.stride = int(stride)
        self.h, self.w = int(input_hw[0]) // self.stride, int(input_hw[1]) // self.stride

    def __call__(self, boxes):
        hm = np.zeros((self.num_classes, self.h, self.w), dtype=np.float32)
        reg = np.zeros((4, self.h, self.w), dtype=np.float32)
        mask = np.zeros((1, self.h, self.w), dtype=np.float32)
        for cls, x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float32).reshape(-1, 5):
            bw, bh = (x2 - x1) / self.stride, (y2 - y1) / self.stride
            if bw <= 0 or bh <= 0:
                continue
            cx, cy = (x1 + x2) / 2 / self.stride, (y1 + y2) / 2 / self.stride
            ix, iy = min(int(cx), self.w - 1), min(int(cy), self.h - 1)
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw))))
            draw_gaussian(hm[int(cls)], ix, iy, radius)
            reg[:, iy, ix] = (cx - ix, cy - iy, bw, bh)
            mask[0, iy, ix] = 1.0
        return hm, reg, mask


def draw_gaussian(plane, x, y, radius):
    d = 2 * radius + 1
    sigma = d / 6.0
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    h, w = plane.shape
    left, right = min(x, radius), min(w - x, radius + 1)
    top, bottom = min(y, radius), min(h - y, radius + 1)
    region = plane[y - top:y + bottom, x - left:x + right]
    patch = g[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(region, patch, out=region)


# -- loss -------------------------------------------------------------------------------------------
class CenterNetLoss(nn.Module):
    """Penalty-reduced focal loss on the heatmap + L1 on offsets and sizes at object centres."""

    def __init__(self, wh_weight=0.1, off_weight=1.0):
        super().__init__()
        self.wh_weight = wh_weight
        self.off_weight = off_weight

    def forward(self, outputs, targets):
        heat, reg = outputs
        gt_hm, gt_reg, mask = targets
        p = heat.float().clamp(1e-4, 1 - 1e-4)
        pos = gt_hm.eq(1).float()
        neg = 1.0 - pos
        pos_loss = (torch.log(p) * (1 - p) ** 2 * pos).sum()
        neg_loss = (torch.log(1 - p) * p ** 2 * (1 - gt_hm) ** 4 * neg).sum()
        num = pos.sum().clamp(min=1.0)
        focal = -(pos_loss + neg_loss) / num
        n_obj = mask.sum().clamp(min=1.0)
        l1 = (reg.float() - gt_reg).abs() * mask
        off = l1[:, :2].sum() / n_obj
        wh = l1[:, 2:].sum() / n_obj
        return focal + self.off_weight * off + self.wh_weight * wh
