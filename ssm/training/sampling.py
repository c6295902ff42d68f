"""Epoch-keyed shuffling of the training data, so that a resumed run sees the same batches.

A plain ``RandomSampler`` draws its permutation from the global generator when the data iterator is
created; Lightning creates that iterator at a different point of a resumed run than of an
uninterrupted one, so the order would differ. Here the permutation of epoch ``e`` is a pure function of
(seed, e), sharded across processes like ``DistributedSampler``, and the epoch to start from travels in
the checkpoint through :class:`ReproducibleDataModule`'s ``state_dict``.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import lightning.pytorch as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler

__all__ = ["EpochShuffleSampler", "ReproducibleDataModule"]


class EpochShuffleSampler(Sampler[int]):
    """Indices of one shard of a dataset, in an order keyed on (seed, epoch).

    Args:
        num_samples: size of the dataset.
        seed: base seed of the permutation.
        shuffle: False keeps dataset order (only sharding).
        num_replicas: number of processes sharing the data (DDP world size).
        rank: this process's index in ``[0, num_replicas)``.
        epoch: epoch of the first iteration (``set_epoch`` changes it).

    Every shard gets ``ceil(num_samples / num_replicas)`` indices; the permutation is padded by
    wrapping around, as ``DistributedSampler`` does.
    """

    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        epoch: int = 0,
    ) -> None:
        if num_samples <= 0:
            raise ValueError(f"EpochShuffleSampler needs a non-empty dataset, got num_samples={num_samples}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in [0, num_replicas={num_replicas}), got {rank}")
        self.num_samples, self.seed, self.shuffle = num_samples, int(seed), shuffle
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.num_samples // self.num_replicas)

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = list(range(self.num_samples))
        total = len(self) * self.num_replicas
        order = (order * (-(-total // len(order))))[:total]
        return order[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())


def _rebuild(loader: DataLoader, sampler: Sampler) -> DataLoader:
    kwargs: dict[str, Any] = dict(
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers,
    )
    if loader.num_workers > 0:
        kwargs["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(loader.dataset, **kwargs)


class ReproducibleDataModule(pl.LightningDataModule):
    """Wrap a data module so that its training order is keyed on (seed, epoch) and resumes exactly.

    The training loader of ``datamodule`` is rebuilt with an :class:`EpochShuffleSampler` (shuffled if
    the original shuffled, sharded over DDP processes); validation and test loaders are used as they
    are on one process and sharded in order over DDP processes. Loaders with a custom batch sampler are
    kept and must shuffle deterministically themselves.

    Args:
        datamodule: the task's data module (any ``LightningDataModule``).
        seed: seed of the training order.
    """

    def __init__(self, datamodule: pl.LightningDataModule, seed: int = 0) -> None:
        super().__init__()
        self.datamodule = datamodule
        self.seed = int(seed)
        self.start_epoch = 0
        self.sampler: Optional[EpochShuffleSampler] = None

    def prepare_data(self) -> None:
        self.datamodule.prepare_data()

    def setup(self, stage: str) -> None:
        self.datamodule.setup(stage)

    def teardown(self, stage: str) -> None:
        self.datamodule.teardown(stage)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        loader = self.datamodule.train_dataloader()
        if not isinstance(loader, DataLoader):
            raise TypeError(
                f"{type(self.datamodule).__name__}.train_dataloader() must return a DataLoader, "
                f"got {type(loader).__name__}"
            )
        world, rank = self._world()
        batch_sampler = loader.batch_sampler
        if batch_sampler is not None and type(batch_sampler) is not BatchSampler:
            if world > 1:
                raise ValueError(
                    f"{type(self.datamodule).__name__} uses the custom batch sampler "
                    f"{type(batch_sampler).__name__}, which cannot be sharded over {world} processes"
                )
            if hasattr(batch_sampler, "set_epoch"):
                batch_sampler.set_epoch(self.start_epoch)
            return loader
        original = loader.sampler
        if isinstance(original, RandomSampler) or hasattr(original, "set_epoch"):
            shuffle = True
        elif isinstance(original, SequentialSampler):
            shuffle = False
        else:
            raise ValueError(
                f"{type(self.datamodule).__name__}'s training sampler {type(original).__name__} is "
                "neither random nor sequential; give it a set_epoch(epoch) method"
            )
        self.sampler = EpochShuffleSampler(
            len(loader.dataset),
            seed=self.seed,
            shuffle=shuffle,
            num_replicas=world,
            rank=rank,
            epoch=self.start_epoch,
        )
        return _rebuild(loader, self.sampler)

    def _evaluation_loader(self, loader: Any) -> Any:
        world, rank = self._world()
        if world == 1 or not isinstance(loader, DataLoader):
            return loader
        if type(loader.batch_sampler) is not BatchSampler or not isinstance(
            loader.sampler, SequentialSampler
        ):
            raise ValueError(
                f"{type(self.datamodule).__name__}'s evaluation loaders must read their data in order "
                f"(SequentialSampler) to be sharded over {world} processes"
            )
        # Shard in order; like DistributedSampler, the last shard is padded with a few repeated examples.
        return _rebuild(
            loader, EpochShuffleSampler(len(loader.dataset), shuffle=False, num_replicas=world, rank=rank)
        )

    def val_dataloader(self) -> Any:
        return self._evaluation_loader(self.datamodule.val_dataloader())

    def test_dataloader(self) -> Any:
        return self._evaluation_loader(self.datamodule.test_dataloader())

    def state_dict(self) -> dict[str, Any]:
        trainer = self.trainer
        epoch = trainer.fit_loop.epoch_progress.current.processed if trainer is not None else self.start_epoch
        return {"seed": self.seed, "next_epoch": int(epoch)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.start_epoch = int(state_dict["next_epoch"])
