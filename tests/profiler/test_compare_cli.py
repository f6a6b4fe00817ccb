"""`edgekit profile` and `edgekit profile compare` from the command line: both forms, exit codes."""

import json
import subprocess
import sys

import pytest

from edgekit import cli
from edgekit.fsutil import atomic_write_json
from edgekit.profiler import compare, stats


def fake_result(samples, fps, batch=1, threads=None, stages=None):
    result = {"schema_version": 1, "kind": "pipeline" if stages else "model", "model": "m.onnx",
              "context": {"backend": "onnxruntime", "batch": batch, "threads": threads, "cpu_model": "x"},
              "latency_ms": stats.summarize(samples), "throughput_fps": fps, "warnings": []}
    if stages:
        result["stages"] = dict((k, stats.summarize(v)) for k, v in stages.items())
    return result


@pytest.fixture
def pair(tmp_path):
    def write(name, result):
        path = str(tmp_path / name)
        atomic_write_json(path, result)
        return path
    return write


def test_compare_deltas_by_hand():
    base, new = fake_result([10.0] * 10, 100.0), fake_result([11.0] * 10, 90.0)
    out = compare.compare(base, new, metric="p50", fail_over=5)
    row = [r for r in out["rows"] if r["statistic"] == "p50"][0]
    assert row["delta"] == pytest.approx(1.0) and row["change %"] == pytest.approx(10.0)
    assert out["regressed"] and out["regressions"][0]["statistic"] == "p50"
    assert not compare.compare(base, new, fail_over=15)["regressed"]
    fps = compare.compare(base, new, metric="throughput_fps", fail_over=5)
    assert fps["regressed"]                                         # throughput dropped 10%
    faster = compare.compare(new, base, metric="p50", fail_over=0)
    assert not faster["regressed"]                                  # getting faster is never a regression


def test_compare_matches_sweep_rows_and_stages():
    base = {"schema_version": 1, "kind": "sweep", "runs": [fake_result([10.0], 1, b, 1) for b in (1, 2)]}
    new = {"schema_version": 1, "kind": "sweep", "runs": [fake_result([10.0], 1, 2, 1), fake_result([20.0], 1, 4, 1)]}
    out = compare.compare(base, new, fail_over=5)
    assert set(r["run"] for r in out["rows"]) == {"batch 2 threads 1"} and out["unmatched"] == [(4, 1, None)]
    pb = fake_result([10.0], 1, stages={"infer": [5.0], "end_to_end": [10.0]})
    pn = fake_result([10.0], 1, stages={"infer": [7.0], "end_to_end": [10.0]})
    rows = compare.compare(pb, pn, fail_over=5)["rows"]
    assert any(r["run"] == "infer" and r["change %"] == pytest.approx(40.0) for r in rows)


def test_exit_codes_0_1_2(pair, tmp_path, capsys):
    base = pair("base.json", fake_result([10.0] * 50, 100.0))
    same = pair("same.json", fake_result([10.2] * 50, 98.0))
    slow = pair("slow.json", fake_result([12.0] * 50, 80.0))
    assert cli.main(["profile", "compare", base, same, "--fail-over", "5"]) == 0
    assert cli.main(["profile", "compare", base, slow, "--fail-over", "5"]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert cli.main(["profile", "compare", base, slow]) == 0            # no --fail-over: report only
    assert cli.main(["profile", "compare", base, slow, "--fail-over", "5", "--metric", "p99"]) == 1
    assert cli.main(["profile", "compare", base]) == 2
    assert cli.main(["profile", "compare", base, str(tmp_path / "missing.json")]) == 2
    assert cli.main(["profile", "compare", base, same, "--metric", "p42"]) == 2
    assert cli.main(["profile", "compare", base, same, "--fail-over", "-1"]) == 2


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "edgekit"] + list(argv), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def test_profile_model_form_writes_every_output(tiny_model, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("profile", tiny_model, "--backend", "onnxruntime", "--duration", "0.2", "--min-iters", "20",
                   "--warmup-ms", "10", "--batch", "1,2", "--layers", "3", "--estimate", "jetson-nano",
                   "--json", str(out / "r.json"), "--csv", str(out / "r.csv"), "--md", str(out / "r.md"),
                   "--plot", str(out / "r.png"))
    assert proc.returncode == 0, proc.stderr
    assert "latency (ms)" in proc.stdout and "slowest layers" in proc.stdout and "estimate on jetson-nano" in proc.stdout
    data = json.loads((out / "r.json").read_text())
    assert data["kind"] == "sweep" and [r["context"]["batch"] for r in data["runs"]] == [1, 2]
    assert data["runs"][0]["estimate"]["target"] == "jetson-nano" and data["runs"][0]["layers"]["layers"]
    assert (out / "r.csv").read_text().count("\n") == 3
    assert (out / "r.md").read_text().startswith("## edgekit profile")
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the JSON feeds compare directly (a run against itself never regresses)
    assert run_cli("profile", "compare", str(out / "r.json"), str(out / "r.json"), "--fail-over", "0").returncode == 0


def test_profile_json_to_stdout(tiny_model):
    proc = run_cli("profile", tiny_model, "--backend", "onnxruntime", "--duration", "0.1", "--min-iters", "10",
                   "--warmup-ms", "0", "--json", "-", "--no-telemetry")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["schema_version"] == 1 and len(data["latency_ms"]["samples"]) == data["iterations"]


@pytest.mark.parametrize("argv, message", [
    (["--pipeline"], "--pipeline needs --source"),
    (["--source", "synthetic://"], "are for --pipeline"),
    (["--pipeline", "--source", "synthetic://", "--batch", "1,2"], "batch 1"),
    (["--fail-over", "3"], "belongs to `edgekit profile compare`"),
    (["extra.json"], "unexpected argument"),
    (["--plot", "x.jpg"], "PNG"),
    (["--estimate", "jetson-nanoo"], "unknown target"),
    (["--percentiles", "50,100"], "outside"),
    (["--batch", "0"], "--batch"),
])
def test_bad_flags_are_one_line_exit_2(tiny_model, argv, message, capsys):
    assert cli.main(["profile", tiny_model] + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_missing_model_is_exit_2(tmp_path, capsys):
    assert cli.main(["profile", str(tmp_path / "nope.onnx")]) == 2
    assert "not found" in capsys.readouterr().err
