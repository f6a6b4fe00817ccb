"""edgekit: small vision models from a desktop to a camera on a Jetson Nano.

Everything outside ``edgekit.desktop`` is device side: it runs on Python 3.6 (JetPack 4.6)
and never imports torch or onnx.
"""

import os as _os
import platform as _platform

__version__ = "0.1.0"


def board_environment(environ, machine=None, release_file="/etc/nv_tegra_release"):
    """Set OPENBLAS_CORETYPE=ARMV8 in ``environ`` on an aarch64 Tegra board when it is unset, and say
    whether it did. numpy 1.19.5's aarch64 wheel bundles an OpenBLAS whose CPU detection dies with
    "Illegal instruction" at import on Jetsons (numpy issues 18131, 18468; 1.19.4 was not affected). Naming
    the core skips that detection; OpenBLAS reads
    the variable when numpy loads, so this runs before anything imports numpy. ``sudo`` and systemd
    drop the variable from a shell profile, hence here."""
    machine = machine or _platform.machine()
    if machine != "aarch64" or "OPENBLAS_CORETYPE" in environ or not _os.path.exists(release_file):
        return False
    environ["OPENBLAS_CORETYPE"] = "ARMV8"
    return True


board_environment(_os.environ)
