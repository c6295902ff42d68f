"""Epoch-keyed shuffling of the training data, so that a resumed run sees the same batches.

A plain ``RandomSampler`` draws its permutation from the global generator when the data iterator is
created; Lightning creates that iterator at a different point of a resumed run than of an
uninterrupted one, so the order would differ. torch's ``DistributedSampler`` with an explicit
``num_replicas``, ``rank`` and ``seed`` draws the permutation of epoch ``e`` from a generator seeded
with ``seed + e`` alone (Lightning calls its ``set_epoch`` before every epoch), so the order is a pure
function of (seed, epoch) on one process and on many. The epoch to start from travels in the
checkpoint through :class:`ReproducibleDataModule`'s ``state_dict``.
"""

from __future__ import annotations

from typing import Any, Optional

import lightning.pytorch as pl
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["epoch_sampler", "ReproducibleDataModule"]


def epoch_sampler(
    dataset: Any, seed: int = 0, shuffle: bool = True, num_replicas: int = 1, rank: int = 0, epoch: int = 0
) -> DistributedSampler:
    """torch's ``DistributedSampler`` over ``dataset``, keyed on (seed, epoch), one shard of ``num_replicas``.

    Every shard gets ``ceil(len(dataset) / num_replicas)`` indices (the permutation wraps around to
    pad the last one); ``num_replicas=1`` needs no process group.
    """
    if len(dataset) == 0:
        raise ValueError("the training sampler needs a non-empty dataset, got 0 examples")
    sampler = DistributedSampler(
        dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=int(seed), drop_last=False
    )
    sampler.set_epoch(int(epoch))
    return sampler


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

    The training loader of ``datamodule`` is rebuilt with a seeded ``DistributedSampler`` (shuffled if
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
        self.sampler: Optional[DistributedSampler] = None

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
        self.sampler = epoch_sampler(
            loader.dataset,
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
            loader, epoch_sampler(loader.dataset, shuffle=False, num_replicas=world, rank=rank)
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
