"""The training loop behind `edgekit train` (docs/desktop/train.md).

  train(recipe, data, out, epochs=None, batch=None, device="auto", seed=None, weights=None,
        resume=False, strict=False, progress=True, data_cache=None)
  -> {"best": {...}, "best_path", "last_path", "metrics_path", "curves_path", "labels_path",
      "epochs_run", "stopped_early", "history", "weights_sha256", "data", "out"}

``recipe`` is a path to a YAML, a recipe name from models/ ("shapes-classifier") or a dict.
``data`` is a dataset folder (ImageFolder root with train/ and val/, or a YOLO root / data.yaml),
or "shapes" to generate the built-in synthetic set (cached under ``data_cache`` or OUT/data).
Under torchrun (WORLD_SIZE > 1) each process trains its shard with DDP and only rank 0 writes.
"""

import hashlib
import math
import os
import time

import numpy as np
import torch

from edgekit.desktop.train import ddp
from edgekit.desktop.train.recipe import TASK_METRIC, apply_overrides, load_recipe
from edgekit.desktop.train.tasks import TASKS
from edgekit.errors import ConfigError
from edgekit.fsutil import atomic_write_json, atomic_write_text
from edgekit.meta import ModelMeta
from edgekit.progress import say


def build_meta(rec, labels):
    h, w = rec["input"]["size"]
    from edgekit.desktop.train.models import output_names

    return ModelMeta(task=rec["task"], labels=labels,
                     input={"name": "images", "shape": [1, 3, h, w], "layout": "NCHW", "dtype": "float32"},
                     preprocess=dict(rec["preprocess"]), decoder=dict(rec["decoder"]), precision="fp32",
                     source={"recipe": rec["name"], "framework": "torch", "arch": rec["model"]["arch"],
                             "torch": str(torch.__version__), "outputs": output_names(rec["model"]["arch"])})


def resolve_data(data, rec, out, info, cache=None):
    """'shapes' or 'scenes' -> generate (rank 0) and return the cached folder; else the path as given."""
    kind = os.fspath(data)
    if kind not in ("shapes", "scenes"):
        return os.path.abspath(kind)
    if kind == "scenes" and rec["task"] != "detection":
        raise ConfigError("--data scenes is a detection set; %s is a %s recipe" % (rec["name"], rec["task"]),
                          hint="use --data shapes for classifiers")
    spec = dict(rec["data"].get(kind) or {})
    seed = int(spec.pop("seed", rec["seed"]))
    size = int(spec.get("size") or rec["input"]["size"][1])
    train_n, val_n = int(spec.get("train", 2000 if kind == "shapes" else 1000)), int(spec.get("val", 400 if kind == "shapes" else 200))
    name = "shapes-%s-%dpx-seed%d" % (rec["task"], size, seed) if kind == "shapes" else \
        "scenes-%dpx-seed%d" % (size, seed)
    where = os.path.join(cache or os.path.join(out, "data"), name)
    if info.is_main:
        say("dataset: generating/reusing %s (%s, %d train, %d val, %d px) in %s"
            % (kind, rec["task"], train_n, val_n, size, where))
        if kind == "shapes":
            from edgekit.desktop.data.datasets import make_shapes

            make_shapes(where, task=rec["task"], train=train_n, val=val_n, size=size, seed=seed)
        else:
            from edgekit.desktop.data.scenes import make_scenes

            make_scenes(where, train=train_n, val=val_n, size=size, seed=seed)
    ddp.barrier(info)
    return where


def make_optimizer(model, rec):
    opt = rec["optimizer"]
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": float(opt.get("weight_decay", 0.0))},
              {"params": no_decay, "weight_decay": 0.0}]
    if opt["name"] == "sgd":
        return torch.optim.SGD(groups, lr=float(opt["lr"]), momentum=float(opt.get("momentum", 0.9)), nesterov=True)
    return torch.optim.AdamW(groups, lr=float(opt["lr"]))


def make_scheduler(optimizer, rec, steps_per_epoch, time_progress=None):
    """Warm-up then cosine (or constant). ``time_progress`` (a callable -> 0..1, --time-budget): the cosine
    follows the share of the time budget spent instead of the share of steps."""
    total = max(1, rec["epochs"] * steps_per_epoch)
    warmup = int(float(rec["schedule"].get("warmup_epochs", 0.0)) * steps_per_epoch)
    cosine = rec["schedule"]["name"] == "cosine"

    def factor(step):
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if not cosine:
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if time_progress is not None:
            progress = time_progress()
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


MOSAIC_OFF_SHARE = 0.15        # --time-budget: mosaic off for the last 15% of the time (epochs: mosaic_off_epochs)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffles with a generator seeded by (seed, epoch): reproducible, and --resume continues exactly."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n).tolist())

    def __len__(self):
        return self.n


def weights_digest(model):
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def seed_everything(seed, deterministic=True):
    """Seed every generator. ``deterministic``: torch's deterministic algorithms too (reproducible runs; on
    the CPU they make MobileNetV3 training about 3x slower, measured here). A --time-budget run is not
    reproducible anyway (how far it gets depends on the machine), so it trains with the fast algorithms."""
    import random

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def pick_threads(setting, info):
    """CPU threads for this process. "auto": the cores this process may use (shared among the local DDP
    processes) minus the current load average, at least 1 -- small models on an oversubscribed box run
    several times slower with more threads than free cores. OMP_NUM_THREADS, when set, wins."""
    if setting not in (None, "auto"):
        if not isinstance(setting, int) or setting < 1:
            raise ConfigError("recipe threads must be a positive integer or auto, got %r" % (setting,))
        return setting
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    local = max(1, _env_int("LOCAL_WORLD_SIZE", info.world_size))
    cores = max(1, len(os.sched_getaffinity(0)) // local)
    busy = os.getloadavg()[0] / local
    return max(1, min(cores, int(cores - busy + 0.5)))


def _env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def train(recipe, data, out, epochs=None, batch=None, device="auto", seed=None, weights=None,
          resume=False, strict=False, progress=True, data_cache=None, classes=None, time_budget=None):
    out = os.path.abspath(os.fspath(out))
    state = _resume_state(out) if resume else None
    rec = load_recipe(state["recipe"] if state else recipe)
    if state and not isinstance(recipe, dict) and os.path.splitext(os.path.basename(os.fspath(recipe)))[0] != rec["name"]:
        say("resume: continuing recipe %r from %s/last.pt" % (rec["name"], out))
    rec = apply_overrides(rec, epochs, batch, seed)
    if time_budget is not None and not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise ConfigError("--time-budget must be a positive number of seconds, got %r" % (time_budget,))
    info = ddp.setup(device)
    try:
        return _Run(rec, info, out, progress, time_budget).run(data, weights, strict, state, data_cache, classes)
    finally:
        ddp.cleanup(info)


def _resume_state(out):
    path = os.path.join(out, "last.pt")
    if not os.path.isfile(path):
        raise ConfigError("--resume: %s not found" % path, hint="train once into this --out first, or drop --resume")
    from edgekit.desktop.train.models import torch_load

    state = torch_load(path)
    if not isinstance(state, dict) or "optimizer" not in state:
        from edgekit.errors import ModelError

        raise ModelError("%s holds no training state to resume" % path, hint="train again without --resume")
    return state


class _Run(object):
    """One training run; methods are the steps of ``train``."""

    def __init__(self, rec, info, out, show_progress, time_budget=None):
        self.rec, self.info, self.out, self.show = rec, info, out, show_progress
        # --time-budget S: train for S seconds of wall clock (the epochs count is then an upper bound), the
        # cosine follows the time spent, mosaic stops for the last MOSAIC_OFF_SHARE of it, and validation
        # runs once at the end (as Ultralytics' `time=` with val=False): a budget buys training, not scoring.
        self.budget = float(time_budget) if time_budget else None
        self.t_start = None
        self.out_of_time = False
        self.task = TASKS[rec["task"]]
        self.metric = rec["eval"].get("metric") or TASK_METRIC[rec["task"]]
        self.device = info.device
        self.amp = bool(rec["amp"]) and self.device.type == "cuda"

    def run(self, data, weights, strict, state, data_cache, classes=None):
        from edgekit.desktop.data.augment import build_augment
        from edgekit.desktop.train.models import build_model, load_pretrained
        from edgekit.vision.preprocess import Preprocessor

        rec = self.rec
        seed_everything(rec["seed"], deterministic=not self.budget)
        if self.device.type == "cpu":
            torch.set_num_threads(pick_threads(rec["threads"], self.info))
        root = resolve_data(data, rec, self.out, self.info, data_cache)
        train_items, val_items, labels = self.task.list_data(root, strict=strict, classes=classes)
        self.meta = build_meta(rec, labels)
        pre = Preprocessor.from_meta(self.meta)
        self.train_ds, self.val_ds = self.task.datasets(train_items, val_items, pre, build_augment(rec["augment"]),
                                                        rec["seed"], self.meta)
        self.labels = labels
        if rec["task"] == "detection":
            from edgekit.desktop.data.augment import mosaic_probability

            p = mosaic_probability(rec["augment"], from_scratch=not weights)
            if p > 0:
                self.train_ds.use_mosaic(p, rec["input"]["size"], rec["epochs"],
                                         int(rec["augment"].get("mosaic_off_epochs", 2)))
        self.model = build_model(rec["model"]["arch"], num_classes=len(labels), **rec["model"]["kwargs"])
        if weights:
            load_pretrained(self.model, weights, log=say if self.info.is_main else None)
        if state:
            self.model.load_state_dict(state["state_dict"])
        self.model.to(self.device)
        self.net = ddp.wrap(self.model, self.info)
        loader = self._loader()
        self.optimizer = make_optimizer(self.model, rec)
        self.scheduler = make_scheduler(self.optimizer, rec, len(loader),
                                        self._time_progress if self.budget else None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history, self.best, start = [], None, 0
        if state:
            self._restore(state)
            start = state["epoch"] + 1
        if self.info.is_main:
            say("train: %s (%s) on %d images, val %d, %d classes, device %s%s%s, %d epochs"
                % (rec["name"], rec["model"]["arch"], len(self.train_ds), len(self.val_ds), len(labels),
                   self.device, " (threads: %d)" % torch.get_num_threads() if self.device.type == "cpu" else "",
                   " x%d (DDP %s)" % (self.info.world_size, self.info.backend)
                   if self.info.distributed else "", rec["epochs"]))
        return self._loop(loader, start, root)

    def _loader(self):
        n_batch = self.rec["batch"] // self.info.world_size
        if n_batch < 1:
            raise ConfigError("batch %d is smaller than the %d processes" % (self.rec["batch"], self.info.world_size),
                              hint="use --batch >= the number of processes")
        if self.info.distributed:
            sampler = torch.utils.data.DistributedSampler(self.train_ds, num_replicas=self.info.world_size,
                                                          rank=self.info.rank, shuffle=True, seed=self.rec["seed"])
        else:
            sampler = EpochSampler(len(self.train_ds), self.rec["seed"])
        self.sampler = sampler
        per_rank = len(self.train_ds) // self.info.world_size
        return torch.utils.data.DataLoader(self.train_ds, batch_size=n_batch, sampler=sampler,
                                           num_workers=int(self.rec["workers"]), drop_last=per_rank > n_batch,
                                           pin_memory=self.device.type == "cuda")

    def _restore(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.history = list(state.get("history") or [])
        self.best = state.get("best")

    def _time_progress(self):
        if self.t_start is None:
            return 0.0
        return min(1.0, (time.perf_counter() - self.t_start) / self.budget)

    def _loop(self, loader, start, root):
        rec, stopped, t0 = self.rec, None, time.perf_counter()
        self.t_start = t0
        elapsed0 = self.history[-1]["elapsed_s"] if self.history else 0.0
        for epoch in range(start, rec["epochs"]):
            self.train_ds.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            t_epoch = time.perf_counter()
            loss, images = self._train_epoch(loader, epoch)
            train_s = time.perf_counter() - t_epoch
            ddp.sync_buffers(self.model, self.info)
            if self.budget and not self.out_of_time and epoch < rec["epochs"] - 1:
                if self.info.is_main:
                    say("epoch %d  loss %.4f  %.1f img/s  %.0f/%.0f s of the budget" % (
                        epoch + 1, loss, images / max(train_s, 1e-9), time.perf_counter() - t0, self.budget))
                continue
            val = self.task.evaluate(self.model, self.val_ds, self.meta, self.device, max(rec["batch"], 32),
                                     rec["eval"].get("score_threshold"))
            record = {"epoch": epoch, "train_loss": loss, "lr": self.optimizer.param_groups[0]["lr"],
                      "images_per_s": images * self.info.world_size / max(train_s, 1e-9),
                      "epoch_s": time.perf_counter() - t_epoch,
                      "elapsed_s": elapsed0 + time.perf_counter() - t0}
            record.update(val)
            self.history.append(record)
            improved = self.best is None or record[self.metric] > self.best["value"]
            if improved:
                self.best = {"epoch": epoch, "metric": self.metric, "value": record[self.metric],
                             "metrics": {k: v for k, v in record.items() if not k.startswith("per_class")}}
            if self.info.is_main:
                self._save(epoch, record, improved)
                say("epoch %d/%d  loss %.4f  %s %.4f%s  %.1f img/s  %.1f s" % (
                    epoch + 1, rec["epochs"], loss, self.metric, record[self.metric], "  (best)" if improved else "",
                    record["images_per_s"], record["epoch_s"]))
            stopped = ddp.all_same(self._should_stop(epoch, record), self.info)
            if self.budget and self.out_of_time:
                stopped = "the time budget of %.0f s is spent" % self.budget
            if stopped:
                if self.info.is_main:
                    say("early stop: %s" % stopped)
                break
        return self._result(root, stopped)

    def _train_epoch(self, loader, epoch):
        self.net.train()
        loss_fn = self.task.loss()
        total, count = 0.0, 0
        bar = None
        if self.show and self.info.is_main:
            from edgekit.progress import progress

            bar = progress(total=len(loader), desc="epoch %d/%d" % (epoch + 1, self.rec["epochs"]), leave=False)
        for x, target in loader:
            x = x.to(self.device, non_blocking=True)
            target = tuple(t.to(self.device) for t in target) if isinstance(target, (list, tuple)) \
                else target.to(self.device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                loss = loss_fn(self.net(x), target)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
            if self.budget:
                spent = self._time_progress()
                if spent >= 1.0 - MOSAIC_OFF_SHARE and self.train_ds.mosaic_p:
                    self.train_ds.mosaic_p = 0.0          # the last share of the budget on whole images
                if spent >= 1.0:
                    self.out_of_time = True
                    break
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss="%.4f" % float(loss.detach()))
        if bar is not None:
            bar.close()
        return total / max(count, 1), count

    def _should_stop(self, epoch, record):
        stop = self.rec["early_stop"]
        target = stop.get("target")
        if target is not None and record[self.metric] >= float(target):
            return "%s %.4f reached the target %.4f" % (self.metric, record[self.metric], float(target))
        patience = stop.get("patience")
        if patience and epoch - self.best["epoch"] >= int(patience):
            return "no better %s for %d epochs (best %.4f at epoch %d)" % (
                self.metric, int(patience), self.best["value"], self.best["epoch"] + 1)
        return None

    # -- outputs (rank 0 only) -------------------------------------------------------------------
    def _checkpoint(self, epoch, record):
        from edgekit.desktop.train.models import FORMAT, output_names

        meta = self.meta.to_dict()
        meta["source"]["epoch"] = epoch
        return {"format": FORMAT,
                "arch": {"name": self.rec["model"]["arch"],
                         "kwargs": dict(self.rec["model"]["kwargs"], num_classes=len(self.labels))},
                "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "meta": meta, "output_names": output_names(self.rec["model"]["arch"]),
                "recipe": self.rec, "epoch": epoch,
                "metrics": {k: v for k, v in record.items() if not k.startswith("per_class")}}

    def _save(self, epoch, record, improved):
        from edgekit.desktop.train.models import save_checkpoint

        ckpt = self._checkpoint(epoch, record)
        if improved:
            save_checkpoint(os.path.join(self.out, "best.pt"), ckpt)
        ckpt.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                    scaler=self.scaler.state_dict() if self.amp else None, rng={"torch": torch.get_rng_state()},
                    history=self.history, best=self.best)
        save_checkpoint(os.path.join(self.out, "last.pt"), ckpt)
        atomic_write_text(os.path.join(self.out, "labels.txt"), "\n".join(self.labels) + "\n")
        atomic_write_json(os.path.join(self.out, "metrics.json"), self._metrics_doc())
        write_curves(os.path.join(self.out, "curves.png"), self.history, self.metric)

    def _metrics_doc(self):
        return {"recipe": self.rec["name"], "task": self.rec["task"], "metric": self.metric,
                "labels": self.labels, "epochs": self.history, "best": self.best}

    def _result(self, root, stopped):
        join = os.path.join
        return {"best": self.best, "best_path": join(self.out, "best.pt"), "last_path": join(self.out, "last.pt"),
                "metrics_path": join(self.out, "metrics.json"), "curves_path": join(self.out, "curves.png"),
                "labels_path": join(self.out, "labels.txt"), "epochs_run": len(self.history),
                "stopped_early": stopped, "history": self.history, "weights_sha256": weights_digest(self.model),
                "data": root, "out": self.out, "rank": self.info.rank, "world_size": self.info.world_size}


def write_curves(path, history, metric):
    """Loss and validation metric(s) per epoch -> PNG (matplotlib, Agg)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgekit.fsutil import atomic_write_bytes

    epochs = [h["epoch"] + 1 for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    if all("val_loss" in h for h in history):
        ax1.plot(epochs, [h["val_loss"] for h in history], "s-", label="val loss")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss")
    ax1.legend()
    for key in (metric, "map50_95"):
        if all(key in h for h in history):
            ax2.plot(epochs, [h[key] for h in history], "o-", label=key)
    ax2.set_xlabel("epoch")
    ax2.set_ylim(0, 1.0)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_title("validation")
    ax2.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
