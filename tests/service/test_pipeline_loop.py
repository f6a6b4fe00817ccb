"""The pipeline: every stage timed, records, metrics, overlap, swaps, errors (C5)."""

import contextlib
import threading
import time

import numpy as np
import pytest

from daemon_helpers import tiny_classifier
from edgekit.predictor import Predictor
from edgekit.service.metrics import Metrics
from edgekit.service.pipeline import STAGES, Pipeline, PipelineError, Samples, latency_summary, percentile, runs_on_gpu
from edgekit.sources import open_source
from edgekit.sources.base import Source


class ListSink(object):
    name = "list"

    def __init__(self):
        self.items = []

    def submit(self, record, frame=None):
        self.items.append((record, frame))
        return True

    def close(self, timeout=2.0):
        pass


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("model") / "tiny.onnx")


def run_pipeline(model, uri, overlap="off", **kwargs):
    sink, metrics = ListSink(), Metrics()
    with Predictor.open(model, backend="onnxruntime") as predictor, open_source(uri) as source:
        pipeline = Pipeline(source, predictor, sinks=[sink], metrics=metrics, device_id="cam-1", overlap=overlap)
        summary = pipeline.run(**kwargs)
    return pipeline, summary, sink, metrics


def test_samples_keep_the_newest_in_order_within_their_cap():
    ring = Samples(4)
    assert len(ring) == 0 and list(ring) == []
    for value in (1.0, 2.0, 3.0):
        ring.append(value)
    assert list(ring) == [1.0, 2.0, 3.0]
    for value in range(4, 11):                        # wraps around more than once
        ring.append(float(value))
    assert len(ring) == 4 and list(ring) == [7.0, 8.0, 9.0, 10.0]
    assert ring._data.itemsize == 8                     # 8 bytes a sample, whatever the count
    assert latency_summary({"infer": ring})["infer"] == {"p50": 8.0, "p90": 10.0, "p99": 10.0}
    assert latency_summary({"infer": Samples(4)}) == {}


def test_pipeline_keeps_max_samples_per_stage(model):
    source = open_source("synthetic://?width=96&height=64&fps=0&frames=30")
    with Predictor.open(model, backend="onnxruntime") as predictor, source:
        pipeline = Pipeline(source, predictor, max_samples=8)
        pipeline.run()
    assert pipeline.frames == 30 and all(len(values) == 8 for values in pipeline.samples.values())


def test_summary_records_and_metrics(model):
    pipeline, summary, sink, metrics = run_pipeline(model, "synthetic://?width=96&height=64&fps=0&frames=40")
    assert summary["frames"] == 40 and summary["dropped"] == 0 and summary["reconnects"] == 0
    assert summary["fps"] > 0 and summary["overlap"] is False
    assert sorted(summary["latency_ms"]) == sorted(STAGES)
    assert all(set(v) == {"p50", "p90", "p99"} for v in summary["latency_ms"].values())
    samples = pipeline.samples
    assert sorted(samples) == sorted(STAGES) and all(len(samples[s]) == 40 for s in STAGES)
    assert all(v >= 0 for s in STAGES for v in samples[s])
    record, frame = sink.items[0]
    assert set(record) == {"device", "seq", "source", "model", "ts_capture", "ts_published", "result", "latency_ms"}
    assert record["device"] == "cam-1" and record["model"] == "tiny.onnx" and record["seq"] == 1
    assert record["ts_published"] >= record["ts_capture"]
    assert record["result"]["task"] == "classification" and len(record["result"]["top"]) == 2
    assert frame.shape == (64, 96, 3)
    assert [r["seq"] for r, _ in sink.items] == list(range(1, 41))
    text = metrics.render_prometheus()
    for line in ("edgekit_frames_total 40", "edgekit_frames_dropped_total 0", "edgekit_source_reconnects_total 0",
                 'edgekit_stage_seconds_count{stage="infer"} 40', 'edgekit_stage_seconds_bucket{stage="frame_age",le="+Inf"} 40',
                 "# TYPE edgekit_inference_fps gauge"):
        assert line in text
    status = pipeline.status()
    assert status["ready"] is True and status["frames"] == 40 and status["backend"] == "onnxruntime"
    assert status["precision"] == "fp32" and status["eof"] is True


def test_overlap_gives_the_same_results(model):
    uri = "synthetic://?width=96&height=64&fps=0&frames=30"
    _, off, sink_off, _ = run_pipeline(model, uri, overlap="off")
    pipeline, on, sink_on, _ = run_pipeline(model, uri, overlap="on")
    assert on["overlap"] is True and on["frames"] == off["frames"] == 30
    assert pipeline.describe_mode().startswith("pipeline overlapped") and "forced by overlap: on" in \
        pipeline.describe_mode()
    assert [r["result"] for r, _ in sink_on.items] == [r["result"] for r, _ in sink_off.items]
    assert [r["seq"] for r, _ in sink_on.items] == list(range(1, 31))


def test_max_frames_and_stop_event(model, make_video):
    video = make_video(frames=50, width=160, height=120)
    _, summary, sink, _ = run_pipeline(model, "file://%s?realtime=0" % video, max_frames=7)
    assert summary["frames"] == 7 and len(sink.items) == 7
    stop = threading.Event()
    with Predictor.open(model, backend="onnxruntime") as predictor, \
            open_source("synthetic://?width=64&height=48&fps=200") as source:
        pipeline = Pipeline(source, predictor)
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        summary = pipeline.run(stop_event=stop)
        assert time.monotonic() - started < 2.0
    assert summary["frames"] > 5


def test_gpu_detection_from_describe():
    class FakeRunner(object):
        def __init__(self, info):
            self.info = info

        def describe(self):
            return self.info

    class P(object):
        pass

    for info, expected in (({"backend": "tensorrt"}, True),
                           ({"backend": "onnxruntime", "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}, True),
                           ({"backend": "onnxruntime", "providers": ["CPUExecutionProvider"]}, False),
                           ({"backend": "opencv"}, False)):
        p = P()
        p.runner = FakeRunner(info)
        assert runs_on_gpu(p) is expected


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([3.0], 90) == 3.0
    assert percentile([], 50) is None


@pytest.mark.parametrize("workers,uri,reading", [
    (1, "synthetic://?width=64&height=48&fps=100", "grabber"),
    (2, "synthetic://?width=64&height=48&fps=0", "grabber"),    # workers: swapped between groups, lossless source
    (2, "synthetic://?width=64&height=48&fps=0", "pull"),
])
def test_replace_predictor_between_frames(model, tmp_path, workers, uri, reading):
    other = tiny_classifier(tmp_path / "other.onnx", labels=["a", "b", "c", "d"], seed=3)
    sink = ListSink()
    stop = threading.Event()
    threads = 1 if workers > 1 else None
    source = open_source(uri)
    if reading == "grabber":
        source.start()
    with Predictor.open(model, backend="onnxruntime", threads=threads) as first, source:
        pipeline = Pipeline(source, first, sinks=[sink], workers=workers)
        thread = threading.Thread(target=pipeline.run, kwargs={"stop_event": stop})
        thread.start()
        while len(sink.items) < 5:
            time.sleep(0.01)
        second = Predictor.open(other, backend="onnxruntime", threads=threads).__enter__()
        old, _, _ = pipeline.replace(predictor=second)
        assert old is first
        n = len(sink.items)
        while len(sink.items) < n + 5:
            time.sleep(0.01)
        stop.set()
        thread.join(5)
        second.__exit__(None, None, None)
    models = [r["model"] for r, _ in sink.items]
    assert models[0] == "tiny.onnx" and models[-1] == "other.onnx"
    assert models == sorted(models, key=lambda m: m == "other.onnx")     # one switch, never back
    if workers > 1:
        seqs = [r["seq"] for r, _ in sink.items]
        assert seqs == list(range(1, len(seqs) + 1))      # lossless source: nothing lost over the swap


@pytest.mark.parametrize("workers", [1, 2])
def test_replace_source_between_frames(model, workers):
    """A SIGHUP reload with a new source: the pipeline starts it (pull mode when the workers read a
    lossless source themselves), switches between frames, and the caller closes the old one."""
    sink = ListSink()
    stop = threading.Event()
    first = open_source("synthetic://?width=64&height=48&fps=0")
    second = open_source("synthetic://?width=80&height=60&fps=0")
    with Predictor.open(model, backend="onnxruntime", threads=1) as predictor:
        pipeline = Pipeline(first, predictor, sinks=[sink], workers=workers)
        thread = threading.Thread(target=pipeline.run, kwargs={"stop_event": stop})
        thread.start()
        while len(sink.items) < 5:
            time.sleep(0.01)
        _, old, _ = pipeline.replace(source=second)
        assert old is first
        old.close()
        n = len(sink.items)
        while len(sink.items) < n + 5:
            time.sleep(0.01)
        stop.set()
        thread.join(5)
    second.close()
    assert first.pulling is second.pulling is (workers > 1)
    sizes = [frame.shape[:2] for _, frame in sink.items]
    assert sizes[0] == (48, 64) and sizes[-1] == (60, 80)
    assert sizes == sorted(sizes)                              # one switch, never back
    assert pipeline.summary()["frames"] == len(sink.items)


class BrokenPredictor(object):
    """Delegates to a real predictor but raises in infer."""

    def __init__(self, real):
        self.real, self.runner, self.meta = real, real.runner, real.meta

    def preprocess(self, image):
        return self.real.preprocess(image)

    def infer(self, feed):
        raise RuntimeError("device lost")


def test_failing_inference_is_counted_then_fatal(model):
    with Predictor.open(model, backend="onnxruntime") as predictor, \
            open_source("synthetic://?width=32&height=32&fps=0") as source:
        pipeline = Pipeline(source, BrokenPredictor(predictor), metrics=Metrics())
        with pytest.raises(PipelineError, match="100 frames in a row failed; last: RuntimeError: device lost"):
            pipeline.run()
    assert pipeline.errors == 100 and pipeline.ready is False
    assert pipeline.status()["last_error"] == "RuntimeError: device lost"


class DyingSource(Source):
    """Dies after every 3 frames, comes back after one failed open."""

    scheme = "dying"

    def __init__(self):
        super(DyingSource, self).__init__("dying://", backoff_initial=0.001, backoff_max=0.002)
        self.n, self.fail_next = 0, False

    def _open(self):
        if self.fail_next:
            self.fail_next = False
            raise IOError("unplugged")
        self.n = 0

    def _grab(self):
        self.n += 1
        if self.n > 3:
            self.fail_next = True
            return None
        time.sleep(0.002)
        return np.full((24, 24, 3), self.n * 40, np.uint8)


def test_reconnects_reach_summary_and_metrics(model):
    metrics = Metrics()
    with Predictor.open(model, backend="onnxruntime") as predictor:
        source = DyingSource()
        pipeline = Pipeline(source, predictor, metrics=metrics)
        summary = pipeline.run(max_frames=40)
        source.close()
    assert summary["frames"] == 40 and summary["reconnects"] >= 10
    assert metrics.get("source_reconnects_total") >= 10


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_repeated_runs_lose_no_frame(model, overlap):
    """The profiler warms up with run(max_frames=n+1) calls: a lossless source must stay gap-free."""
    sink = ListSink()
    with Predictor.open(model, backend="onnxruntime") as predictor, \
            open_source("synthetic://?width=32&height=32&fps=0&frames=30") as source:
        pipeline = Pipeline(source, predictor, sinks=[sink], overlap=overlap)
        for n in range(1, 6):
            pipeline.run(max_frames=n)
        summary = pipeline.run()
    assert summary["frames"] == 30
    assert [r["seq"] for r, _ in sink.items] == list(range(1, 31))


def test_ultralytics_detector_boxes_in_frame_pixels(tmp_path):
    """A YOLOv8-shaped export recognised from its own metadata, letterboxed 128x96 -> 64x64 (scale 0.5,
    8 px of padding top and bottom): the box comes back in source-frame pixels."""
    from daemon_helpers import ultralytics_like_yolov8

    path = ultralytics_like_yolov8(tmp_path / "yolo.onnx")
    sink = ListSink()
    with Predictor.open(path, backend="onnxruntime") as predictor, \
            open_source("synthetic://?width=128&height=96&fps=0&frames=3") as source:
        assert predictor.meta.decoder["type"] == "yolov8" and predictor.meta.preprocess["resize"] == "letterbox"
        Pipeline(source, predictor, sinks=[sink]).run()
    result = sink.items[0][0]["result"]
    assert result["task"] == "detection" and len(result["detections"]) == 1
    det = result["detections"][0]
    assert det["label"] == "person" and abs(det["score"] - 0.9) < 1e-4
    assert np.allclose(det["box"], [44, 28, 84, 68], atol=0.01)


def test_live_fps_drops_to_zero_when_frames_stop(model):
    with Predictor.open(model, backend="onnxruntime") as predictor, \
            open_source("synthetic://?width=32&height=32&fps=50&frames=20") as source:
        pipeline = Pipeline(source, predictor)
        pipeline.run()
        assert pipeline.live_fps() > 0
        pipeline._recent = type(pipeline._recent)([t - 10.0 for t in pipeline._recent], maxlen=60)
        assert pipeline.live_fps() == 0.0


# -- several workers (frames in flight) -----------------------------------------------------------
READING = pytest.mark.parametrize("reading", ["grabber", "pull"])


@contextlib.contextmanager
def lossless_source(uri, reading):
    """A lossless source started with its grabber thread ("grabber", as a caller that started it
    itself), or left for the pipeline to start: with workers it starts it in pull mode ("pull")."""
    source = open_source(uri)
    assert source.lossless
    if reading == "grabber":
        source.start()
    try:
        yield source
    finally:
        source.close()


def run_workers(model, uri, workers, threads=1, sinks=None, reading="pull", **kwargs):
    sink, metrics = ListSink(), Metrics()
    with Predictor.open(model, backend="onnxruntime", threads=threads) as predictor, \
            lossless_source(uri, reading) as source:
        pipeline = Pipeline(source, predictor, sinks=[sink], metrics=metrics, workers=workers)
        summary = pipeline.run(**kwargs)
        assert source.pulling is (workers > 1 and reading == "pull")
    return pipeline, summary, sink, metrics


class JitterPredictor(object):
    """A real predictor whose inference takes a random few milliseconds, so workers overtake each other."""

    def __init__(self, real, seed=0):
        import random

        self.real, self.runner, self.meta = real, real.runner, real.meta
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def preprocess(self, image):
        return self.real.preprocess(image)

    def infer(self, feed):
        with self.lock:
            delay = self.random.uniform(0, 0.006)
        time.sleep(delay)
        return self.real.infer(feed)

    def postprocess(self, outputs, info):
        return self.real.postprocess(outputs, info)


CHUNK = pytest.mark.parametrize("chunk", [1, 4])


@READING
@CHUNK
def test_workers_publish_every_frame_in_reading_order_with_the_same_results(model, reading, chunk):
    uri = "synthetic://?width=96&height=64&fps=0&frames=60"
    _, one, sink_one, _ = run_workers(model, uri, 1)
    sink, metrics = ListSink(), Metrics()
    with Predictor.open(model, backend="onnxruntime", threads=1) as real, lossless_source(uri, reading) as source:
        pipeline = Pipeline(source, JitterPredictor(real), sinks=[sink], metrics=metrics, workers=3, chunk=chunk)
        summary = pipeline.run()
        assert source.pulling is (reading == "pull") and (source._thread is None) is (reading == "pull")
        status = pipeline.status()
        assert status["workers"] == 3 and status["reading"] == ("workers" if reading == "pull" else "grabber")
        assert status["chunk"] == summary["chunk"] == (chunk if reading == "pull" else 1)   # a grabber: one at a time
    assert summary["frames"] == one["frames"] == 60 and summary["workers"] == 3 and summary["overlap"] is False
    assert [r["seq"] for r, _ in sink.items] == list(range(1, 61))
    assert [r["result"] for r, _ in sink.items] == [r["result"] for r, _ in sink_one.items]
    assert all(len(pipeline.samples[s]) == 60 for s in STAGES)
    assert "edgekit_frames_total 60" in metrics.render_prometheus()
    assert pipeline.describe_mode().startswith("pipeline with 3 workers: 3 frames in flight")
    assert ("each worker decodes its own next frame " in pipeline.describe_mode()) is ((reading, chunk) == ("pull", 1))
    assert ("each worker decodes its own next 4 frames at a time" in pipeline.describe_mode()) is \
        ((reading, chunk) == ("pull", 4))
    names = set()
    original = Pipeline._publish

    def spy(self, *args):
        names.add(threading.current_thread().name)
        return original(self, *args)

    Pipeline._publish = spy
    try:
        run_workers(model, uri, 2, reading=reading)
    finally:
        Pipeline._publish = original
    assert names and names <= {"infer-1", "infer-2"}       # published by the workers themselves


@READING
@CHUNK
def test_workers_stop_at_max_frames_and_lose_nothing_between_runs(model, reading, chunk):
    sink = ListSink()
    stop = threading.Event()

    class StopAt(ListSink):            # a stop (SIGTERM) in the middle of a chunk: the chunk is finished
        def submit(self, record, frame=None):
            if record["seq"] == 23:
                stop.set()
            return ListSink.submit(self, record, frame)

    with Predictor.open(model, backend="onnxruntime", threads=1) as predictor, \
            lossless_source("synthetic://?width=32&height=32&fps=0&frames=60", reading) as source:
        pipeline = Pipeline(source, predictor, sinks=[sink, StopAt()], workers=2, chunk=chunk)
        for n in (1, 2, 7, 8, 20):
            assert pipeline.run(max_frames=n)["frames"] == n
        assert pipeline.run(stop_event=stop)["frames"] >= 23
        summary = pipeline.run()
    assert summary["frames"] == 60 and summary["dropped"] == 0
    assert [r["seq"] for r, _ in sink.items] == list(range(1, 61))


class RecordingPredictor(JitterPredictor):
    """A real predictor that records which worker ran which stage, in order (and sleeps ``delay`` s
    in each inference)."""

    def __init__(self, real, delay=0.0):
        JitterPredictor.__init__(self, real)
        self.delay, self.calls = delay, []

    def _record(self, stage):
        with self.lock:
            self.calls.append((threading.current_thread().name, stage))

    def preprocess(self, image):
        self._record("preprocess")
        return self.real.preprocess(image)

    def infer(self, feed):
        self._record("infer")
        time.sleep(self.delay)
        return self.real.infer(feed)

    def postprocess(self, outputs, info):
        self._record("postprocess")
        return self.real.postprocess(outputs, info)

    def runs(self, thread):
        """[[stage, calls in a row], ...] of one worker."""
        out = []
        for name, stage in self.calls:
            if name == thread:
                if out and out[-1][0] == stage:
                    out[-1][1] += 1
                else:
                    out.append([stage, 1])
        return out


def chunks_of(runs):
    """The chunk sizes of one worker, checking that each chunk ran preprocess, infer and postprocess
    over all its frames, stage after stage."""
    assert [stage for stage, _ in runs] == ["preprocess", "infer", "postprocess"] * (len(runs) // 3)
    sizes = [n for _, n in runs]
    assert sizes[0::3] == sizes[1::3] == sizes[2::3]
    return sizes[0::3]


def test_chunks_run_each_stage_over_all_their_frames(model, monkeypatch):
    import edgekit.service.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "CHUNK_SECONDS", 60.0)      # no time cap: a loaded machine cannot shrink them
    sink = ListSink()
    with Predictor.open(model, backend="onnxruntime", threads=1) as real, \
            lossless_source("synthetic://?width=32&height=32&fps=0&frames=40", "pull") as source:
        recorder = RecordingPredictor(real)
        summary = Pipeline(source, recorder, sinks=[sink], workers=2, chunk=4).run()
    assert summary["frames"] == 40 and summary["chunk"] == 4
    assert [r["seq"] for r, _ in sink.items] == list(range(1, 41))
    sizes = chunks_of(recorder.runs("infer-1")) + chunks_of(recorder.runs("infer-2"))
    assert sum(sizes) == 40 and max(sizes) == 4
    assert sizes.count(4) * 4 >= 40 - 2 - 3     # all but each worker's first frame (not timed yet) and the end


def test_chunks_are_cut_to_their_time_and_memory_caps(model):
    with Predictor.open(model, backend="onnxruntime", threads=1) as real, \
            lossless_source("synthetic://?width=32&height=32&fps=0&frames=30", "pull") as source:
        recorder = RecordingPredictor(real, delay=0.03)         # 30 ms a frame: 3 fit in CHUNK_SECONDS (0.1 s)
        pipeline = Pipeline(source, recorder, workers=2, chunk=8)
        assert pipeline.run()["frames"] == 30
        sizes = chunks_of(recorder.runs("infer-1")) + chunks_of(recorder.runs("infer-2"))
        assert sum(sizes) == 30 and max(sizes) == 3
        vga, full_hd, uhd = 640 * 480 * 3, 1920 * 1080 * 3, 3840 * 2160 * 3
        pipeline._frame_s = None
        assert pipeline._chunk_limit(8, vga) == 1                  # the first frame, not timed yet
        pipeline._frame_s = 0.009                                  # mobilenet_v2 on a 2-core VM
        assert pipeline._chunk_limit(8, vga) == 8 and pipeline._chunk_limit(16, vga) == 11
        assert pipeline._chunk_limit(8, full_hd) == 5 and pipeline._chunk_limit(8, uhd) == 1     # 32 MB
        pipeline._frame_s = 0.5                                    # a slow model: one frame at a time
        assert pipeline._chunk_limit(8, vga) == 1


def test_chunk_setting_is_resolved_like_the_workers():
    from edgekit.errors import ConfigError
    from edgekit.service.daemon import resolve_chunk

    lossless, live = open_source("synthetic://?fps=0"), open_source("synthetic://?fps=30")
    assert resolve_chunk("auto", 2, lossless) == 16
    assert resolve_chunk("auto", 1, lossless) == resolve_chunk("auto", 2, live) == 1
    assert resolve_chunk(3, 2, lossless) == 3 and resolve_chunk(1, 1, live) == 1
    for workers, source in ((2, live), (1, lossless)):
        with pytest.raises(ConfigError, match="pipeline.chunk: 3 needs several workers that read a lossless source"):
            resolve_chunk(3, workers, source)


def test_workers_stop_event_and_failures(model):
    stop = threading.Event()
    with Predictor.open(model, backend="onnxruntime", threads=1) as predictor, \
            open_source("synthetic://?width=64&height=48&fps=200") as source:
        pipeline = Pipeline(source, predictor, workers=2)
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        summary = pipeline.run(stop_event=stop)
        assert time.monotonic() - started < 2.0 and summary["frames"] > 5
    with Predictor.open(model, backend="onnxruntime", threads=1) as predictor, \
            lossless_source("synthetic://?width=32&height=32&fps=0", "pull") as source:
        pipeline = Pipeline(source, BrokenPredictor(predictor), metrics=Metrics(), workers=2)
        with pytest.raises(PipelineError, match="100 frames in a row failed; last: RuntimeError: device lost"):
            pipeline.run()
    assert pipeline.errors >= 100 and pipeline.ready is False


def test_workers_need_a_concurrent_runner_and_no_overlap(model):
    from edgekit.errors import ConfigError

    class OneAtATime(object):
        name = "opencv"
        concurrent = False

    class P(object):
        runner = OneAtATime()

    source = open_source("synthetic://?width=32&height=32&fps=0&frames=1")
    with pytest.raises(ConfigError, match="the opencv runner infers one frame at a time; pipeline workers must be 1"):
        Pipeline(source, P(), workers=2)
    with Predictor.open(model, backend="onnxruntime") as predictor:
        with pytest.raises(ConfigError, match="overlap: on and workers: 2 do not combine"):
            Pipeline(source, predictor, workers=2, overlap="on")
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ConfigError, match="pipeline workers must be an integer >= 1"):
                Pipeline(source, predictor, workers=bad)
            with pytest.raises(ConfigError, match="pipeline chunk must be an integer >= 1"):
                Pipeline(source, predictor, workers=2, chunk=bad)


def test_reorder_buffer_publishes_in_ticket_order_from_any_thread():
    from edgekit.service.pipeline import _Turns

    turns, out = _Turns(), []
    tickets = [turns.take() for _ in range(5)]
    turns.deliver(tickets[2], lambda: out.append(2))
    turns.deliver(tickets[1], lambda: out.append(1))
    assert out == []                                   # 0 not delivered yet
    turns.deliver(tickets[0], lambda: out.append(0))
    assert out == [0, 1, 2]
    turns.deliver(tickets[4], lambda: out.append(4))
    turns.deliver(tickets[3], None)                    # a worker that failed between read and publish
    assert out == [0, 1, 2, 4]
    turns.deliver(tickets[3], lambda: out.append("late"))   # already settled: ignored
    turns.deliver(None, lambda: out.append("now"))
    assert out == [0, 1, 2, 4, "now"]
