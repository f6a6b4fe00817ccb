"""A model ready to use: metadata + runner + the shared pre/post-processing.

    with Predictor.open("model.onnx") as model:
        result = model.predict(frame_bgr)

The stage functions (``preprocess``, ``infer``, ``postprocess``) are public so the daemon and the
profiler time each stage on the very same code.
"""

from edgekit.meta import ModelMeta, read_meta
from edgekit.runners import choose_backend, open_runner
from edgekit.vision.decoders import get_decoder
from edgekit.vision.nms import dedupe_classes
from edgekit.vision.preprocess import Preprocessor


class Predictor(object):
    def __init__(self, runner, meta):
        self.runner = runner
        self.meta = meta
        self.preprocessor = Preprocessor.from_meta(meta)
        self.decoder = get_decoder(meta.decoder["type"])
        self.class_agnostic = False       # one box per object across classes (set_class_agnostic)

    @classmethod
    def open(cls, model_path, backend="auto", meta=None, **runner_options):
        """Build from a model file; ``meta`` (ModelMeta or dict) overrides the embedded metadata."""
        if meta is None:
            meta = read_meta(model_path)
        elif isinstance(meta, dict):
            meta = ModelMeta.from_dict(meta)
        backend, _ = choose_backend(backend, model_path)
        return cls(open_runner(backend, model_path, **runner_options), meta)

    def __enter__(self):
        self.runner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.runner.__exit__(*exc)

    @property
    def input_name(self):
        return self.runner.input_specs()[0].name

    def preprocess(self, frame):
        """BGR frame -> (feed dict, LetterboxInfo)."""
        tensor, info = self.preprocessor(frame)
        return {self.input_name: tensor}, info

    def infer(self, feed):
        return self.runner.infer(feed, check=False)

    def set_class_agnostic(self, setting, tracking=False):
        """``setting``: True, False, or "auto" (on when a tracker consumes the boxes, else what the
        model's decoder metadata says: ``class_agnostic``). When on, a detection overlapping a
        higher-scoring one of another class (IoU >= 0.7) is dropped after decoding, whatever the
        decoder. Returns the value in force."""
        if setting == "auto":
            setting = bool(tracking) or bool(self.meta.decoder.get("class_agnostic", False))
        self.class_agnostic = bool(setting) and self.meta.task == "detection"
        return self.class_agnostic

    def postprocess(self, outputs, info):
        result = self.decoder(outputs, self.meta, [info])[0]
        if self.class_agnostic:
            result = dedupe_classes(result)
        return result

    def predict(self, frame):
        feed, info = self.preprocess(frame)
        return self.postprocess(self.infer(feed), info)
