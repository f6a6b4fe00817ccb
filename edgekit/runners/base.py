"""The Runner protocol: a context manager with ``infer(feed) -> outputs`` (names -> numpy arrays).

Loaders build, runners run: a runner is constructed cheaply, its resources are acquired in
``__enter__`` (``activate``) and released in ``__exit__``. The public ``infer`` validates the feed
and calls ``infer_impl``. The daemon and the profiler share runners.
"""

import time

import numpy as np

from edgekit.errors import UserError


class TensorSpec(object):
    __slots__ = ("name", "shape", "dtype")

    def __init__(self, name, shape, dtype):
        self.name = name
        self.shape = list(shape)          # ints, or str/None for dynamic dimensions
        self.dtype = np.dtype(dtype)

    @property
    def is_dynamic(self):
        return any(not isinstance(d, int) or d < 0 for d in self.shape)

    def as_dict(self):
        return {"name": self.name, "shape": self.shape, "dtype": str(self.dtype)}

    def __repr__(self):
        return "TensorSpec(%r, %r, %s)" % (self.name, self.shape, self.dtype)


class Runner(object):
    """Base class. Subclasses set ``name`` and implement activate/deactivate/infer_impl; activate
    stores the model's TensorSpecs in ``self._inputs``/``self._outputs`` (or the subclass overrides
    input_specs/output_specs).

    ``last_timing`` holds the stage split of the last inference in milliseconds where the
    backend can measure it (TensorRT: ``h2d``, ``compute``, ``d2h``).
    """

    name = "base"
    concurrent = False         # True: infer() may be called from several threads at once (pipeline workers)

    def __init__(self, model_path, **options):
        self.model_path = model_path
        self.options = options
        self.is_active = False
        self.last_timing = {}

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self):
        self.activate()
        self.is_active = True
        return self

    def __exit__(self, exc_type, exc, tb):
        self.is_active = False
        self.deactivate()
        return False

    def activate(self):
        raise NotImplementedError

    def deactivate(self):
        pass

    # -- description ----------------------------------------------------------------------
    def input_specs(self):
        """[TensorSpec]; by default what ``activate`` stored in ``self._inputs``."""
        return self._inputs

    def output_specs(self):
        """[TensorSpec]; by default what ``activate`` stored in ``self._outputs``."""
        return self._outputs

    def describe(self):
        """Context for reports: backend, version, provider, threads, precision."""
        return {"backend": self.name}

    # -- inference ------------------------------------------------------------------------
    def infer(self, feed, check=True):
        if not self.is_active:
            raise RuntimeError("runner %s used outside its `with` block" % self.name)
        if check:
            self._check_feed(feed)
        return self.infer_impl(feed)

    def infer_impl(self, feed):
        raise NotImplementedError

    def _check_feed(self, feed):
        specs = dict((s.name, s) for s in self.input_specs())
        missing = sorted(set(specs) - set(feed))
        extra = sorted(set(feed) - set(specs))
        if missing or extra:
            raise UserError("model inputs are %s; got %s" % (sorted(specs), sorted(feed)),
                            hint="feed exactly the model's input names")
        for name, array in feed.items():
            spec = specs[name]
            if len(array.shape) != len(spec.shape) or any(
                    isinstance(d, int) and d >= 0 and d != a for d, a in zip(spec.shape, array.shape)):
                raise UserError("input %s has shape %s, the model expects %s" % (name, list(array.shape), spec.shape),
                                hint="check --input-shape or the preprocessing size")
            if array.dtype != spec.dtype:
                raise UserError("input %s has dtype %s, the model expects %s" % (name, array.dtype, spec.dtype),
                                hint="convert the input")

    def random_feed(self, batch=1, shapes=None, seed=0):
        """A feed of random inputs, for profiling and parity checks (dynamic dims from ``shapes``)."""
        rng = np.random.RandomState(seed)
        feed = {}
        for spec in self.input_specs():
            shape = list((shapes or {}).get(spec.name) or spec.shape)
            for i, d in enumerate(shape):
                if not isinstance(d, int) or d < 0:
                    if i == 0:
                        shape[i] = batch
                    else:
                        from edgekit import inputsize

                        example = inputsize.profile_example(spec.name, spec.shape).split("/")[0]
                        raise UserError("input %s has a dynamic dimension %d (%r)" % (spec.name, i, d),
                                        hint="give it with --input-size HxW or --input-shape, e.g. "
                                             "--input-shape %s%s" % (example, inputsize.example_note(False)))
            if spec.dtype.kind == "f":
                feed[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
            elif spec.dtype == np.uint8:
                feed[spec.name] = rng.randint(0, 256, size=shape).astype(np.uint8)
            else:
                feed[spec.name] = rng.randint(0, 2, size=shape).astype(spec.dtype)
        return feed


def timed(fn, *args):
    """Call fn(*args); return (result, milliseconds) with perf_counter."""
    start = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - start) * 1000.0
