"""Build TensorRT engines from ONNX on the device, through the engine cache (docs/board/build.md).

    record = build_engine("model.onnx", precision="fp16")
    record.path, record.sidecar, record.key, record.key_hash, record.built

Works with TensorRT 8.2 (JetPack 4.6) and 8.5+/10 through ``trt_api``. Precision the GPU cannot run
fast is refused (or built with a warning under ``force``), never silently dropped. The memory guard
runs before every build. ``trtexec_command`` gives the equivalent trtexec line.
"""

import os
import time

from edgekit import fsutil
from edgekit.engine import cache, cuda_api, memory, trt_api
from edgekit.errors import ConfigError, ModelError, PrecisionError, UserError
from edgekit.meta import PRECISIONS
from edgekit.progress import say

FAST_PROPERTY = {"fp16": "platform_has_fast_fp16", "int8": "platform_has_fast_int8"}
MIB = 1024 ** 2
JETSON_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"


class EngineRecord(object):
    """What build_engine returns: path, sidecar, key (dict), key_hash, built (False: from the cache)."""

    def __init__(self, path, sidecar, key, key_hash, built, meta=None, build_seconds=None, warnings=()):
        self.path, self.sidecar, self.key, self.key_hash, self.built = path, sidecar, key, key_hash, built
        self.meta, self.build_seconds, self.warnings = meta, build_seconds, list(warnings)

    def as_dict(self):
        return {"path": self.path, "sidecar": self.sidecar, "key": self.key, "key_hash": self.key_hash,
                "built": self.built, "build_seconds": self.build_seconds, "warnings": self.warnings}

    def __repr__(self):
        return "EngineRecord(%r, built=%r, key_hash=%r)" % (self.path, self.built, self.key_hash)


# -- inputs that need no TensorRT ---------------------------------------------------------------
def parse_dims(text, what):
    try:
        dims = [int(d) for d in text.lower().replace(",", "x").split("x")]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise ConfigError("bad shape %r in %s" % (text, what), hint="write dimensions like 1x3x224x224")
    return dims


def parse_shapes(items):
    """``["images:1x3x224x224/4x3x224x224/8x3x224x224", "x:1x3x64x64"]`` or a dict ->
    {name: [min, opt, max]}. One shape means min = opt = max."""
    if not items:
        return {}
    if isinstance(items, dict):
        items = ["%s:%s" % (k, v if isinstance(v, str) else "/".join("x".join(map(str, s)) for s in v))
                 for k, v in items.items()]
    shapes = {}
    for item in items:
        name, sep, spec = str(item).rpartition(":")
        if not sep or not name:
            raise ConfigError("bad --shapes %r" % item, hint="write NAME:MIN/OPT/MAX, e.g. images:1x3x224x224/"
                              "4x3x224x224/8x3x224x224, or NAME:SHAPE for a fixed shape")
        parts = spec.split("/")
        if len(parts) == 1:
            parts = parts * 3
        if len(parts) != 3:
            raise ConfigError("bad --shapes %r: give one shape or three (min/opt/max)" % item)
        dims = [parse_dims(p, "--shapes %s" % item) for p in parts]
        if len(set(len(d) for d in dims)) != 1 or any(not (a <= b <= c) for a, b, c in zip(*dims)):
            raise ConfigError("bad --shapes %r: min <= opt <= max must hold in every dimension" % item)
        shapes[name] = dims
    return shapes


def _check_inputs(onnx_path, precision, calib_cache, timing_cache):
    if precision not in PRECISIONS:
        raise ConfigError("unknown precision %r" % (precision,), hint="use fp32, fp16 or int8")
    if not os.path.isfile(str(onnx_path)):
        raise ModelError("ONNX model not found: %s" % onnx_path, hint="check the path")
    if calib_cache is not None:
        if not os.path.isfile(str(calib_cache)):
            raise ConfigError("calibration cache not found: %s" % calib_cache,
                              hint="make one with `edgekit quantize --precision int8` on the desktop")
        _validate_calib_cache(calib_cache)


def _check_writable(cache_dir):
    try:
        if not os.path.isdir(cache_dir):
            os.makedirs(cache_dir)
    except OSError as exc:
        raise ConfigError("cannot create the engine cache %s: %s" % (cache_dir, exc.strerror or exc),
                          hint="pass --cache-dir DIR or set EDGEKIT_CACHE_DIR to a writable directory")
    if not os.access(cache_dir, os.W_OK):
        raise ConfigError("the engine cache %s is not writable" % cache_dir,
                          hint="pass --cache-dir DIR or set EDGEKIT_CACHE_DIR to a writable directory")


def _validate_calib_cache(path):
    try:
        from edgekit.engine.calib_cache import read_calibration_cache
    except ImportError:      # the reader is optional here: TensorRT validates the bytes too
        return
    read_calibration_cache(path)


def _meta_of(onnx_path):
    from edgekit.meta import read_meta

    try:
        return read_meta(onnx_path, required=False)
    except UserError:
        return None


# -- the trtexec equivalent ----------------------------------------------------------------------
def trtexec_command(onnx_path, precision="fp16", workspace_mib=None, shapes=None, calib_cache=None,
                    timing_cache=None, engine_path=None, series="8.2"):
    """The trtexec command line equivalent to a build (list of arguments). ``series``: "8.2", "8.5", "10"."""
    exe = JETSON_TRTEXEC if os.path.exists(JETSON_TRTEXEC) else "trtexec"
    args = [exe, "--onnx=%s" % onnx_path]
    if engine_path:
        args.append("--saveEngine=%s" % engine_path)
    if precision in ("fp16", "int8"):
        args.append("--fp16")
    if precision == "int8":
        args.append("--int8")
        if calib_cache:
            args.append("--calib=%s" % calib_cache)
    if workspace_mib:
        args.append("--workspace=%d" % workspace_mib if series == "8.2"
                    else "--memPoolSize=workspace:%d" % workspace_mib)
    for flag, i in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
        if shapes:
            args.append("%s=%s" % (flag, ",".join("%s:%s" % (n, "x".join(map(str, s[i])))
                                                 for n, s in sorted(shapes.items()))))
    if timing_cache:
        args.append("--timingCacheFile=%s" % timing_cache)
    return args


def series_of(version):
    major, minor = (str(version).split(".") + ["0"])[:2]
    if major == "8":
        return "8.2" if int(minor) < 5 else "8.5"
    return major


# -- the build -------------------------------------------------------------------------------------
def build_engine(onnx_path, precision="fp16", cache_dir=None, workspace_mib=None, calib_cache=None,
                 shapes=None, timing_cache=None, force=False, log=say):
    """Return the cached engine for this model on this device, building it when needed.

    Raises BackendUnavailable where TensorRT or a CUDA binding (pycuda, cuda-python) is absent,
    PrecisionError for a precision the GPU cannot run fast (unless ``force``), MemoryShortage when the
    board cannot hold the build.
    """
    return ensure_engine(onnx_path, precision, cache_dir, workspace_mib, calib_cache, shapes, timing_cache, force,
                         log)


def ensure_engine(onnx_path, precision="fp16", cache_dir=None, workspace_mib=None, calib_cache=None,
                  shapes=None, timing_cache=None, force=False, log=say, verify=True):
    """build_engine, with ``verify=False`` for a caller that deserializes the engine itself next (the
    TensorRT runner): a cached engine is then checked by key and sha256 only, not loaded twice."""
    onnx_path = os.path.abspath(str(onnx_path))
    _check_inputs(onnx_path, precision, calib_cache, timing_cache)
    if calib_cache is not None and precision != "int8":
        log("calibration cache %s not used: only INT8 builds read one" % calib_cache)
        calib_cache = None
    shapes = parse_shapes(shapes)
    cache_dir = os.path.abspath(os.path.expanduser(cache_dir or cache.default_cache_dir()))
    _check_writable(cache_dir)
    cache.remove_stale_temps(cache_dir)
    trt = trt_api.import_tensorrt()
    trt_api.check_can_build(trt)
    gpu = cuda_api.open_gpu().open_or_share(0)
    try:
        with gpu.current():
            return _cached_or_built(trt, gpu.info(), onnx_path, precision, cache_dir, workspace_mib, calib_cache,
                                    shapes, timing_cache, force, log, verify)
    finally:
        gpu.close()


def _cached_or_built(trt, device, onnx_path, precision, cache_dir, workspace_mib, calib_cache, shapes,
                     timing_cache, force, log, verify):
    calib_sha = fsutil.sha256_file(calib_cache) if calib_cache else None
    key = cache.make_key(fsutil.sha256_file(onnx_path), trt.__version__, device["cuda"], device["gpu"],
                         device["compute_capability"], precision, shapes, calib_sha)
    stem = cache.model_stem(onnx_path)
    engine_path, sidecar_path = cache.entry_paths(cache_dir, stem, key)
    if _usable(trt, engine_path, sidecar_path, key, log, verify):
        log("engine from cache: %s" % engine_path)
        return EngineRecord(engine_path, sidecar_path, key, cache.key_hash(key), False,
                            meta=cache.read_sidecar(sidecar_path).get("meta"))
    stale = cache.stale_entries(cache_dir, stem, key)
    for entry in stale:
        log("cached engine %s no longer matches (%s): rebuilding" % (
            os.path.basename(entry.engine), cache.describe_differences(cache.key_differences(entry.key, key))))
    if timing_cache is None:
        timing_cache = os.path.join(cache_dir, "timing-%s-sm%s.cache" % (
            trt.__version__, device["compute_capability"].replace(".", "")))
    started = time.time()
    engine_bytes, details = _build(trt, onnx_path, precision, workspace_mib, calib_cache, shapes,
                                   timing_cache, force, log)
    seconds = time.time() - started
    _check_deserializes(trt, engine_bytes)
    meta = _meta_of(onnx_path)
    sidecar = {
        "format": cache.FORMAT, "model": stem, "onnx": onnx_path, "key": key, "key_hash": cache.key_hash(key),
        "meta": meta.replace(precision=precision).to_dict() if meta is not None else None,
        "device": device, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(seconds, 3), "engine_sha256": fsutil.sha256_bytes(engine_bytes),
        "engine_bytes": len(engine_bytes),
    }
    sidecar.update(details)
    cache.write_entry(engine_path, sidecar_path, engine_bytes, sidecar)
    for entry in stale:
        cache.remove(entry.engine, entry.sidecar)
    log("built %s engine in %.1f s: %s" % (precision, seconds, engine_path))
    return EngineRecord(engine_path, sidecar_path, key, cache.key_hash(key), True, meta=sidecar["meta"],
                        build_seconds=seconds, warnings=details["warnings"])


def _usable(trt, engine_path, sidecar_path, key, log, verify=True):
    """True when the cached entry exists, its key matches, its bytes are intact and (``verify``) it deserializes."""
    if not os.path.exists(engine_path):
        return False
    data = cache.read_sidecar(sidecar_path)
    reason = None
    if data is None:
        reason = "its sidecar is missing or unreadable"
    elif data.get("key") != key:
        reason = "its key no longer matches (%s)" % cache.describe_differences(
            cache.key_differences(data.get("key") or {}, key))
    else:
        with open(engine_path, "rb") as handle:
            engine_bytes = handle.read()
        if data.get("engine_sha256") != fsutil.sha256_bytes(engine_bytes):
            reason = "the engine file is damaged (sha256 differs from its sidecar)"
        elif verify and not _deserializes(trt, engine_bytes):
            reason = "it fails to deserialize with TensorRT %s" % trt.__version__
    if reason:
        log("cached engine %s: %s: rebuilding" % (os.path.basename(engine_path), reason))
        cache.remove(engine_path, sidecar_path)
        return False
    return True


def _deserializes(trt, engine_bytes):
    runtime = trt.Runtime(trt_api.make_logger(trt))
    try:
        engine = runtime.deserialize_cuda_engine(engine_bytes)
    except Exception:          # TensorRT raises RuntimeError or returns None, depending on release
        return False
    return engine is not None


def _check_deserializes(trt, engine_bytes):
    if not _deserializes(trt, engine_bytes):
        raise UserError("TensorRT built an engine it cannot load back (see its log above)",
                        hint="report it with the output of `edgekit doctor`")


def _build(trt, onnx_path, precision, workspace_mib, calib_cache, shapes, timing_cache, force, log):
    """Parse, configure, build. Returns (engine bytes, details for the sidecar)."""
    warnings = []
    plan = memory.plan_build(memory.read_meminfo(), os.path.getsize(onnx_path), workspace_mib, memory.read_swaps())
    warnings.extend(plan.warnings)
    logger = trt_api.make_logger(trt)
    builder = trt.Builder(logger)
    warnings.extend(_precision_warnings(builder, precision, force))
    network = builder.create_network(trt_api.network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    _parse(parser, onnx_path, trt.__version__)
    config = builder.create_builder_config()
    workspace_api = None
    if plan.workspace_mib:
        workspace_api = trt_api.set_workspace(trt, config, plan.workspace_mib * MIB)
    warnings.extend(_set_precision(trt, builder, config, precision, calib_cache, onnx_path) or [])
    profile_shapes = _add_profile(builder, config, network, shapes)
    timing = _load_timing_cache(config, timing_cache)
    for message in warnings:
        log("warning: " + message)
    log("building %s engine from %s (TensorRT %s; minutes on a Jetson Nano)" % (
        precision, os.path.basename(onnx_path), trt.__version__))
    try:
        with Heartbeat(log):
            serialized = builder.build_serialized_network(network, config)
    except MemoryError:
        raise memory.killed_error()
    if serialized is None:
        raise UserError("TensorRT could not build an engine from %s (see its log above)" % onnx_path,
                        hint="if the log mentions memory: " + memory.ADVICE)
    if timing is not None:
        fsutil.atomic_write_bytes(timing_cache, trt_api.serialized_bytes(config.get_timing_cache().serialize()))
    return trt_api.serialized_bytes(serialized), {
        "workspace_mib": plan.workspace_mib, "workspace_api": workspace_api, "profile": profile_shapes,
        "timing_cache": timing_cache, "memory": plan.as_dict(), "warnings": warnings,
        "calib_cache": os.path.abspath(calib_cache) if calib_cache else None}


class Heartbeat(object):
    """A line every ``every`` seconds while TensorRT builds (minutes on a Nano, with no progress of its own
    before TensorRT 10), so a long build is not mistaken for a hang."""

    every = 30.0

    def __init__(self, log, every=None):
        import threading

        self.log, self.every = log, every or Heartbeat.every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="edgekit-build-heartbeat")
        self.thread.daemon = True

    def _run(self):
        started = time.time()
        while not self.done.wait(self.every):
            self.log("still building (%d s): TensorRT is timing kernels" % (time.time() - started))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        return False


def _precision_warnings(builder, precision, force):
    prop = FAST_PROPERTY.get(precision)
    if prop is None or getattr(builder, prop):
        return []
    message = ("this GPU has no fast %s (builder.%s is False)%s" % (
        precision.upper(), prop, ": FP16 is its fast precision" if precision == "int8" and builder.platform_has_fast_fp16
        else ""))
    if not force:
        raise PrecisionError(message, hint="build with --precision %s, or add --force to build it anyway" % (
            "fp16" if precision == "int8" and builder.platform_has_fast_fp16 else "fp32"))
    return [message + "; building it anyway (--force): expect it slower than the fast precision"]


def _parse(parser, onnx_path, version):
    with open(onnx_path, "rb") as handle:
        ok = parser.parse(handle.read())
    if not ok:
        errors = trt_api.parser_errors(parser)
        hint = "check it with `edgekit inspect --target jetson-nano`"
        if series_of(version) == "8.2":
            # TensorRT 8.2's parser has no opset limit (onnx-tensorrt 8.2-GA ModelImporter.cpp only warns below
            # opset 7): what it rejects is an operator it has no importer for, or an importer's own limits
            hint = ("TensorRT 8.2's ONNX parser lacks some operators and attributes newer exporters use: "
                    "`edgekit inspect --target jetson-nano` lists them per operator; re-export without them "
                    "(`edgekit export --target jetson-nano`)")
        raise ModelError("TensorRT %s cannot parse %s: %s" % (version, os.path.basename(onnx_path),
                                                             "; ".join(errors[:3]) or "unknown error"), hint=hint)


def _set_precision(trt, builder, config, precision, calib_cache, onnx_path):
    if precision == "fp32":
        return
    if precision == "fp16" or builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)     # INT8 builds let layers without INT8 kernels use FP16
    if precision != "int8":
        return
    config.set_flag(trt.BuilderFlag.INT8)
    if calib_cache:
        with open(calib_cache, "rb") as handle:
            data = handle.read()
        _check_calib_version(trt, data, calib_cache)
        config.int8_calibrator = make_cache_calibrator(trt, data)
        return []
    meta = _meta_of(onnx_path)
    if meta is None or meta.precision != "int8":
        raise PrecisionError("an INT8 build needs a calibration cache or a quantized (QDQ) model",
                             hint="pass --calib-cache FILE from `edgekit quantize`, or build the INT8 ONNX "
                             "that `edgekit quantize --precision int8` wrote")


def _check_calib_version(trt, data, path):
    """Refuse a calibration cache written for another TensorRT. TensorRT would ignore it and recalibrate
    (sampleINT8's README, release/8.2: "re-calibrate only if ... incompatible with the current TensorRT
    version or calibrator variant"), and the board's cache-only calibrator has no batches: the build fails."""
    from edgekit.engine.calib_cache import header_for

    header = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    expected = header_for(trt.__version__)
    if header == expected:
        return
    written = header.split("-")[1] if header.count("-") >= 2 else "?"
    target = _target_for(trt.__version__)
    raise ModelError(
        "calibration cache %s was written for another TensorRT or calibrator (its header is %s; TensorRT %s here "
        "reads %s): TensorRT would recalibrate, and with no calibration images on the board the INT8 build fails"
        % (os.path.basename(str(path)), header, trt.__version__, expected),
        hint="rebuild the cache on the desktop for TensorRT %s: `edgekit quantize --precision int8%s` "
        "(header version %s is not this board's)" % (
            ".".join(str(trt.__version__).split(".")[:3]), " --target %s" % target if target else "", written))


def _target_for(version):
    """The edgekit target whose TensorRT matches this version's major.minor, or None."""
    try:
        from edgekit.targets import TARGETS
    except ImportError:
        return None
    wanted = str(version).split(".")[:2]
    for name, target in sorted(TARGETS.items()):
        if str(getattr(target, "tensorrt", "") or "").split(".")[:2] == wanted:
            return name
    return None


def make_cache_calibrator(trt, cache_bytes):
    """An IInt8EntropyCalibrator2 that only reads a calibration cache (no batches on the board)."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None

        def read_calibration_cache(self):
            return cache_bytes

        def write_calibration_cache(self, cache_data):
            return None

    return CacheCalibrator()


def _add_profile(builder, config, network, shapes):
    """One optimisation profile when an input is dynamic. Returns {input: [min, opt, max]} used."""
    inputs = trt_api.network_inputs(network)
    names = [n for n, _ in inputs]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ConfigError("--shapes names %s are not inputs of the model" % ", ".join(unknown),
                          hint="its inputs are: %s" % ", ".join(names))
    dynamic = [(n, s) for n, s in inputs if any(d < 0 for d in s)]
    for name, shape in inputs:
        given = shapes.get(name)
        if given and any(len(g) != len(shape) or any(d >= 0 and d != x for d, x in zip(shape, g)) for g in given):
            raise ConfigError("--shapes %s does not fit the input's shape %s" % (name, shape),
                              hint="keep its fixed dimensions; only -1 dimensions can vary")
    missing = [n for n, _ in dynamic if n not in shapes]
    if missing:
        from edgekit import inputsize

        dims = list(dict(dynamic)[missing[0]])
        raise ConfigError("input %s has dynamic dimensions %s" % (missing[0], dims),
                          hint="give them with --shapes NAME:MIN/OPT/MAX, e.g. --shapes %s%s" % (
                              inputsize.profile_example(missing[0], [d if d > 0 else "?" for d in dims]),
                              inputsize.example_note(not inputsize.dynamic_hw([d if d > 0 else "?" for d in dims]))))
    if not dynamic:
        return {}
    profile = builder.create_optimization_profile()
    used = {}
    for name, _shape in dynamic:
        low, opt, high = shapes[name]
        profile.set_shape(name, tuple(low), tuple(opt), tuple(high))
        used[name] = [low, opt, high]
    config.add_optimization_profile(profile)
    return used


def _load_timing_cache(config, path):
    if not path or not hasattr(config, "create_timing_cache"):
        return None
    data = b""
    if os.path.exists(path):
        with open(path, "rb") as handle:
            data = handle.read()
    timing = config.create_timing_cache(data)
    config.set_timing_cache(timing, False)
    return timing
