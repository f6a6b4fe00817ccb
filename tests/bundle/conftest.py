"""Fixtures for bundle tests (helpers live in bundle_helpers.py)."""

import pytest

from bundle_helpers import make_classifier


@pytest.fixture
def model(tmp_path):
    return make_classifier(tmp_path / "shapes.onnx")


@pytest.fixture
def bundle_for(tmp_path):
    """bundle_for(target, scale=1.0, name=None, **make_bundle options) -> path of a fresh bundle."""
    from edgekit.desktop.bundle_make import make_bundle

    def make(target="x86-cpu", scale=1.0, name=None, **options):
        name = name or "%s-%s" % (target, scale)
        onnx_path = make_classifier(tmp_path / ("%s.onnx" % name), scale=scale)
        out = str(tmp_path / ("%s.tar.gz" % name))
        make_bundle(onnx_path, out, target=target, **options)
        return out

    return make


