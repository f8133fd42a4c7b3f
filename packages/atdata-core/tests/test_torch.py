"""Loaders under real PyTorch: DataLoader workers (fork, spawn, persistent or not), epochs,
StatefulDataLoader resumes in a new process, ranks, and a training step.

torch and torchdata are test dependencies of the workspace (never of a package); these
tests use them as a training job does, with no fake module anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

import atdata
from atdata.dataset import merge_state_dicts
from atdata.errors import InvalidArgument

SUPPORT = Path(__file__).parent / "torch_support"
sys.path.insert(0, str(SUPPORT))  # spawned workers inherit sys.path and import the class from there
from torch_samples import TorchImage, TorchSample, image, labels, write  # noqa: E402

N = 1000  # samples in uneven shards: 6 of 150 and one of 100


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write(tmp_path_factory.mktemp("torch-shards"), N, 150)


def dataset(url: str) -> atdata.Dataset[TorchSample]:
    return atdata.Dataset[TorchSample](url)


def epochs(iterable: object, count: int) -> list[list[int]]:
    return [labels(iterable) for _ in range(count)]  # type: ignore[arg-type]


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh-workers", "persistent"])
@pytest.mark.parametrize(
    "context", ["fork", pytest.param("spawn", marks=[pytest.mark.slow, pytest.mark.timeout(900)])]
)  # a spawned worker imports torch: seconds each, and 14 of them for fresh workers
def test_dataloader_yields_the_single_process_order_and_a_new_one_each_epoch(
    url: str, context: str, persistent: bool
) -> None:
    """For 0, 1, 2 and 4 workers: each epoch has every sample once, in the order one process
    reads (so the same for every worker count), and each epoch a new order, with no call
    to set_epoch."""
    reference = epochs(dataset(url).shuffled(batch_size=32, seed=3), 2)
    assert reference[0] != reference[1] and all(sorted(e) == list(range(N)) for e in reference)
    for workers in (0, 1, 2, 4):
        if workers == 0 and (context, persistent) != ("fork", False):
            continue  # no workers: no context, nothing to persist
        loader = dataset(url).shuffled(batch_size=32, seed=3)
        options = {"multiprocessing_context": context, "persistent_workers": persistent} if workers else {}
        dl = DataLoader(loader, batch_size=None, num_workers=workers, **options)
        got = epochs(dl, 2)
        assert got == reference, f"{workers} workers ({context}, persistent={persistent})"


def test_batches_become_tensors_without_a_copy_and_train_a_model(url: str) -> None:
    """A training step on our batches: from_numpy shares the batch's memory, pin_memory=True
    works (without an accelerator torch leaves the tensors where they are)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    before = model.weight.detach().clone()
    dl = DataLoader(dataset(url).shuffled(batch_size=32, seed=1), batch_size=None, num_workers=2, pin_memory=True)
    steps = 0
    for batch in dl:
        features = torch.from_numpy(batch.features)
        assert np.shares_memory(features.numpy(), batch.features) and features.shape == (len(batch), 8)
        target = torch.as_tensor(np.asarray(batch.label, dtype=np.float32)).unsqueeze(1)
        loss = torch.nn.functional.mse_loss(model(features / N), target / N)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    assert steps == 32 and not torch.equal(before, model.weight)


@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=[pytest.mark.slow, pytest.mark.timeout(600)])])
def test_batches_cross_from_workers_intact_through_shared_memory(tmp_path: Path, context: str) -> None:
    """Worker batches reach the main process through a shared-memory slot (atdata._wire):
    the arrays equal the single-process ones byte for byte, belong to the main process
    (writable), and no /dev/shm file outlives the epochs, nor an epoch broken off."""
    url = write(tmp_path / "images", 400, 90, make=image)
    before = {n for n in os.listdir("/dev/shm") if n.startswith("atdata-batches-")}
    reference = list(atdata.Dataset[TorchImage](url).shuffled(batch_size=32, seed=4))
    loader = atdata.Dataset[TorchImage](url).shuffled(batch_size=32, seed=4)
    dl = DataLoader(loader, batch_size=None, num_workers=2, multiprocessing_context=context, pin_memory=True)
    got = [b for b in dl]
    assert len(got) == len(reference)
    for mine, theirs in zip(got, reference):
        assert mine.image.dtype == np.uint8 and np.array_equal(mine.image, theirs.image)
        assert mine.image.flags.writeable and mine.label == theirs.label and mine.keys == theirs.keys
    for _ in zip(range(3), DataLoader(loader, batch_size=None, num_workers=2, multiprocessing_context=context)):
        pass  # break off an epoch: its workers are stopped with messages unread
    left = {n for n in os.listdir("/dev/shm") if n.startswith("atdata-batches-")} - before
    assert not left, left


@pytest.mark.parametrize("workers", [0, 1, 2, 4])
def test_torch_loader_yields_the_single_process_order_whatever_the_batches_per_message(url: str, workers: int) -> None:
    """loader.torch_loader(): workers send several batches per message; the batches come
    out one by one in the single-process order, a new order each epoch, for any count."""
    reference = epochs(dataset(url).shuffled(batch_size=32, seed=3), 2)
    for per_message in (1, 3, 8):
        loader = dataset(url).shuffled(batch_size=32, seed=3)
        persistent = {"persistent_workers": per_message != 3} if workers else {}  # the default: True
        tl = loader.torch_loader(num_workers=workers, batches_per_message=per_message, **persistent)
        assert epochs(tl, 2) == reference, (workers, per_message)
    ranked = [labels(dataset(url).ordered(batch_size=8, rank=1, world_size=3))]
    tl = dataset(url).ordered(batch_size=8, rank=1, world_size=3).torch_loader(num_workers=workers)
    assert epochs(tl, 1) == ranked  # a rank's share, as its own reader reads it


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_torch_loader_with_spawned_persistent_workers(url: str) -> None:
    reference = epochs(dataset(url).shuffled(batch_size=32, seed=3), 2)
    loader = dataset(url).shuffled(batch_size=32, seed=3)
    tl = loader.torch_loader(num_workers=2, multiprocessing_context="spawn", persistent_workers=True)
    assert epochs(tl, 2) == reference
    with pytest.raises(InvalidArgument, match="persistent"):
        tl.load_state_dict(tl.state_dict())


@pytest.mark.parametrize("stop", [11, 32, 0], ids=["mid-epoch", "after-the-last-batch", "epoch-finished"])
def test_torch_loader_state_resumes_after_the_last_batch_received(url: str, stop: int) -> None:
    """state_dict() is computed in the main process, exact to the batch: resumed by a
    torch_loader with another worker count, or (merged) by a plain DataLoader, it yields
    every later sample once and no earlier one; the epoch after it is the next one."""
    make = lambda: dataset(url).shuffled(batch_size=32, seed=5, buffer_size=64)  # noqa: E731
    whole = epochs(make(), 2)
    tl = make().torch_loader(num_workers=2, batches_per_message=4)
    if stop == 0:  # iterated to the end
        head, state = labels(tl), tl.state_dict()
        assert state["finished"]
    else:
        it, head = iter(tl), []
        for _ in range(stop):
            head += labels([next(it)])
        state = tl.state_dict()
        del it
        assert (state["final"] is not None) == (stop == 32)  # 1000 samples: 31 batches of 32, one of 8
    state = json.loads(json.dumps(state))  # a plain, JSON-friendly dict
    resumed = make().torch_loader(num_workers=3, batches_per_message=2)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state  # before iterating: where it will resume
    rest, after = epochs(resumed, 2)
    if stop in (0, 32):  # nothing left of epoch 0: the finished one resumes at epoch 1, the other reads none
        assert head == whole[0] and [rest, after][stop == 32] == whole[1] and (stop == 0 or rest == [])
    else:
        assert head + rest == whole[0] and sorted(after) == list(range(N)) and after != whole[0]
    plain = make()
    plain.load_state_dict(merge_state_dicts([state]))
    assert labels(DataLoader(plain, batch_size=None, num_workers=2)) == (whole[1] if stop == 0 else rest)


def test_torch_loader_sets_the_batching_itself(url: str) -> None:
    with pytest.raises(InvalidArgument, match="batch_size"):
        dataset(url).ordered(batch_size=32).torch_loader(batch_size=32)
    with pytest.raises(InvalidArgument, match="batches_per_message"):
        dataset(url).ordered(batch_size=32).torch_loader(batches_per_message=0)


def test_main_process_state_with_workers_says_where_the_progress_is(url: str) -> None:
    loader = dataset(url).ordered(batch_size=32)
    next(iter(DataLoader(loader, batch_size=None, num_workers=1)))
    with pytest.raises(InvalidArgument, match="StatefulDataLoader"):
        loader.state_dict()


@pytest.mark.parametrize("world_size", [2, 3, 16])
@pytest.mark.parametrize("shards", [1, 2, 3, 7, 10])
@pytest.mark.parametrize("even", ["pad", "drop"])
def test_every_rank_yields_the_same_number_of_batches(tmp_path: Path, world_size: int, shards: int, even: str) -> None:
    """Any shard count (10 shards at world size 3 used to give 25/19/19 batches, rank 15 of
    16 none): ranks yield equally many batches, every sample once, or with pad/drop at most
    world_size - 1 samples repeated or left out."""
    n = shards * 37 + 1  # a last round smaller than the world when shards * 37 + 1 < world_size
    ds = atdata.Dataset[TorchSample](write(tmp_path / "d", n, 37))
    parts = [
        list(ds.shuffled(batch_size=8, seed=2, pool_shards=2, rank=r, world_size=world_size, even=even))
        for r in range(world_size)
    ]
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) > 0
    seen = [x for p in parts for x in labels(p)]
    assert set(seen) <= set(range(n))
    if even == "pad":
        assert set(seen) == set(range(n)) and len(seen) - n < world_size
    else:
        assert len(seen) == len(set(seen)) and n - len(seen) < world_size
    last_round = n % (world_size * 8)
    if last_round == 0 or last_round >= world_size:  # every rank has a sample of it: exactly once
        assert sorted(seen) == list(range(n))


RESUME = textwrap.dedent(
    """
    import json, sys
    import torch
    from torch.utils.data import DataLoader
    from torchdata.stateful_dataloader import StatefulDataLoader
    sys.path.insert(0, sys.argv[1])
    import atdata
    from torch_samples import TorchSample, labels

    def main():
        url, saved, out = sys.argv[2:5]
        checkpoints = torch.load(saved)
        result = {}
        for mode, (dl_state, merged) in checkpoints.items():
            make = lambda: (atdata.Dataset[TorchSample](url).ordered(batch_size=32) if mode == "ordered"
                            else atdata.Dataset[TorchSample](url).shuffled(batch_size=32, seed=5, buffer_size=64))
            dl = StatefulDataLoader(make(), batch_size=None, num_workers=2)
            dl.load_state_dict(dl_state)
            result[mode + "/stateful"] = labels(dl)
            result[mode + "/next-epoch"] = labels(dl)
            loader = make()
            loader.load_state_dict(merged)  # our route: one state, any number of workers
            result[mode + "/merged"] = labels(DataLoader(loader, batch_size=None, num_workers=3))
        with open(out, "w") as f:
            json.dump(result, f)

    if __name__ == "__main__":
        main()
    """
)


@pytest.mark.slow
def test_stateful_dataloader_checkpoint_resumes_in_a_new_process(url: str, tmp_path: Path) -> None:
    """Checkpointed mid-epoch with 2 workers, resumed in a new process (ordered and
    shuffled): StatefulDataLoader continues the same order; the merged state resumes
    on 3 workers; nothing repeated or lost either way."""
    makers = {
        "ordered": lambda: dataset(url).ordered(batch_size=32),
        "shuffled": lambda: dataset(url).shuffled(batch_size=32, seed=5, buffer_size=64),
    }
    heads, whole, saved = {}, {}, {}
    for mode, make in makers.items():
        whole[mode] = labels(make())
        dl = StatefulDataLoader(make(), batch_size=None, num_workers=2)
        it, head = iter(dl), []
        for _ in range(11):
            head += labels([next(it)])
        state = dl.state_dict()
        heads[mode] = head
        saved[mode] = (state, merge_state_dicts(state))
        del it
    torch.save(saved, tmp_path / "checkpoint.pt")
    (tmp_path / "resume.py").write_text(RESUME)
    out = tmp_path / "out.json"
    run = subprocess.run(
        [sys.executable, str(tmp_path / "resume.py"), str(SUPPORT), url, str(tmp_path / "checkpoint.pt"), str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    for mode in makers:
        assert heads[mode] + result[mode + "/stateful"] == whole[mode], mode
        assert sorted(heads[mode] + result[mode + "/merged"]) == list(range(N)), mode
        assert sorted(result[mode + "/next-epoch"]) == list(range(N)), mode
    assert result["shuffled/next-epoch"] != whole["shuffled"]  # the epoch after the resumed one


def torchrun(ranks: int, *args: str) -> None:
    command = [Path(sys.executable).with_name("torchrun"), "--standalone", f"--nproc_per_node={ranks}"]
    run = subprocess.run(
        [*map(str, command), str(SUPPORT / "rank_main.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**__import__("os").environ, "PYTHONPATH": str(SUPPORT), "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_torchrun_ranks_train_in_step_and_resume_on_another_world_size(tmp_path: Path) -> None:
    """torchrun, 3 ranks, gloo: each rank yields as many batches (a DDP step per batch, so an
    uneven rank would hang), every sample once per epoch, with and without DataLoader
    workers; a checkpoint taken at world size 3 resumes at world size 2, nothing repeated
    or lost."""
    ten = write(tmp_path / "ten", 1000, 100)  # the 10 shards at world size 3
    four = write(tmp_path / "four", 1001, 260)  # 4 uneven shards, a last round of 137 samples
    torchrun(3, "count", str(tmp_path / "count.json"), ten, four)
    counted = json.loads((tmp_path / "count.json").read_text())
    for url, n in ((ten, 1000), (four, 1001)):
        for how in ("own", "workers"):
            per_rank = counted[url][how]  # per rank, the labels of each batch
            assert len({len(batches) for batches in per_rank}) == 1, (url, how)
            assert sorted(x for batches in per_rank for b in batches for x in b) == list(range(n)), (url, how)
    torchrun(3, "save", str(tmp_path / "saved.json"), four, "9")
    saved = json.loads((tmp_path / "saved.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps(saved["merged"]))
    torchrun(2, "resume", str(tmp_path / "rest.json"), four, str(tmp_path / "state.json"))
    rest = json.loads((tmp_path / "rest.json").read_text())["rest"]
    assert len(rest[0]) == len(rest[1]) and all(len(b) == 9 for b in saved["heads"])
    assert sorted(x for batches in saved["heads"] + rest for b in batches for x in b) == list(range(1001))
