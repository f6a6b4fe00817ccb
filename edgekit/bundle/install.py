"""Install, roll back and list releases under a root directory (device side).

Layout::

    ROOT/
      releases/<bundle_id>/   one directory per installed bundle (manifest.json, model.onnx, ...,
                              release.json: when installed, engine built)
      current -> releases/<bundle_id>     the live release (a relative symlink, switched atomically)
      releases/<id>/model.engine(.json) -> the engine (and sidecar) built for it in the engine cache
      state.json              {"history": [ids in activation order]}: what `rollback` goes back to
      .lock                   flock held while installing or rolling back

The `current` link is switched by creating a new symlink under a temporary name and renaming it
over the old one (``os.replace``): readers see the old release or the new one, never neither.
A release is fully unpacked, verified and its engine built before the switch, so any failure
leaves the current release live.
"""

import contextlib
import json
import os
import shutil
import tempfile
import time

from edgekit.bundle.verify import verify_bundle
from edgekit.errors import BundleError, UserError
from edgekit.fsutil import atomic_write_json, sha256_file
from edgekit.progress import say

RELEASES = "releases"
CURRENT = "current"
STATE = "state.json"
ENGINE_LINK = "model.engine"
RELEASE_INFO = "release.json"
DEFAULT_KEEP = 3


def _write_json(path, data):
    atomic_write_json(path, data)
    os.chmod(path, 0o644)


@contextlib.contextmanager
def _locked(root):
    import fcntl

    os.makedirs(os.path.join(root, RELEASES), exist_ok=True)
    handle = open(os.path.join(root, ".lock"), "a")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BundleError("another install or rollback is running under %s" % root,
                              hint="wait for it to finish, then retry")
        yield
    finally:
        handle.close()


def _read_state(root):
    try:
        with open(os.path.join(root, STATE)) as handle:
            history = json.load(handle).get("history", [])
        return [h for h in history if isinstance(h, str)]
    except (OSError, ValueError, AttributeError):
        return []


def current_id(root):
    """The live release id, or None."""
    link = os.path.join(root, CURRENT)
    if not os.path.islink(link):
        return None
    return os.path.basename(os.readlink(link).rstrip("/"))


def _installed(root):
    base = os.path.join(root, RELEASES)
    return sorted(n for n in os.listdir(base) if not n.startswith(".") and os.path.isdir(os.path.join(base, n)))


def _switch(root, bundle_id):
    """Point ROOT/current at releases/<id> atomically."""
    tmp = os.path.join(root, ".current.tmp-%d" % os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join(RELEASES, bundle_id), tmp)
    os.replace(tmp, os.path.join(root, CURRENT))
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record_activation(root, bundle_id):
    history = [h for h in _read_state(root) if h != bundle_id] + [bundle_id]
    _write_json(os.path.join(root, STATE), {"history": history})


def _prune(root, keep, log):
    """Keep the current release and the newest ``keep - 1`` others (by activation order)."""
    live = current_id(root)
    history = _read_state(root)
    installed = _installed(root)
    order = [i for i in installed if i not in history] + [h for h in history if h in installed]
    others = [i for i in order if i != live]
    doomed = others[:max(0, len(others) - (keep - 1))]
    for bundle_id in doomed:
        shutil.rmtree(os.path.join(root, RELEASES, bundle_id))
        log("removed old release %s (keeping %d)" % (bundle_id, keep))
    if doomed:
        _write_json(os.path.join(root, STATE), {"history": [h for h in history if h not in doomed]})
    return doomed


def _clean_staging(root):
    base = os.path.join(root, RELEASES)
    for name in os.listdir(base):
        if name.startswith(".staging-"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _default_builder(onnx_path, **kwargs):
    try:
        from edgekit.engine.build import build_engine
    except ImportError as exc:
        raise BundleError("the TensorRT engine builder is not available here (%s)" % exc)
    return build_engine(onnx_path, **kwargs)


def _build(release_dir, manifest, builder, cache_dir, log):
    """Build the TensorRT engine of an unpacked release, link it in as model.engine (+ .json);
    returns the engine record as a dict."""
    onnx_path = os.path.join(release_dir, manifest["model"])
    calib = manifest.get("calib_cache")
    log("building the %s TensorRT engine for %s (this takes minutes on a Nano)"
        % (manifest["precision"], manifest["bundle_id"]))
    try:
        record = (builder or _default_builder)(
            onnx_path, precision=manifest["precision"], cache_dir=cache_dir,
            calib_cache=os.path.join(release_dir, calib) if calib else None,
            force=bool(manifest.get("force")), log=log)
    except Exception as exc:     # a failed build on the board, whatever raised it: refuse the release
        text = exc.one_line() if isinstance(exc, UserError) else "%s: %s" % (type(exc).__name__, exc)
        raise BundleError("engine build failed for bundle %s: %s" % (manifest["bundle_id"], text.rstrip(".")),
                          hint="the current release stays live; fix the cause, or install with --no-build "
                          "and build later with `edgekit build`")
    engine = {"path": getattr(record, "path", None), "sidecar": getattr(record, "sidecar", None),
              "key_hash": getattr(record, "key_hash", None), "built": bool(getattr(record, "built", True))}
    for name, target in ((ENGINE_LINK, engine["path"]), (ENGINE_LINK + ".json", engine["sidecar"])):
        link = os.path.join(release_dir, name)
        if target and os.path.exists(target):
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.path.abspath(target), link)
    return engine


def _engine_step(release_dir, root, manifest, build, builder, cache_dir, log):
    from edgekit.targets import get_target

    if not get_target(manifest["target"]).uses_tensorrt:
        return "not-needed", None
    if not build:
        log("engine not built (--no-build): build it with `edgekit build %s`"
            % os.path.join(root, CURRENT, manifest["model"]))
        return "skipped", None
    engine = _build(release_dir, manifest, builder, cache_dir, log)
    return ("built" if engine["built"] else "cached"), engine


def install(bundle, root, keep=DEFAULT_KEEP, build=True, target=None, builder=None, cache_dir=None, log=say):
    """Verify, unpack, build and activate a bundle. Returns a report dict.

    ``builder`` (default ``edgekit.engine.build.build_engine``) is called for TensorRT targets unless
    ``build`` is False, with ``cache_dir`` (None: the engine cache's default, $EDGEKIT_CACHE_DIR or
    ~/.cache/edgekit/engines: the one `edgekit serve` uses as the same user); the engine and its sidecar
    are linked into the release as model.engine and model.engine.json. On any failure the staging
    directory is removed and `current` is untouched.
    """
    if keep < 1:
        raise UserError("--keep must be at least 1", hint="keep 2 or more to be able to roll back")
    root = os.path.abspath(os.fspath(root))
    with _locked(root):
        _clean_staging(root)
        previous = current_id(root)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.join(root, RELEASES))
        os.chmod(staging, 0o755)         # the daemon runs as another user than the installer
        try:
            verified = verify_bundle(bundle, target=target, dest=staging)
            manifest = verified.manifest
            bundle_id = verified.bundle_id
            final = os.path.join(root, RELEASES, bundle_id)
            reused = _same_release(final, staging)
            log("verified %s: %s, %s, %d files" % (bundle_id, manifest["target"], manifest["precision"],
                                                   len(manifest["files"])))
            status, engine = _engine_step(final if reused else staging, root, manifest, build, builder,
                                          cache_dir, log)
            if reused:
                shutil.rmtree(staging)
                log("release %s is already installed" % bundle_id)
            else:
                _write_json(os.path.join(staging, RELEASE_INFO), {
                    "bundle_id": bundle_id, "installed_at": _now(), "engine": engine, "engine_status": status})
                if os.path.exists(final):
                    raise BundleError("a different bundle with id %s is already installed" % bundle_id,
                                      hint="remove %s first" % final)
                os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _switch(root, bundle_id)
        _record_activation(root, bundle_id)
        log("current -> %s/%s (was %s)" % (RELEASES, bundle_id, previous or "none"))
        removed = _prune(root, keep, log)
    return {"bundle_id": bundle_id, "root": root, "release": final, "previous": previous,
            "changed": previous != bundle_id, "reused": reused, "target": manifest["target"],
            "precision": manifest["precision"], "engine_status": status, "engine": engine,
            "removed": removed, "target_checked": verified.target_checked}


def _same_release(final, staging):
    """True when releases/<id> already holds this very bundle (same manifest bytes)."""
    old = os.path.join(final, "manifest.json")
    return os.path.isfile(old) and sha256_file(old) == sha256_file(os.path.join(staging, "manifest.json"))


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def rollback(root, if_current=None, log=say):
    """Make the previously activated release current again. With ``if_current``, only when the
    live release is that id (so a deploy that failed before switching rolls nothing back)."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(os.path.join(root, RELEASES)):
        raise BundleError("no releases under %s" % root, hint="check --root")
    with _locked(root):
        live = current_id(root)
        if if_current is not None and live != if_current:
            log("current release is %s, not %s: nothing to roll back" % (live or "none", if_current))
            return {"changed": False, "current": live, "previous": live}
        installed = _installed(root)
        history = [h for h in _read_state(root) if h in installed]
        earlier = history[:history.index(live)] if live in history else history
        candidates = [h for h in earlier if h != live]
        if not candidates:
            raise BundleError("no earlier release to roll back to under %s (current: %s)" % (root, live or "none"),
                              hint="install a bundle, or keep more releases with --keep")
        target = candidates[-1]
        _switch(root, target)
        _write_json(os.path.join(root, STATE), {"history": candidates})
        log("rolled back: current -> %s/%s (was %s)" % (RELEASES, target, live))
    return {"changed": True, "current": target, "previous": live}


def list_releases(root):
    """Installed releases, oldest activation first: [{id, current, target, precision, ...}]."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(os.path.join(root, RELEASES)):
        return []
    live = current_id(root)
    history = _read_state(root)
    installed = _installed(root)
    order = [i for i in installed if i not in history] + [h for h in history if h in installed]
    rows = []
    for bundle_id in order:
        base = os.path.join(root, RELEASES, bundle_id)
        manifest = _load_json(os.path.join(base, "manifest.json"))
        info = _load_json(os.path.join(base, RELEASE_INFO))
        rows.append({"bundle_id": bundle_id, "current": bundle_id == live, "target": manifest.get("target"),
                     "precision": manifest.get("precision"), "created_at": manifest.get("created_at"),
                     "installed_at": info.get("installed_at"), "engine": info.get("engine_status"),
                     "model": (manifest.get("source") or {}).get("model")})
    return rows


def _load_json(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
