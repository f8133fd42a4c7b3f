"""The read path: from shard URLs to typed samples and batches (private; see ``atdata.Dataset``).

Modules, in the order data flows through them:

- ``loader``: :class:`~atdata._read.loader.Loader`, one epoch's reading: plan, share, decode, progress.
- ``grouped``: :class:`~atdata._read.grouped.TorchLoader`, a DataLoader whose workers send several batches per message.
- ``epochs``: the epoch count a loader shares with its DataLoader workers (shared memory).
- ``deal``: which samples of the epoch's stream each worker and rank takes (rounds).
- ``state``: a loader's saved state: version, checks, :func:`merge_state_dicts`.
- ``order``: which pools of shards an epoch reads in what order, and the shuffle buffer.
- ``prefetch``: opening a shard; local or remote is decided here; remote ones read ahead.
- ``buffers``: chunk sizes, the buffer layout (headroom) and buffer reuse.
- ``shard``: one shard's samples, chunk by chunk.
- ``verify``: a shard's bytes checked against its manifest before they are walked.
- ``tarwalk``: the tar walker (WebDataset's grouping, errors naming shard and offset).
- ``tarfast``: the walker's vectorised path for WebDataset's own layout.
- ``tarformat``: tar constants, header fields, checksums.
- ``columns``: raw msgpack samples to typed samples or batch columns.
- ``layout``: batches cut straight from a byte matrix when samples share a byte layout.
"""
