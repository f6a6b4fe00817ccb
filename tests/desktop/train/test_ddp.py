"""DistributedDataParallel on CPU: two gloo processes end with identical weights; only rank 0 writes."""

import os
import subprocess
import sys

import pytest
from _net import free_port



RECIPE = {"name": "ddp-cls", "task": "classification", "model": {"arch": "tiny_cnn", "kwargs": {"width": 4}},
          "input": {"size": [32, 32]}, "epochs": 2, "batch": 8, "augment": {"hflip": 0.5},
          "data": {"shapes": {"train": 32, "val": 8, "size": 32}}}


def _worker(rank, world, port, data, outs, queue):
    import torch

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from edgekit.desktop.train.run import train

    result = train(RECIPE, data, outs[rank], device="cpu", progress=False)
    queue.put((rank, result["weights_sha256"], result["world_size"], result["history"][-1]["train_loss"]))


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    import torch.multiprocessing as mp

    from edgekit.desktop.data.datasets import make_shapes

    data = make_shapes(tmp_path / "data", "classification", train=32, val=8, size=32)
    outs = [str(tmp_path / "rank0"), str(tmp_path / "rank1")]       # separate dirs: who writes is visible
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(rank, 2, port, data, outs, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    results = sorted(queue.get(timeout=5) for _ in range(2))
    assert [r[0] for r in results] == [0, 1] and all(r[2] == 2 for r in results)
    assert results[0][1] == results[1][1]                      # identical weights (and BN buffers)
    assert os.path.isfile(os.path.join(outs[0], "best.pt"))
    assert not os.path.exists(outs[1])                          # rank 1 wrote nothing


@pytest.mark.slow
def test_cli_under_torchrun(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun not installed")
    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(dict(RECIPE, epochs=1)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                           str(free_port()), "-m", "edgekit", "train", str(recipe), "--data", "shapes",
                           "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DDP gloo" in proc.stderr and proc.stdout.count("next: edgekit export") == 1
    assert sorted(f for f in os.listdir(tmp_path / "out") if not f.startswith(".")) == \
        ["best.pt", "curves.png", "data", "labels.txt", "last.pt", "metrics.json"]
