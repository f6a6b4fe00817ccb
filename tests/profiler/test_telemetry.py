import glob
import os
import time

import pytest

from edgekit.profiler import telemetry

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "tegrastats")


def lines(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return [line for line in handle if line.strip()]


def test_r32_nano_line_from_platform_notes():
    rec = telemetry.parse_tegrastats(lines("r32.7_nano.txt")[0])
    assert rec["ram_used_mb"] == 1409 and rec["ram_total_mb"] == 3964
    assert rec["swap_used_mb"] == 0 and rec["swap_total_mb"] == 1982
    assert rec["cpu"] == [{"load_pct": 22, "mhz": 518}, {"load_pct": 67, "mhz": 518}, None, None]
    assert rec["cpu_load_pct"] == pytest.approx(44.5)
    assert (rec["emc_pct"], rec["emc_mhz"], rec["gpu_pct"], rec["gpu_mhz"]) == (0, 1600, 0, 76)
    assert rec["temps_c"] == {"PLL": 28.0, "CPU": 31.0, "PMIC": 100.0, "GPU": 30.5, "AO": 36.0, "thermal": 30.75}
    assert rec["power_mw"]["POM_5V_IN"] == {"now": 2003, "avg": 2003}
    assert set(rec["power_mw"]) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}
    assert "time" not in rec


def test_r32_4_nano_without_frequencies():
    rec = telemetry.parse_tegrastats(lines("r32.4_nano.txt")[0])
    assert rec["gpu_pct"] == 0 and "gpu_mhz" not in rec and "emc_mhz" not in rec
    assert rec["power_mw"]["POM_5V_CPU"] == {"now": 549, "avg": 529}


def test_r32_xavier_rails_without_units():
    rec = telemetry.parse_tegrastats(lines("r32.5_xavier_nx.txt")[0])
    assert rec["power_mw"]["VDD_IN"] == {"now": 3885, "avg": 3885}
    assert rec["cpu"][-2:] == [None, None] and rec["gpu_mhz"] == 114


def test_r35_xavier_date_prefix_and_mw_units():
    rec = telemetry.parse_tegrastats(lines("r35.4_xavier_nx.txt")[0])
    assert rec["time"] == "07-09-2024 13:31:31"
    assert rec["power_mw"]["VDD_IN"] == {"now": 2763, "avg": 2846}
    assert rec["gpu_mhz"] == 114 and rec["emc_pct"] == 2
    assert rec["temps_c"]["thermal"] == pytest.approx(45.6)


def test_r35_orin_agx_absent_sensors_and_two_gpu_clusters():
    rec = telemetry.parse_tegrastats(lines("r35.3_orin_agx.txt")[0])
    assert "CV0" not in rec["temps_c"] and "GPU" not in rec["temps_c"]      # -256C: no sensor
    assert rec["temps_c"]["tj"] == pytest.approx(44.343)
    assert rec["gpu_mhz"] == [0, 0]
    assert len(rec["cpu"]) == 12
    assert rec["power_mw"]["VDDQ_VDD2_1V8AO"] == {"now": 301, "avg": 301}
    assert "RAM" not in rec["power_mw"] and "SWAP" not in rec["power_mw"]


def test_r36_orin_nano_lower_case_sensors_and_summary():
    recs = [telemetry.parse_tegrastats(line) for line in lines("r36.4_orin_nano.txt")]
    assert recs[1]["gpu_pct"] == 99 and recs[1]["gpu_mhz"] == 1020
    assert recs[1]["temps_c"]["gpu"] == pytest.approx(58.25)
    summary = telemetry.summarize_tegrastats(recs)
    assert summary["lines"] == 2
    assert summary["gpu_pct"] == {"mean": 49.5, "max": 99}
    assert summary["temps_max_c"]["tj"] == pytest.approx(58.25)
    assert summary["power_mean_mw"]["VDD_IN"] == pytest.approx((5251 + 11874) / 2.0)


def test_every_fixture_line_parses_the_core_fields():
    files = sorted(glob.glob(os.path.join(FIXTURES, "*.txt")))
    assert len(files) >= 5
    for path in files:
        for line in lines(os.path.basename(path)):
            rec = telemetry.parse_tegrastats(line)
            assert rec["ram_total_mb"] > 0 and "gpu_pct" in rec and rec["temps_c"] and rec["power_mw"], path


def test_missing_fields_are_left_out():
    assert telemetry.parse_tegrastats("") == {}
    rec = telemetry.parse_tegrastats("RAM 100/200MB GR3D_FREQ 5%")
    assert rec == {"ram_used_mb": 100, "ram_total_mb": 200, "gpu_pct": 5}


def test_nvpmodel_and_jetson_clocks_output():
    assert telemetry.parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert telemetry.parse_nvpmodel("") is None
    pinned = ("SOC family:tegra210  Machine:NVIDIA Jetson Nano Developer Kit\nOnline CPUs: 0-3\n"
              "cpu0: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0\n"
              "cpu1: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0\n"
              "GPU MinFreq=921600000 MaxFreq=921600000 CurrentFreq=921600000\n"
              "EMC MinFreq=204000000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=1\n")
    state = telemetry.parse_clocks_show(pinned)
    assert state["pinned"] is True and state["gpu_mhz"] == pytest.approx(921.6) and state["cpus"] == 2
    free = pinned.replace("MinFreq=921600000", "MinFreq=76800000")
    assert telemetry.parse_clocks_show(free)["pinned"] is False


def test_sampler_records_cpu_and_rss_of_this_process():
    with telemetry.Telemetry(interval=0.05, tegrastats=False) as t:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            sum(range(1000))
    summary = t.summary()
    assert summary["samples"] >= 2
    assert summary["rss_mb_max"] > 10
    assert summary["cpu_pct_max"] > 0
    assert "tegrastats" not in summary
