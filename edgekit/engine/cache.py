"""The engine cache: one engine per key, with a sidecar JSON that says what it is.

TensorRT engines are not portable across TensorRT versions or GPUs, so an engine is cached under a
key of everything that makes it what it is: the ONNX file's sha256, TensorRT version, CUDA version,
GPU name and compute capability, precision, input shapes, calibration-cache sha256. Files:

    <cache_dir>/<model>-<precision>-<key hash>.engine        the serialized engine
    <cache_dir>/<model>-<precision>-<key hash>.engine.json   {"format", "key", "key_hash", "meta", ...}

Both are written atomically (engine first, sidecar last: an engine without its sidecar is not an
entry). ``edgekit.meta.read_meta(engine)`` reads the ``meta`` block of the sidecar.
"""

import hashlib
import json
import os

from edgekit import fsutil

FORMAT = "edgekit-engine/1"
ENGINE_EXT = ".engine"
SIDECAR_EXT = ".engine.json"
KEY_FIELDS = ("onnx_sha256", "tensorrt", "cuda", "gpu", "compute_capability", "precision", "shapes",
              "calib_sha256")


def default_cache_dir():
    env = os.environ.get("EDGEKIT_CACHE_DIR")
    if env:
        return os.path.expanduser(env)
    return os.path.join(os.path.expanduser("~"), ".cache", "edgekit", "engines")


def make_key(onnx_sha256, tensorrt, cuda, gpu, compute_capability, precision, shapes=None, calib_sha256=None):
    """The cache key (a dict of KEY_FIELDS). ``shapes``: {input: [min, opt, max]} or None."""
    shapes = dict((str(k), [list(map(int, s)) for s in v]) for k, v in sorted((shapes or {}).items()))
    return {"onnx_sha256": onnx_sha256, "tensorrt": str(tensorrt), "cuda": str(cuda), "gpu": str(gpu),
            "compute_capability": str(compute_capability), "precision": precision, "shapes": shapes,
            "calib_sha256": calib_sha256}


def key_hash(key):
    text = json.dumps(dict((k, key.get(k)) for k in KEY_FIELDS), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def key_differences(old, new):
    """[(field, old, new)] of the fields that differ, in KEY_FIELDS order."""
    return [(f, old.get(f), new.get(f)) for f in KEY_FIELDS if old.get(f) != new.get(f)]


def describe_differences(diffs):
    parts = []
    for field, old, new in diffs:
        if field.endswith("sha256"):
            parts.append("%s changed" % field.replace("_sha256", " file"))
        else:
            parts.append("%s %s -> %s" % (field, _short(old), _short(new)))
    return ", ".join(parts)


def _short(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def model_stem(onnx_path):
    stem = os.path.splitext(os.path.basename(str(onnx_path)))[0]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "model"


def entry_paths(cache_dir, stem, key):
    base = os.path.join(cache_dir, "%s-%s-%s" % (stem, key["precision"], key_hash(key)))
    return base + ENGINE_EXT, base + SIDECAR_EXT


class Entry(object):
    """One cached engine: engine path, sidecar path, sidecar data (None if unreadable)."""

    def __init__(self, engine, sidecar, data):
        self.engine, self.sidecar, self.data = engine, sidecar, data

    @property
    def key(self):
        return (self.data or {}).get("key") or {}

    @property
    def complete(self):
        return self.data is not None and os.path.exists(self.engine)

    def row(self):
        data = self.data or {}
        key = self.key
        size = os.path.getsize(self.engine) if os.path.exists(self.engine) else None
        return {"engine": os.path.basename(self.engine), "model": data.get("model"),
                "precision": key.get("precision"), "tensorrt": key.get("tensorrt"), "gpu": key.get("gpu"),
                "compute": key.get("compute_capability"), "size_mib": round(size / 1048576.0, 2) if size else None,
                "built_at": data.get("built_at"), "key_hash": data.get("key_hash"),
                "status": "ok" if self.complete else "incomplete", "path": self.engine}


def read_sidecar(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def entries(cache_dir):
    """Every engine or sidecar in the cache directory, paired."""
    if not os.path.isdir(cache_dir):
        return []
    bases = set()
    for name in os.listdir(cache_dir):
        if name.endswith(SIDECAR_EXT):
            bases.add(name[:-len(SIDECAR_EXT)])
        elif name.endswith(ENGINE_EXT):
            bases.add(name[:-len(ENGINE_EXT)])
    out = []
    for base in sorted(bases):
        path = os.path.join(cache_dir, base)
        out.append(Entry(path + ENGINE_EXT, path + SIDECAR_EXT, read_sidecar(path + SIDECAR_EXT)))
    return out


def stale_entries(cache_dir, stem, key):
    """Entries for the same model name and precision whose key differs from ``key``."""
    engine, _ = entry_paths(cache_dir, stem, key)
    out = []
    for entry in entries(cache_dir):
        if entry.engine == engine or entry.data is None:
            continue
        if entry.data.get("model") == stem and entry.key.get("precision") == key["precision"]:
            out.append(entry)
    return out


def write_entry(engine_path, sidecar_path, engine_bytes, sidecar):
    """Engine first, then the sidecar, each atomically."""
    fsutil.atomic_write_bytes(engine_path, engine_bytes)
    try:
        fsutil.atomic_write_json(sidecar_path, sidecar)
    except BaseException:
        remove(engine_path)
        raise


def remove(*paths):
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def remove_stale_temps(cache_dir, older_than=3600.0):
    """Temporary files of writes that never finished (a build killed by the OOM killer mid-write).
    Only those older than ``older_than`` seconds: a concurrent build's temp file is left alone."""
    import time

    if not os.path.isdir(cache_dir):
        return 0
    now, count = time.time(), 0
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        if name.startswith(".") and name.endswith(".tmp") and (ENGINE_EXT in name or "timing-" in name):
            try:
                if now - os.path.getmtime(path) >= older_than:
                    os.unlink(path)
                    count += 1
            except OSError:
                pass
    return count


def clear(cache_dir):
    """Remove every engine and sidecar (nothing else) from the cache directory, and leftovers of
    interrupted writes. Returns the count of engines."""
    found = entries(cache_dir)
    for entry in found:
        remove(entry.engine, entry.sidecar)
    remove_stale_temps(cache_dir, older_than=0)
    return len(found)
