"""Making a bundle (desktop side): ``edgekit bundle MODEL.onnx --out NAME.tar.gz``.

The bundle carries the ONNX model (engines are built on the board: they are not portable), its
edgekit metadata as ``meta.json``, an optional INT8 calibration cache and daemon config, optionally
the edgekit wheel for an offline install, and ``manifest.json`` (format in edgekit.bundle.manifest).
The archive is written to a temporary file, verified with the device-side verifier, then renamed
into place: a failed run leaves nothing behind.
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time

from edgekit import __version__
from edgekit.bundle import manifest as mf
from edgekit.bundle.verify import verify_bundle
from edgekit.errors import BundleError, ConfigError, ModelError, PrecisionError
from edgekit.fsutil import sha256_file
from edgekit.progress import say

SUFFIXES = (".tar.gz", ".tgz")


def choose_precision(target, meta, precision, calib_cache):
    """The precision the board will run. TensorRT targets build fp16 (or int8 from a QDQ model or a
    calibration cache) from one ONNX file; ONNX Runtime targets run the file as it is."""
    if target.uses_tensorrt:
        if precision is None:
            precision = "int8" if meta.precision == "int8" or calib_cache else (
                "fp16" if "fp16" in target.fast_precisions else "fp32")
            say("precision: %s (default for %s with this model)" % (precision, target.name))
        return precision
    if precision is None:
        precision = meta.precision
    if precision != meta.precision:
        raise PrecisionError("%s runs the ONNX model as it is (%s), not %s" % (target.name, meta.precision, precision),
                             hint="quantize it first with `edgekit quantize`, or drop --precision")
    return precision


def _check_calib(target, meta, path, precision):
    if target.uses_tensorrt and precision == "int8" and meta.precision != "int8" and not path:
        raise PrecisionError("int8 on %s needs a QDQ model or a calibration cache" % target.name,
                             hint="pass --calib-cache FILE from `edgekit quantize`, or the int8 ONNX it wrote")
    if path is None:
        return
    if not os.path.isfile(path):
        raise ConfigError("calibration cache not found: %s" % path, hint="check --calib-cache")
    if precision != "int8":
        raise ConfigError("--calib-cache is only used by int8 builds, and this bundle is %s" % precision,
                          hint="drop --calib-cache, or pass --precision int8")
    from edgekit.engine.calib_cache import read_calibration_cache

    read_calibration_cache(path)       # raises ModelError on a malformed cache


def _check_config(path):
    if path is None:
        return
    from edgekit.yamlfile import load_yaml

    from edgekit.service.config import defaults, merge

    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("%s is not a YAML mapping" % path, hint="pass a daemon config like deploy/serve.example.yaml")
    try:
        merge(defaults(), data)          # the daemon's own schema: unknown keys, types, ranges
    except ConfigError as exc:
        raise ConfigError("--config %s: %s" % (path, exc.message), hint=exc.hint)


def source_root():
    """The edgekit source tree (for --with-wheel), or None when edgekit is installed from a wheel."""
    import edgekit

    root = os.path.dirname(os.path.dirname(os.path.abspath(edgekit.__file__)))
    project = os.path.join(root, "pyproject.toml")
    if os.path.isfile(project):
        with open(project) as handle:
            if 'name = "edgekit"' in handle.read():
                return root
    return None


def build_wheel(out_dir):
    """Build the edgekit wheel offline from the source tree with flit_core; returns its path."""
    root = source_root()
    if root is None:
        raise BundleError("--with-wheel needs the edgekit source tree, and this edgekit is installed from a wheel",
                          hint="run `edgekit bundle` from a source checkout (pip install -e .)")
    code = "import sys, flit_core.buildapi as b; print(b.build_wheel(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, out_dir], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleError("building the edgekit wheel failed: %s" % tail,
                          hint="pip install 'flit_core>=3.7,<4' into this environment")
    return os.path.join(out_dir, stdout.strip().splitlines()[-1])


def _bundle_id(model, precision, created, files):
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(("%s:%s\n" % (name, files[name]["sha256"])).encode("utf-8"))
    stem = mf.safe_id_part(os.path.splitext(os.path.basename(model))[0])
    return "%s-%s-%s-%s" % (stem, precision, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created)),
                            digest.hexdigest()[:8])


def _add(tar, name, data=None, path=None, mtime=0):
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, int(mtime), 0, 0, "", ""
    if path is not None:
        info.size = os.path.getsize(path)
        with open(path, "rb") as handle:
            tar.addfile(info, handle)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _entries(model, meta_bytes, calib_cache, config, wheel):
    """(role, name in bundle, path or bytes) for every file."""
    items = [("model", "model.onnx", model), ("meta", "meta.json", meta_bytes)]
    if calib_cache:
        items.append(("calib_cache", "calib.cache", calib_cache))
    if config:
        items.append(("config", "serve.yaml", config))
    if wheel:
        items.append(("wheel", "wheels/" + os.path.basename(wheel), wheel))
    return items


def _file_entry(content):
    if isinstance(content, bytes):
        return {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    return {"sha256": sha256_file(content), "size": os.path.getsize(content)}


def _load_meta(model, meta_yaml):
    from edgekit.meta import load_meta_yaml, read_meta

    if not os.path.isfile(model):
        raise ModelError("model file not found: %s" % model, hint="check the path")
    if not model.endswith(".onnx"):
        raise ModelError("%s is not an .onnx file" % model,
                         hint="bundles carry ONNX; the board builds its own TensorRT engine from it")
    return load_meta_yaml(meta_yaml, model=model) if meta_yaml else read_meta(model)


def make_bundle(model, out, precision=None, calib_cache=None, config=None, target="jetson-nano",
                with_wheel=False, force=False, meta_yaml=None):
    """Write a verified bundle to ``out``; returns a report (the --json object)."""
    from edgekit.targets import get_target

    model, out = os.fspath(model), os.fspath(out)
    if not out.endswith(SUFFIXES):
        raise ConfigError("--out must end with .tar.gz or .tgz, got %s" % out, hint="e.g. --out shapes.tar.gz")
    target = get_target(target)
    meta = _load_meta(model, meta_yaml)
    precision = choose_precision(target, meta, precision, calib_cache)
    warning = target.check_precision(precision, force)
    if warning:
        say("warning: " + warning)
    _check_calib(target, meta, calib_cache, precision)
    _check_config(config)
    created = time.time()
    meta_bytes = mf.dump_manifest(meta.replace(target=target.name).to_dict())
    workdir = tempfile.mkdtemp(prefix=".edgekit-bundle-")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(out)))
    os.close(fd)
    try:
        wheel = build_wheel(workdir) if with_wheel else None
        items = _entries(model, meta_bytes, calib_cache, config, wheel)
        files = dict((name, _file_entry(content)) for _, name, content in items)
        manifest = {
            "format": mf.FORMAT, "bundle_id": _bundle_id(model, precision, created, files),
            "edgekit_version": __version__, "target": target.name, "runtime": target.runtime,
            "precision": precision, "force": bool(warning), "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            "source": {"model": os.path.basename(model), "model_sha256": files["model.onnx"]["sha256"]},
            "files": files}
        for role in mf.ROLES:
            manifest[role] = next((name for r, name, _ in items if r == role), None)
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:     # gzip's default: weights barely compress
            _add(tar, mf.MANIFEST_NAME, mf.dump_manifest(manifest), mtime=created)
            for _, name, content in items:
                if isinstance(content, bytes):
                    _add(tar, name, data=content, mtime=created)
                else:
                    _add(tar, name, path=content, mtime=created)
        verify_bundle(tmp, target=target.name)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return {"out": out, "bytes": os.path.getsize(out), "bundle_id": manifest["bundle_id"],
            "target": target.name, "precision": precision, "warning": warning,
            "files": sorted(files), "manifest": manifest}
