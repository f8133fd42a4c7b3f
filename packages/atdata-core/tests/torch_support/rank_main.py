"""One rank of the torchrun tests (``torchrun --standalone --nproc_per_node=N rank_main.py ...``).

``count OUT URL...``: for each dataset URL, every rank reads an epoch (its own loader, then
through a DataLoader with 2 workers), running a DistributedDataParallel step per batch
(an uneven rank would hang at the next collective); rank 0 writes each rank's labels.
``save OUT URL STEPS``: every rank reads STEPS batches, then the ranks' states are gathered
and merged; rank 0 writes the merged state and the labels read.
``resume OUT URL STATE``: every rank resumes from the merged state and reads the rest.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch_samples import TorchSample, labels

import atdata
from atdata.dataset import merge_state_dicts


def train(batches: object) -> list[list[int]]:
    """A DDP step per batch (its all-reduce needs every rank); the labels of each batch."""
    model = DistributedDataParallel(torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    seen: list[list[int]] = []
    for batch in batches:  # type: ignore[attr-defined]
        loss = model(torch.from_numpy(batch.features)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen.append(labels([batch]))
    return seen


def gathered(value: object) -> list[object]:
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def loader(url: str) -> atdata.dataset.Loader:
    return atdata.Dataset[TorchSample](url).shuffled(batch_size=32, seed=7, buffer_size=100)


def main() -> None:
    dist.init_process_group("gloo")
    command, out = sys.argv[1], sys.argv[2]
    result: object
    if command == "count":
        result = {}
        for url in sys.argv[3:]:
            own = train(loader(url))
            workers = train(DataLoader(loader(url), batch_size=None, num_workers=2))
            result[url] = {"own": gathered(own), "workers": gathered(workers)}
    elif command == "save":
        url, steps = sys.argv[3], int(sys.argv[4])
        reader = loader(url)
        it = iter(reader)
        head = train(next(it) for _ in range(steps))
        it.close()  # stop its prefetch thread before the process group goes
        result = {"merged": merge_state_dicts(gathered(reader.state_dict())), "heads": gathered(head)}
    else:
        url, saved = sys.argv[3], sys.argv[4]
        reader = loader(url)
        with open(saved) as f:
            reader.load_state_dict(json.load(f))
        result = {"rest": gathered(train(reader))}
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(result, f)
    dist.barrier()  # no rank tears down while another still talks to it
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Skip interpreter finalization: gloo's C++ threads can still hold tensors then, and
    # destroying them during teardown aborts the rank ('terminate called without an active
    # exception', seen once in CI; pytorch/pytorch#190489, PR #179291).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
