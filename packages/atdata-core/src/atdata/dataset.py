"""``Dataset[T]``: typed samples and batches from WebDataset tar shards.

``Dataset[T](url)`` names shards (see :mod:`atdata.urls`) and a sample type; reading
happens through the iterables :meth:`Dataset.ordered` and :meth:`Dataset.shuffled`
return (:class:`Loader`). A ``Loader`` is what a training loop or a PyTorch
``DataLoader`` iterates: it deals an epoch's batches to DataLoader workers and nodes
(:mod:`atdata._read.deal`), and its :meth:`~Loader.state_dict` resumes an interrupted
epoch exactly. The order of an
epoch depends only on ``(seed, epoch)`` (see :mod:`atdata._read.order`).

torch is never imported: when the caller has imported it, ``Loader`` registers as a
virtual subclass of ``torch.utils.data.IterableDataset`` (so ``DataLoader`` treats it
as an iterable-style dataset) and asks ``torch.utils.data.get_worker_info`` and
``torch.distributed`` which share of the shards to read.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import msgpack

from ._read.loader import Loader
from ._read.prefetch import Prefetcher
from ._read.shard import iter_chunks
from ._read.state import check_state, merge_state_dicts
from .conform import SampleCheck
from .errors import InvalidArgument
from .manifest import shard_record
from .openers import open_url
from .sample import DictSample
from .urls import expand_urls

__all__ = ["Dataset", "Loader", "merge_state_dicts"]

T = TypeVar("T")


class Dataset(Generic[T]):
    """Samples of type ``T`` stored in tar shards.

    Parameters
    ----------
    url
        A shard path (``str`` or ``pathlib.Path``) or URL, a brace pattern
        (``"data-{000000..000009}.tar"``), or a list of them. Local paths and ``file://``
        are read directly; other schemes need a
        registered opener (``s3://`` comes with ``atdata-store-s3``).
    metadata_url
        Optional URL of a msgpack map describing the dataset (see :attr:`metadata`).
    sample_type
        The sample class, for when the ``Dataset[T](...)`` form is not convenient (a
        class made at run time). Defaults to ``T``, else ``DictSample``.

    Examples
    --------
    >>> ds = atdata.Dataset[TrainingSample]("data-{000000..000009}.tar")  # doctest: +SKIP
    >>> for batch in ds.ordered(batch_size=32):  # doctest: +SKIP
    ...     batch.features.shape  # (32, 128)

    Raises
    ------
    UnsupportedURL
        A malformed brace pattern.
    InvalidArgument
        An empty URL or URL list.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        metadata_url: str | None = None,
        *,
        sample_type: type[T] | None = None,
    ) -> None:
        urls = _fspaths(url)
        self._shards = expand_urls(urls)  # first: it names a wrong-typed url (list(42) would not)
        self._url = urls if isinstance(urls, str) else list(urls)
        self.metadata_url = metadata_url
        self._sample_type = sample_type
        self._metadata: dict[str, Any] | None = None
        self._loader: Loader[T] | None = None
        self._pending_state: dict[str, Any] | None = None

    @property
    def url(self) -> str | list[str]:
        """The URL or URL list the dataset was made with, unexpanded."""
        return self._url

    @property
    def shard_list(self) -> list[str]:
        """Every shard URL, braces expanded, in order."""
        return list(self._shards)

    @property
    def num_samples(self) -> int | None:
        """How many samples the shards hold, when every shard URL says (else None).

        The URLs of an index entry (``entry.data_urls``) and of ``Repo.insert``'s stored
        dataset carry each shard's count, recorded when it was written (its manifest,
        :mod:`atdata.shard_url`); plain paths and URLs carry none. Nothing is read.
        """
        total = 0
        for url in self._shards:
            record = shard_record(url)
            count = record.num_samples if record is not None else getattr(url, "num_samples", None)
            if not isinstance(count, int):
                return None
            total += count
        return total

    def __len__(self) -> int:
        """:attr:`num_samples`, for ``len(dataset)``.

        Raises
        ------
        TypeError
            The count is unknown (a shard URL carries none), as Python's ``len`` protocol
            expects of an object without a length: ``list(dataset)`` still works.
        """
        count = self.num_samples
        if count is None:
            raise TypeError(
                f"len() of {self!r} is unknown: its shard URLs carry no sample count (only an index entry's "
                "data_urls and Repo.insert's result do); count by reading: sum(1 for _ in dataset.raw_samples())"
            )
        return count

    def __bool__(self) -> bool:
        """Always true: a dataset names at least one shard (``if dataset:`` must not need its length)."""
        return True

    @property
    def sample_type(self) -> type[T]:
        """The class samples decode to: ``T`` of ``Dataset[T]``, else ``DictSample``."""
        if self._sample_type is None:
            # typing sets __orig_class__ on instances made through Dataset[T](...), after __init__.
            alias = self.__dict__.get("__orig_class__")
            args = typing.get_args(alias) if alias is not None else ()
            chosen = args[0] if args and isinstance(args[0], type) else DictSample
            self._sample_type = typing.cast("type[T]", chosen)
        return self._sample_type

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The msgpack map stored at ``metadata_url`` (read once, then cached); None without one.

        Raises
        ------
        InvalidArgument
            If the object at ``metadata_url`` is not a msgpack map.
        """
        if self.metadata_url is None:
            return None
        if self._metadata is None:
            with open_url(self.metadata_url) as stream:
                raw = stream.read()
            try:
                value = msgpack.unpackb(raw)
            except Exception as exc:
                raise InvalidArgument(f"metadata at {self.metadata_url!r} is not msgpack: {exc}") from exc
            if not isinstance(value, dict):
                raise InvalidArgument(
                    f"metadata at {self.metadata_url!r} must be a msgpack map, found {type(value).__name__}"
                )
            self._metadata = value
        return self._metadata

    def ordered(
        self,
        batch_size: int | None = None,
        drop_last: bool = False,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        even: str = "pad",
    ) -> Loader[T]:
        """Samples (``batch_size=None``) or :class:`SampleBatch` es in shard order.

        Parameters
        ----------
        batch_size
            Samples per batch; ``None`` yields single samples.
        drop_last
            Drop the last batch if it is smaller than ``batch_size`` (with several ranks:
            the last round, see :mod:`atdata._read.deal`).
        rank, world_size
            Which node this is; default from ``torch.distributed`` when it is initialised,
            else one node. Every rank yields the same number of batches.
        even
            When the epoch's last samples are fewer than ``world_size``, so some rank
            would get none: ``"pad"`` repeats one for it, ``"drop"`` leaves them out.
        """
        return self._new_loader(
            shuffle=False,
            batch_size=batch_size,
            drop_last=drop_last,
            seed=None,
            buffer_size=1,
            pool_shards=1,
            rank=rank,
            world_size=world_size,
            even=even,
        )

    def shuffled(
        self,
        buffer_size: int = 10_000,
        batch_size: int | None = None,
        seed: int | None = None,
        *,
        drop_last: bool = False,
        pool_shards: int = 4,
        rank: int | None = None,
        world_size: int | None = None,
        even: str = "pad",
    ) -> Loader[T]:
        """Samples or batches in an order fixed by ``(seed, epoch)``.

        Shards are permuted per epoch; every ``pool_shards`` consecutive shards of that
        permutation are mixed through a shuffle buffer of ``buffer_size`` samples.

        Parameters
        ----------
        buffer_size
            Samples held for mixing (memory grows with it, randomness too).
        batch_size
            Samples per batch; ``None`` yields single samples.
        seed
            Makes the order reproducible; ``None`` draws one (see ``state_dict()["seed"]``).
        drop_last
            Drop the last batch if it is smaller than ``batch_size``.
        pool_shards
            Shards mixed together (read one after another through one buffer).
        rank, world_size, even
            As for :meth:`ordered`.
        """
        return self._new_loader(
            shuffle=True,
            batch_size=batch_size,
            drop_last=drop_last,
            seed=seed,
            buffer_size=buffer_size,
            pool_shards=pool_shards,
            rank=rank,
            world_size=world_size,
            even=even,
        )

    def raw_samples(self, *, check: type | None = None) -> Iterator[tuple[str, bytes]]:
        """``(key, msgpack bytes)`` of every sample, in shard order, without decoding.

        Reads every shard whatever the worker or rank: this is for copying a dataset
        (re-sharding into a store), not for training.

        Parameters
        ----------
        check
            A sample class: every sample's field names and wire types are checked
            against it (:mod:`atdata.conform`) before its chunk's samples are yielded.
            What an insert does, so that it never indexes samples no reader could
            decode. Cheap for fixed-size samples (one check per chunk).

        Raises
        ------
        ShardError
            A corrupt or truncated shard, after the samples before the problem.
        SchemaMismatch
            With ``check``: a sample that does not match it (naming shard and member).
        """
        checker = SampleCheck(check) if check is not None else None
        prefetcher = Prefetcher(self._shards)
        try:
            for url in self._shards:
                if checker is not None:
                    checker.new_shard()
                for chunk in iter_chunks(url, prefetcher=prefetcher):
                    if checker is not None:
                        checker.chunk(url, chunk.keys, chunk.views, chunk.rows)
                    for key, view in zip(chunk.keys, chunk.views):
                        yield key, bytes(view)
        finally:
            prefetcher.close()

    def state_dict(self) -> dict[str, Any]:
        """Progress of the loader this dataset made last (see :meth:`Loader.state_dict`).

        Raises
        ------
        InvalidArgument
            If neither ``ordered()`` nor ``shuffled()`` has been called yet.
        """
        if self._loader is None:
            raise InvalidArgument("no iteration to save: call dataset.ordered() or dataset.shuffled() first")
        return self._loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state``: the next ``ordered()``/``shuffled()`` loader continues there.

        The loader checks that its mode and parameters match the state's.
        """
        check_state(state)
        self._pending_state = dict(state)

    def __iter__(self) -> Iterator[T]:
        """Every sample in shard order (``iter(dataset.ordered())``)."""
        return iter(self.ordered())  # type: ignore[arg-type]  # unbatched: yields samples

    def __repr__(self) -> str:
        return f"Dataset[{self.sample_type.__qualname__}]({self._url!r}, {len(self._shards)} shards)"

    def _new_loader(self, **options: Any) -> Loader[T]:
        loader = Loader(self, **options)
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            loader.load_state_dict(state)
        self._loader = loader
        return loader


def _fspaths(url: object) -> Any:
    """Paths as their strings (``write_samples`` and ``DiskDataStore`` take paths too);
    anything else as given, for :func:`~atdata.urls.expand_urls` to judge."""
    if isinstance(url, os.PathLike):
        return os.fspath(url)
    if isinstance(url, (list, tuple)):
        return [os.fspath(u) if isinstance(u, os.PathLike) else u for u in url]
    return url
