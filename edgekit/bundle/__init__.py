"""Bundles on the device: verify, install, roll back, list (Python 3.6, no torch/onnx).

A bundle is a ``.tar.gz`` made on the desktop by ``edgekit bundle MODEL.onnx`` (see
``edgekit.desktop.bundle_make``): the model, its metadata, an optional calibration cache, daemon
config and edgekit wheel, and ``manifest.json`` with the sha256 of every file.

Public API::

    verify_bundle(path, target=None, dest=None) -> Verified      (edgekit.bundle.verify)
    install(bundle, root, keep=3, build=True, target=None, builder=None) -> report dict
    rollback(root, if_current=None) -> {"changed", "current", "previous"}
    list_releases(root) -> [{"bundle_id", "current", "target", "precision", ...}]
"""

from edgekit.bundle.install import current_id, install, list_releases, rollback  # noqa: F401
from edgekit.bundle.verify import Verified, verify_bundle  # noqa: F401
