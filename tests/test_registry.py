"""The one lazy "module:attr" registry behind backends, decoders and sources."""

import sys
import types

import numpy as np
import pytest

from edgekit import runners
from edgekit.errors import BackendUnavailable, ConfigError, MetadataError, UserError
from edgekit.meta import ModelMeta
from edgekit.registry import Registry, load_target
from edgekit.sources import SOURCES, SourceError, open_source
from edgekit.vision import decoders


def test_load_target_imports_lazily_and_names_what_failed():
    assert load_target("os.path:join") is __import__("os").path.join
    with pytest.raises(UserError, match="not of the form"):
        load_target("os.path.join")
    with pytest.raises(ConfigError, match=r"widget w cannot be loaded: importing edgekit_no_such_module failed") as info:
        load_target("edgekit_no_such_module:thing", error=ConfigError, what="widget w", hint="pip install w")
    assert info.value.one_line().endswith("Pip install w.") and "\n" not in info.value.one_line()
    with pytest.raises(UserError, match="os.path has no nothing_here"):
        load_target("os.path:nothing_here")


def test_registry_keeps_order_lists_names_and_refuses_unknown_ones():
    reg = Registry("widget", unknown=ConfigError, extra=("auto",))
    reg.register("b", "os:getcwd", hint="h")
    reg.register("a", "os:getpid")
    reg.register("z", "os:getppid", first=True)
    assert reg.names() == ["z", "b", "a"]
    reg.unregister("z")
    assert reg.names() == ["b", "a"] and reg.choices() == ["auto", "b", "a"] and "a" in reg and len(reg) == 2
    assert reg.get("b", "hint") == "h" and reg.get("a", "hint") is None
    with pytest.raises(ConfigError, match=r"unknown widget 'c'") as info:
        reg.load("c")
    assert "use one of: auto, b, a" in info.value.one_line().lower()
    assert reg.load("a") is __import__("os").getpid


def test_the_three_registries_are_registries():
    for reg in (runners.BACKENDS, decoders.DECODERS, SOURCES):
        assert isinstance(reg, Registry)


# -- decoders -----------------------------------------------------------------------------------------
META = {"task": "detection", "labels": ["a", "b"], "input": {"name": "images", "shape": [1, 3, 8, 8]},
        "preprocess": {}, "decoder": {"type": "test-boxes", "score_threshold": 0.5}}


def _fake_decoder_module():
    module = types.ModuleType("edgekit_test_decoder")

    def decode(outputs, meta, infos=None):
        scores = outputs["scores"]
        return [{"task": "detection", "detections": [
            {"index": int(i), "label": meta.labels[int(i)], "score": float(s), "box": [0.0, 0.0, 1.0, 1.0]}
            for i, s in enumerate(row) if s >= meta.decoder["score_threshold"]]} for row in scores]

    module.decode = decode
    return module


@pytest.fixture
def test_decoder(monkeypatch):
    monkeypatch.setitem(sys.modules, "edgekit_test_decoder", _fake_decoder_module())
    decoders.DECODERS.register("test-boxes", "edgekit_test_decoder:decode")
    yield "test-boxes"
    decoders.DECODERS.unregister("test-boxes")


def test_an_unregistered_decoder_fails_metadata_validation():
    with pytest.raises(MetadataError, match="decoder.type"):
        ModelMeta.from_dict(META)


def test_a_decoder_registered_at_run_time_passes_metadata_validation_and_decodes(test_decoder):
    meta = ModelMeta.from_dict(META)
    assert meta.decoder["type"] == test_decoder
    assert ModelMeta.from_json(meta.to_json()).decoder == meta.decoder
    result = decoders.decode({"scores": np.array([[0.9, 0.1]])}, meta)
    assert [d["label"] for d in result[0]["detections"]] == ["a"]


def test_a_registered_decoder_whose_module_is_missing_is_one_clear_error():
    decoders.DECODERS.register("test-missing", "edgekit_no_such_decoder_module:decode")
    try:
        meta = ModelMeta.from_dict(dict(META, decoder={"type": "test-missing"}))
        with pytest.raises(MetadataError, match="decoder test-missing cannot be loaded"):
            decoders.decode({}, meta)
    finally:
        decoders.DECODERS.unregister("test-missing")


# -- backends -----------------------------------------------------------------------------------------
def test_backend_lists_come_from_the_registry():
    from edgekit.service.config import SCHEMA

    assert runners.names() == ["tensorrt", "onnxruntime", "opencv"]
    assert list(SCHEMA["model"]["backend"].choices) == ["auto"] + runners.names()


def test_a_backend_whose_module_cannot_import_is_unavailable_and_auto_skips_it(tmp_path):
    """What the daemon's own copy of the auto choice did (it caught ImportError): now the registry's."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    runners.BACKENDS.register("broken", "edgekit_no_such_runner_module:Runner", first=True, hint="pip install broken")
    try:
        assert runners.backend_available("broken") is False
        with pytest.raises(BackendUnavailable, match="backend broken cannot be loaded"):
            runners.runner_class("broken")
        backend, reason = runners.choose_backend("auto", str(model))
        assert backend != "broken" and reason.startswith("auto: first available of broken, tensorrt")
        from edgekit.service.config import load_config

        cfg = load_config(None, {"model.path": str(model), "source.uri": "synthetic://", "model.backend": "broken"})
        assert cfg["model"]["backend"] == "broken"       # the config's choices are read from the registry
    finally:
        runners.BACKENDS.unregister("broken")


def test_engine_files_pick_tensorrt_and_unknown_backends_are_config_errors():
    assert runners.choose_backend("auto", "x.plan") == ("tensorrt", "a TensorRT engine file")
    with pytest.raises(ConfigError, match="unknown backend 'tensorflow'"):
        runners.runner_class("tensorflow")


# -- sources ------------------------------------------------------------------------------------------
def test_sources_registry_gives_options_and_lazy_classes():
    assert SOURCES.get("file", "options") == ("realtime", "fps")
    with pytest.raises(SourceError, match="do not apply"):
        open_source("synthetic://", fps=3)
    with open_source("synthetic://?width=32&height=24&fps=0") as source:
        assert source.read(timeout=1.0).image.shape == (24, 32, 3)
