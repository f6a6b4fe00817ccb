"""The memory guard with recorded /proc/meminfo text (a 4 GB Jetson Nano, a 2 GB Nano, a desktop)."""

import pytest

from edgekit.engine import memory

MIB = 1024 ** 2

NANO_4GB_DESKTOP_RUNNING = """MemTotal:        4059272 kB
MemFree:          190344 kB
MemAvailable:     610552 kB
Buffers:           36220 kB
Cached:           597564 kB
SwapCached:        12000 kB
SwapTotal:       2029632 kB
SwapFree:        1729632 kB
"""
NANO_2GB_NO_SWAP = """MemTotal:        2027556 kB
MemFree:          300000 kB
MemAvailable:     700000 kB
SwapTotal:             0 kB
SwapFree:              0 kB
"""
DESKTOP = """MemTotal:       32594028 kB
MemAvailable:   25000000 kB
SwapTotal:       2097148 kB
SwapFree:        2097148 kB
"""


def test_parse_meminfo_in_bytes():
    info = memory.parse_meminfo(NANO_4GB_DESKTOP_RUNNING)
    assert info["MemTotal"] == 4059272 * 1024 and info["SwapFree"] == 1729632 * 1024


@pytest.mark.parametrize("text,expected", [(NANO_4GB_DESKTOP_RUNNING, 256), (NANO_2GB_NO_SWAP, 128), (DESKTOP, None)])
def test_default_workspace_by_board(text, expected):
    assert memory.default_workspace_mib(memory.parse_meminfo(text)) == expected


def test_nano_with_the_desktop_running_builds_but_warns_it_will_swap():
    plan = memory.plan_build(memory.parse_meminfo(NANO_4GB_DESKTOP_RUNNING), 40 * MIB)
    assert plan.workspace_mib == 256
    assert any("swap and be slow" in w for w in plan.warnings)
    assert plan.needed == memory.BASE_BUILD_BYTES + 3 * 40 * MIB + 256 * MIB


def test_too_little_memory_is_refused_with_advice():
    with pytest.raises(memory.MemoryShortage) as exc:
        memory.plan_build(memory.parse_meminfo(NANO_2GB_NO_SWAP), 100 * MIB)
    text = str(exc.value)
    assert "MiB needed" in text and "swap" in text and "multi-user.target" in text and "--workspace" in text


def test_no_swap_on_a_small_board_is_warned():
    meminfo = dict(memory.parse_meminfo(NANO_2GB_NO_SWAP), MemAvailable=1100000 * 1024)   # desktop stopped
    plan = memory.plan_build(meminfo, 1 * MIB, workspace_mib=16)
    assert any("no swap" in w for w in plan.warnings) and plan.workspace_mib == 16


def test_explicit_workspace_is_kept_and_counted():
    with pytest.raises(memory.MemoryShortage):
        memory.plan_build(memory.parse_meminfo(NANO_4GB_DESKTOP_RUNNING), 1 * MIB, workspace_mib=4096)


def test_unknown_meminfo_does_not_block():
    plan = memory.plan_build({}, 10 * MIB)
    assert plan.workspace_mib is None and "not checked" in plan.warnings[-1]


def test_read_meminfo_of_a_missing_file(tmp_path):
    assert memory.read_meminfo(str(tmp_path / "meminfo")) == {}


def test_killed_child_statuses():
    assert memory.was_oom_killed(-9) and memory.was_oom_killed(137) and not memory.was_oom_killed(2)
    assert "out-of-memory" in str(memory.killed_error())


def test_swap_files(tmp_path):
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 505788 0 5\n/swapfile file 4194300 0 -2\n")
    assert memory.swap_files(str(swaps)) == ["/dev/zram0", "/swapfile"]
    assert memory.zram_active(str(swaps))


# JetPack 4.6's default: nvzramconfig's four zram devices (about half of RAM), no swap file
NANO_ZRAM_ONLY = """MemTotal:        4059272 kB
MemAvailable:     900000 kB
SwapTotal:       2029632 kB
SwapFree:        2029632 kB
"""
ZRAM_SWAPS = ("Filename\tType\tSize\tUsed\tPriority\n" + "".join(
    "/dev/zram%d partition 507408 0 5\n" % i for i in range(4)))


def test_zram_is_not_counted_as_room_for_a_build(tmp_path):
    swaps = tmp_path / "swaps"
    swaps.write_text(ZRAM_SWAPS)
    meminfo = memory.parse_meminfo(NANO_ZRAM_ONLY)
    assert memory.plan_build(meminfo, 20 * MIB)                    # SwapFree alone would let it through
    with pytest.raises(memory.MemoryShortage) as exc:
        memory.plan_build(meminfo, 20 * MIB, swaps=memory.read_swaps(str(swaps)))
    assert "0 MiB of swap free" in str(exc.value)
    swaps.write_text(ZRAM_SWAPS + "/var/swapfile file 4194300 0 -2\n")
    plan = memory.plan_build(dict(meminfo, SwapFree=meminfo["SwapFree"] + 4194300 * 1024), 20 * MIB,
                             swaps=memory.read_swaps(str(swaps)))
    assert plan.swap_free == 4194300 * 1024
    assert any("zram swap (1982 MiB free) not counted" in w for w in plan.warnings)
    assert not any("no swap on a small board" in w for w in plan.warnings)


def test_base_need_is_what_tensorrt_loads_on_a_nano():
    """CUDA init + cuBLAS/cuBLASLt + cuDNN on a Nano (tensorrtx#1145): 197 + 281 + 412 MiB."""
    assert memory.BASE_BUILD_BYTES >= (197 + 281 + 412) * MIB
