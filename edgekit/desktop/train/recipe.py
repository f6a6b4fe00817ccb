"""Training recipes: ``models/<name>.yaml`` (or any YAML path, or a dict) merged over defaults, validated."""

import copy
import os

from edgekit.errors import ConfigError
from edgekit.meta import IMAGENET_MEAN, IMAGENET_STD

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE_DIRS = (os.path.join(ROOT, "models"), os.path.join(os.getcwd(), "models"))

DEFAULTS = {
    "name": None,
    "task": None,                                   # classification | detection
    "description": "",
    "model": {"arch": None, "kwargs": {}},
    "input": {"size": [64, 64]},                    # [height, width]
    "preprocess": {"color": "RGB", "resize": "stretch", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                   "pad_value": 114},
    "decoder": {},                                   # task default below, recipe values override
    "data": {"shapes": {"train": 2000, "val": 400, "size": None}},   # or scenes: {train, val, size}
    "augment": {},
    "epochs": 10,
    "batch": 64,
    "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.0005, "momentum": 0.9},
    "schedule": {"name": "cosine", "warmup_epochs": 0.0},
    "early_stop": {"patience": 5, "target": None},
    "seed": 0,
    "workers": 0,
    "threads": "auto",                              # CPU threads per process (see train.pick_threads)
    "amp": True,
    "eval": {"score_threshold": 0.05, "metric": None},   # metric: what picks best.pt (default per task)
}
TASK_DECODERS = {
    "classification": {"type": "classification", "top_k": 5},
    "detection": {"type": "centernet", "stride": 8, "score_threshold": 0.3, "top_k": 100, "nms_iou": None,
                  "class_agnostic": False},
}
TASK_METRIC = {"classification": "accuracy", "detection": "map50"}
TASK_METRICS = {"classification": ("accuracy",), "detection": ("map50", "map50_95")}
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")


def recipe_names():
    names = set()
    for folder in RECIPE_DIRS:
        if os.path.isdir(folder):
            names.update(os.path.splitext(f)[0] for f in os.listdir(folder) if f.endswith(".yaml"))
    return sorted(names)


def find_recipe(name):
    if os.path.isfile(name):
        return name
    for folder in RECIPE_DIRS:
        path = os.path.join(folder, name if name.endswith(".yaml") else name + ".yaml")
        if os.path.isfile(path):
            return path
    raise ConfigError("recipe %r not found" % name,
                      hint="give a YAML path or one of: %s" % ", ".join(recipe_names()))


def _merge(base, over, where=""):
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in base:
            raise ConfigError("unknown recipe key %r%s" % (where + key, ""),
                              hint="known keys: %s" % ", ".join(sorted(base)))
        if isinstance(base[key], dict) and key not in ("augment", "decoder", "data", "model") \
                and isinstance(value, dict):
            out[key] = _merge(base[key], value, where + key + ".")
        elif isinstance(base[key], dict) and not isinstance(value, dict):
            raise ConfigError("recipe key %r must be a mapping" % (where + key))
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_recipe(recipe):
    """Path, recipe name or dict -> validated recipe dict (plain types, storable in a checkpoint)."""
    if isinstance(recipe, dict):
        data = recipe
    else:
        from edgekit.yamlfile import load_yaml

        path = find_recipe(os.fspath(recipe))
        data = load_yaml(path)
        data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    rec = _merge(DEFAULTS, data)
    return validate(rec)


def validate(rec):
    task = rec["task"]
    if task not in TASK_METRIC:
        raise ConfigError("recipe task must be classification or detection, got %r" % (task,))
    if not rec["model"].get("arch"):
        raise ConfigError("recipe lacks model.arch", hint="e.g. model: {arch: tiny_cnn}")
    rec["model"].setdefault("kwargs", {})
    rec["name"] = str(rec["name"] or rec["model"]["arch"])
    size = rec["input"]["size"]
    if isinstance(size, int):
        size = [size, size]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ConfigError("recipe input.size must be [height, width] in pixels, got %r" % (size,))
    if task == "detection" and (size[0] % 16 or size[1] % 16):
        raise ConfigError("detector input.size must be a multiple of 16, got %r" % (size,))
    if str(rec["model"]["arch"]).startswith("centernet_") and (size[0] % 32 or size[1] % 32):
        raise ConfigError("%s reaches stride 32: input.size must be a multiple of 32, got %r"
                          % (rec["model"]["arch"], size), hint="e.g. 320 or 416")
    rec["input"]["size"] = size
    decoder = dict(TASK_DECODERS[task])
    decoder.update(rec["decoder"] or {})
    if task == "detection":       # the decoder's stride is the model's
        decoder["stride"] = int(rec["model"]["kwargs"].get("stride", 8))
    rec["decoder"] = decoder
    metrics = TASK_METRICS[task]
    if rec["eval"].get("metric") is not None and rec["eval"]["metric"] not in metrics:
        raise ConfigError("recipe eval.metric %r is not a %s metric" % (rec["eval"]["metric"], task),
                          hint="use one of: %s" % ", ".join(metrics))
    for key in ("epochs", "batch"):
        if not isinstance(rec[key], int) or rec[key] < 1:
            raise ConfigError("recipe %s must be a positive integer, got %r" % (key, rec[key]))
    if rec["optimizer"]["name"] not in OPTIMIZERS:
        raise ConfigError("unknown optimizer %r" % rec["optimizer"]["name"], hint="use %s" % ", ".join(OPTIMIZERS))
    if rec["schedule"]["name"] not in SCHEDULES:
        raise ConfigError("unknown schedule %r" % rec["schedule"]["name"], hint="use %s" % ", ".join(SCHEDULES))
    from edgekit.desktop.data.augment import build_augment

    build_augment(rec["augment"])           # validates the names
    return rec


def apply_overrides(rec, epochs=None, batch=None, seed=None):
    rec = copy.deepcopy(rec)
    for key, value in (("epochs", epochs), ("batch", batch), ("seed", seed)):
        if value is not None:
            if not isinstance(value, int) or (value < 1 and key != "seed") or value < 0:
                raise ConfigError("--%s must be a positive integer, got %r" % (key, value))
            rec[key] = value
    return rec
