"""What differs between classification and detection training: datasets, loss, validation, metric.

``TASKS[name]`` is a small object with:
  list_data(root, strict) -> (train_items, val_items, labels)
  datasets(train_items, val_items, pre, augment, seed, meta) -> (train_ds, val_ds)
  loss() -> nn.Module(outputs, targets)
  evaluate(model, val_ds, meta, device, batch, score_threshold) -> {"metric": ..., ...}
"""

import os

import numpy as np
import torch
from torch import nn

from edgekit.desktop.data import datasets as D
from edgekit.errors import DatasetError


def _batches(n, size):
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


def _split_dir(root, split):
    path = os.path.join(root, split)
    if not os.path.isdir(path):
        raise DatasetError("%s has no %s/ folder" % (root, split),
                           hint="expected ImageFolder layout DIR/train/<class>/*.png and DIR/val/<class>/*.png")
    return path


class Classification(object):
    name = "classification"
    metric = "accuracy"

    def list_data(self, root, strict=False, classes=None):
        if classes:
            raise DatasetError("--classes selects detection classes; a classifier trains on every class folder",
                               hint="drop --classes, or remove the class folders you do not want")
        train, labels = D.list_image_folder(_split_dir(root, "train"), strict=strict)
        val, _ = D.list_image_folder(_split_dir(root, "val"), strict=strict, class_names=labels)
        return train, val, labels

    def datasets(self, train, val, pre, augment, seed, meta):
        def make(items, aug):
            return D.ImageDataset([p for p, _ in items], pre, labels=[c for _, c in items], augment=aug, seed=seed)

        return make(train, augment), make(val, None)

    def loss(self):
        return nn.CrossEntropyLoss()

    @torch.no_grad()
    def evaluate(self, model, val_ds, meta, device, batch, score_threshold=None):
        model.eval()
        correct, total, loss_sum = 0, 0, 0.0
        for idx in _batches(len(val_ds), batch):
            x = torch.from_numpy(np.stack([val_ds.sample(i)[0] for i in idx])).to(device)
            y = torch.tensor([val_ds.labels[i] for i in idx], device=device)
            logits = model(x).float()
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += len(idx)
        return {"accuracy": correct / max(total, 1), "val_loss": loss_sum / max(total, 1)}


class Detection(object):
    name = "detection"
    metric = "map50"

    def list_data(self, root, strict=False, classes=None):
        from edgekit.desktop.data.annotations import load_detection

        train, labels = load_detection(root, "train", classes=classes, strict=strict)
        val, val_names = load_detection(root, "val", classes=classes, strict=strict)
        if val_names != labels:
            raise DatasetError("the val split's classes differ from the train split's in %s (train: %s; val: %s)"
                               % (root, ", ".join(labels[:10]), ", ".join(val_names[:10])),
                               hint="label both splits with the same classes, or pick common ones with --classes")
        return train, val, labels

    def datasets(self, train, val, pre, augment, seed, meta):
        from edgekit.desktop.train.detector import TargetEncoder

        encode = TargetEncoder(len(meta.labels), meta.input_hw, int(meta.decoder.get("stride", 8)))

        def make(items, aug):
            return D.ImageDataset([p for p, _ in items], pre, boxes=[b for _, b in items], augment=aug, seed=seed,
                                  encode=encode)

        return make(train, augment), make(val, None)

    def loss(self):
        from edgekit.desktop.train.detector import CenterNetLoss

        return CenterNetLoss()

    @torch.no_grad()
    def evaluate(self, model, val_ds, meta, device, batch, score_threshold=0.05):
        from edgekit.desktop.data.scoring import coco_map
        from edgekit.vision.centernet import decode, to_eval_tuples

        model.eval()
        preds, gts = [], []
        for idx in _batches(len(val_ds), batch):
            samples = [val_ds.sample(i) for i in idx]
            x = torch.from_numpy(np.stack([s[0] for s in samples])).to(device)
            heat, reg = model(x)
            outputs = {"heatmap": heat.float().cpu().numpy(), "regression": reg.float().cpu().numpy()}
            results = decode(outputs, meta, [s[2] for s in samples], score_threshold=score_threshold)
            preds.extend(to_eval_tuples(r) for r in results)
            gts.extend([tuple(b) for b in val_ds.frame_boxes(i)] for i in idx)
        report = coco_map(preds, gts, len(meta.labels), labels=meta.labels)          # pycocotools
        return {"map50": report["map50"], "map50_95": report["map50_95"],
                "per_class_ap50": [c["ap50"] for c in report["per_class"]],
                "per_class_ap50_95": [c["ap50_95"] for c in report["per_class"]]}


TASKS = {"classification": Classification(), "detection": Detection()}
