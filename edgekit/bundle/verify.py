"""Verify a bundle: one streaming pass over the tarball that checks every member's safety and
sha256 against ``manifest.json``, optionally unpacking into a staging directory as it goes (so
what is installed is exactly what was checked: no second read of the archive)."""

import hashlib
import os
import tarfile
import zlib

from edgekit.bundle import manifest as mf
from edgekit.bundle import safety
from edgekit.errors import BundleError, UserError

CHUNK = 1 << 16            # 64 KiB reads: cache-friendly (benchmarks/bench_bundle.py: faster than 1 MiB)


class Verified(object):
    """A bundle whose every file matched its manifest."""

    def __init__(self, path, manifest, target_checked):
        self.path = path
        self.manifest = manifest
        self.target_checked = target_checked

    @property
    def bundle_id(self):
        return self.manifest["bundle_id"]

    def summary(self):
        m = self.manifest
        return {"bundle": self.path, "bundle_id": m["bundle_id"], "target": m["target"],
                "precision": m["precision"], "edgekit_version": m["edgekit_version"],
                "created_at": m["created_at"], "files": len(m["files"]),
                "bytes": sum(e["size"] for e in m["files"].values()),
                "target_checked": self.target_checked, "ok": True}


def _corrupt(path, exc):
    return BundleError("%s is not a readable bundle (corrupt or truncated tarball: %s)"
                       % (path, str(exc) or type(exc).__name__),
                       hint="copy it again, or rebuild it with `edgekit bundle`")


def _copy_hash(source, dest_path, size):
    digest = hashlib.sha256()
    out = None
    if dest_path is not None:
        parent = os.path.dirname(dest_path)
        if not os.path.isdir(parent):
            os.makedirs(parent)
            os.chmod(parent, 0o755)
        out = open(dest_path, "xb")
        os.chmod(dest_path, 0o644)           # readable by the daemon's user, whatever the umask
    try:
        remaining = size
        while remaining > 0:
            block = source.read(min(CHUNK, remaining))
            if not block:
                raise EOFError("member data ends early")
            remaining -= len(block)
            digest.update(block)
            if out is not None:
                out.write(block)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest()


def _data(tar, member):
    """The member's bytes, read straight from the (decompressed) archive stream as tarfile's own
    extraction does: no extra buffering layer between gzip and the hash."""
    tar.fileobj.seek(member.offset_data)
    return tar.fileobj


def _scan_members(tar, dest):
    """Walk the archive once. Returns (manifest bytes or None, {name: (sha256, size)})."""
    budget = safety.Budget()
    seen = {}
    manifest_bytes = None
    for member in tar:
        budget.add(member)
        name = safety.check_member(member)
        if name in seen or (name == mf.MANIFEST_NAME and manifest_bytes is not None):
            raise BundleError("bundle member %r appears twice" % name, hint="rebuild the bundle")
        if member.isdir():
            if dest is not None and name != ".":
                os.makedirs(os.path.join(dest, name), exist_ok=True)
                os.chmod(os.path.join(dest, name), 0o755)
            continue
        if not member.isfile():
            raise BundleError("bundle member %r is a link; edgekit bundles hold only regular files" % name,
                              hint="rebuild the bundle with `edgekit bundle`")
        source = _data(tar, member)
        if name == mf.MANIFEST_NAME:
            if member.size > mf.MAX_MANIFEST_BYTES:
                raise BundleError("bundle manifest is %d bytes, too large" % member.size)
            manifest_bytes = source.read(member.size)
            if len(manifest_bytes) != member.size:
                raise EOFError("manifest data ends early")
            if dest is not None:
                with open(os.path.join(dest, name), "xb") as handle:
                    os.chmod(handle.name, 0o644)
                    handle.write(manifest_bytes)
            continue
        target = os.path.join(dest, name) if dest is not None else None
        seen[name] = (_copy_hash(source, target, member.size), member.size)
    return manifest_bytes, seen


def _compare(manifest, seen):
    problems = []
    for name in sorted(manifest["files"]):
        entry = manifest["files"][name]
        if name not in seen:
            problems.append("%s is missing (incomplete bundle)" % name)
        elif seen[name][0] != entry["sha256"] or seen[name][1] != entry["size"]:
            problems.append("%s fails its sha256 check (tampered or corrupt)" % name)
    for name in sorted(set(seen) - set(manifest["files"])):
        problems.append("%s is not listed in the manifest" % name)
    if problems:
        more = " (and %d more)" % (len(problems) - 2) if len(problems) > 2 else ""
        raise BundleError("bundle %s refused: %s%s" % (manifest["bundle_id"], "; ".join(problems[:2]), more),
                          hint="copy it again or rebuild it with `edgekit bundle`; nothing was installed")


def check_target(manifest, expected):
    """Refuse a bundle made for another target. ``expected`` None: not checked (returns False)."""
    from edgekit.targets import get_target

    try:
        get_target(manifest["target"])
    except UserError:
        raise BundleError("bundle %s is for target %r, which this edgekit does not know"
                          % (manifest["bundle_id"], manifest["target"]), hint="upgrade edgekit on this device")
    if expected is None:
        return False
    expected = get_target(expected).name
    if manifest["target"] != expected:
        raise BundleError("bundle %s is for %s, not for this %s" % (manifest["bundle_id"], manifest["target"],
                                                                     expected),
                          hint="make it with `edgekit bundle MODEL --target %s`" % expected)
    return True


def verify_bundle(path, target=None, dest=None):
    """Check a bundle (and unpack it into the empty directory ``dest`` when given).

    Refuses corrupt tarballs, unsafe members, a missing or invalid manifest, missing, extra or
    altered files, and a bundle made for another target than ``target``. Returns ``Verified``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BundleError("bundle not found: %s" % path, hint="check the path")
    try:
        with tarfile.open(path, "r:*") as tar:
            manifest_bytes, seen = _scan_members(tar, dest)
            while tar.fileobj.read(CHUNK):      # read to the end so gzip checks its CRC and length
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and exc.filename and dest and exc.filename.startswith(dest):
            raise BundleError("cannot unpack into %s: %s" % (dest, exc.strerror or exc),
                              hint="check free space and permissions")
        raise _corrupt(path, exc)
    if manifest_bytes is None:
        raise BundleError("%s has no %s (incomplete, or not an edgekit bundle)" % (path, mf.MANIFEST_NAME),
                          hint="make bundles with `edgekit bundle MODEL.onnx --out NAME.tar.gz`")
    manifest = mf.parse_manifest(manifest_bytes)
    _compare(manifest, seen)
    checked = check_target(manifest, target)
    return Verified(path, manifest, checked)
