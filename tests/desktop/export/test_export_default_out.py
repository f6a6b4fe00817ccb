"""`edgekit export DIR/best.pt` needs no more flags: the ONNX lands beside the checkpoint."""

import pytest

from edgekit.commands.export import default_out
from edgekit.errors import ConfigError


def test_checkpoint_gets_onnx_beside_it(tmp_path):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"x")
    assert default_out(str(ckpt), None) == str(tmp_path / "best.onnx")
    assert default_out(str(ckpt), "other.onnx") == "other.onnx"


@pytest.mark.parametrize("source", ["torchvision:resnet18", "model.onnx", "pkg.mod:factory"])
def test_other_sources_must_say_where(tmp_path, source):
    with pytest.raises(ConfigError, match="--out"):
        default_out(source, None)
