"""The daemon with analytics: a real OpenCV-written video of a square walking right then back, a
tiny ONNX detector that boxes it, the bytetrack tracker, a line and a zone; results with track
ids, events to JSON Lines, and `edgekit track` reproducing the same events offline."""

import json
import os
import subprocess

import pytest

from daemon_helpers import DOOR_RULES, centroid_detector, edgekit_cmd, env_with_project, moving_square_video, run_serve

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    model = centroid_detector(d / "det.onnx")
    video = moving_square_video(d / "walk.mp4", fps=30)
    rules = d / "door.yaml"
    rules.write_text(DOOR_RULES)
    return {"model": model, "video": video, "rules": str(rules), "dir": d}


def read_jsonl(path):
    with open(str(path)) as handle:
        return [json.loads(line) for line in handle if line.strip()]


EXPECTED = [("line_crossed", "door", "in"), ("object_entered", "hall", None), ("object_left", "hall", None),
            ("line_crossed", "door", "out")]


def test_serve_publishes_track_ids_and_events_that_track_reproduces(scene, tmp_path):
    results, events = tmp_path / "results.jsonl", tmp_path / "events.jsonl"
    proc = run_serve(["--model", scene["model"], "--source", scene["video"], "--analytics", scene["rules"],
                      "--jsonl", str(results), "--events", str(events), "--device-id", "door"])
    assert proc.returncode == 0, proc.stderr
    assert "analytics: bytetrack tracker, 1 lines, 1 zones" in proc.stderr
    records = read_jsonl(results)
    assert 35 <= len(records) <= 70                # played at its own rate: a busy machine drops some
    ids = [d["track_id"] for r in records for d in r["result"]["detections"]]
    assert ids[0] is None                          # not confirmed on its first frame (min_hits 2)
    assert set(ids[3:]) == {1}                     # one person, one id, on every later frame
    assert records[0]["frame_size"] == [256, 192]
    got = read_jsonl(events)
    assert [(e["type"], e["rule"], e["direction"]) for e in got] == EXPECTED
    assert all(e["camera"] == "door" and e["track_id"] == 1 and e["snapshot"] is None for e in got)
    from edgekit.analytics.events import check_event

    assert all(check_event(e) == [] for e in got)
    # offline: the same tracker and rules on the daemon's own JSON Lines give the same events
    offline = tmp_path / "offline.jsonl"
    out = subprocess.run(edgekit_cmd() + ["track", str(results), "--config", scene["rules"], "--out",
                                          str(tmp_path / "tracks.txt"), "--events", str(offline), "--camera", "door"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                         env=env_with_project())
    assert out.returncode == 0, out.stderr
    assert read_jsonl(offline) == got


def test_serve_config_with_inline_rules_and_track_on_that_same_config(scene, tmp_path):
    """`edgekit serve --config cams.yaml` with the rules inline; `edgekit track --config cams.yaml`
    reads the same file's analytics and gives the same events."""
    config = tmp_path / "cams.yaml"
    config.write_text("device_id: door\nmodel: {path: %s}\nsource: {uri: %s}\noutputs:\n  jsonl: {path: results.jsonl}\n"
                      "  events: {path: events.jsonl}\nanalytics:\n%s" % (
                          scene["model"], scene["video"], "".join("  " + line + "\n" for line in DOOR_RULES.splitlines())))
    proc = run_serve(["--config", str(config)])
    assert proc.returncode == 0, proc.stderr
    got = read_jsonl(tmp_path / "events.jsonl")
    assert [(e["type"], e["rule"], e["direction"]) for e in got] == EXPECTED
    out = subprocess.run(edgekit_cmd() + ["track", str(tmp_path / "results.jsonl"), "--config", str(config), "--out",
                                          str(tmp_path / "tracks.txt"), "--events", str(tmp_path / "offline.jsonl"),
                                          "--camera", "door"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                         env=env_with_project())
    assert out.returncode == 0, out.stderr
    assert read_jsonl(tmp_path / "offline.jsonl") == got


@pytest.mark.parametrize("rules, message", [
    ("zones: [{name: a, points: [[0, 0], [1, 1]]}]", "config key analytics.zones[0].points needs at least 3 points"),
    ("lines: [{name: a, points: [[0, 0], [1, 1]], classes: [persn]}]",
     "config key analytics.lines[0].classes[0]: unknown class 'persn'"),
    ("lines: [{name: a, points: [[0, 0], [1, 1]]}]\nzones: [{name: a, points: [[0, 0], [1, 0], [1, 1]]}]",
     "duplicate rule name 'a'"),
    ("lines: [{name: a, points: [[0, 0], [900, 10]]}]", "config key analytics.lines[0].points[1] = [900, 10] is "
     "outside the 256x192 frame"),
])
def test_bad_rules_exit_2_with_one_line_naming_the_key(scene, tmp_path, rules, message):
    config = tmp_path / "serve.yaml"
    config.write_text("model: {path: %s}\nsource: {uri: %s}\nanalytics:\n%s\n" % (
        scene["model"], scene["video"], "\n".join("  " + line for line in rules.splitlines())))
    proc = run_serve(["--config", str(config)])
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_analytics_with_a_classifier_is_a_config_error(tmp_path):
    from daemon_helpers import tiny_classifier

    model = tiny_classifier(tmp_path / "cls.onnx")
    rules = tmp_path / "rules.yaml"
    rules.write_text("lines: [{name: a, points: [[0, 0], [1, 1]]}]\n")
    proc = run_serve(["--model", model, "--source", "synthetic://?width=32&height=32&frames=2&fps=0",
                      "--analytics", str(rules)])
    assert proc.returncode == 2
    assert "config key analytics: analytics needs a detection model, this one is a classification model" \
        in proc.stderr
    assert os.path.exists(model)


def test_sighup_reloads_rules_keeping_counts_and_track_ids(scene, tmp_path):
    """A real `edgekit serve` on the looping video; SIGHUP after the rules file changed."""
    import signal
    import time
    import urllib.request

    from _net import free_port

    port = free_port()
    rules = tmp_path / "door.yaml"
    rules.write_text(DOOR_RULES)
    config = tmp_path / "serve.yaml"
    config.write_text("device_id: door\nmodel: {path: %s}\nsource: {uri: %s, loop: true}\nanalytics: door.yaml\n"
                      "outputs: {http: {listen: '127.0.0.1:%d'}}\n" % (scene["model"], scene["video"], port))

    def get(path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
            return json.loads(response.read().decode())

    def until(predicate, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = predicate()
            except OSError:          # not listening yet / the analytics not built yet (404)
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError("timed out")

    proc = subprocess.Popen(edgekit_cmd() + ["serve", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, env=env_with_project())
    try:
        until(lambda: get("/v1/counts")["counts"]["door"]["in"] >= 1)
        before = get("/v1/tracks")
        rules.write_text(DOOR_RULES.replace("  - name: hall", "  - name: bay"))
        proc.send_signal(signal.SIGHUP)
        counts = until(lambda: (lambda c: c if "bay" in c else None)(get("/v1/counts")["counts"]))
        assert "hall" not in counts and counts["door"]["in"] >= 1         # the line's count survived
        after = get("/v1/tracks")
        assert after["next_track_id"] >= before["next_track_id"]          # ids go on, never reused
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "analytics reloaded: 1 lines, 1 zones (counts and track ids kept)" in err
