"""The bundle manifest: what a bundle holds and how to check it.

``manifest.json`` at the root of the tarball::

    {
      "format": "edgekit-bundle/1",
      "bundle_id": "shapes-fp16-20261122T044000Z-1a2b3c4d",   # [A-Za-z0-9._-], the release directory name
      "edgekit_version": "0.1.0",
      "target": "jetson-nano",
      "runtime": "tensorrt" | "onnxruntime",                   # from the target preset
      "precision": "fp16",
      "force": false,                    # made with --force (a precision the target runs slowly)
      "created_at": "2026-11-22T04:40:00Z",
      "model": "model.onnx",             # entry names inside the bundle (null when absent)
      "meta": "meta.json",
      "calib_cache": "calib.cache" | null,
      "config": "serve.yaml" | null,
      "wheel": "wheels/edgekit-0.1.0-py3-none-any.whl" | null,
      "source": {"model": "<original file name>", "model_sha256": "..."},
      "files": {"model.onnx": {"sha256": "<hex>", "size": 1234}, ...}   # every file except manifest.json
    }
"""

import json
import re

from edgekit.errors import BundleError

FORMAT = "edgekit-bundle/1"
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
ROLES = ("model", "meta", "calib_cache", "config", "wheel")
REQUIRED = ("format", "bundle_id", "edgekit_version", "target", "precision", "created_at", "model", "files")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def valid_id(bundle_id):
    return isinstance(bundle_id, str) and bool(_ID.match(bundle_id)) and ".." not in bundle_id


def safe_id_part(text):
    """A string reduced to characters a bundle id may hold."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return cleaned[:48] or "model"


def _bad(problem):
    raise BundleError("bundle manifest %s" % problem, hint="rebuild the bundle with `edgekit bundle`")


def parse_manifest(data):
    """Validate manifest bytes; return the dict. Raises BundleError with what is wrong."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        _bad("is not valid JSON (%s)" % exc)
    if not isinstance(manifest, dict):
        _bad("is not a JSON object")
    fmt = manifest.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("edgekit-bundle/"):
            raise BundleError("bundle format %s is not %s" % (fmt, FORMAT),
                              hint="install the edgekit version that made it on the board")
        _bad("has format %r, not %s" % (fmt, FORMAT))
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        _bad("lacks %s" % ", ".join(missing))
    if not valid_id(manifest["bundle_id"]):
        _bad("has an unsafe bundle_id %r" % (manifest["bundle_id"],))
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        _bad("lists no files")
    for name, entry in files.items():
        if name == MANIFEST_NAME or not isinstance(entry, dict) or not _SHA.match(str(entry.get("sha256"))) \
                or not isinstance(entry.get("size"), int):
            _bad("has a bad entry for %r" % (name,))
    for role in ROLES:
        entry = manifest.get(role)
        if entry is not None and entry not in files:
            _bad("names %s %r, which it does not list in files" % (role, entry))
    return manifest


def dump_manifest(manifest):
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
