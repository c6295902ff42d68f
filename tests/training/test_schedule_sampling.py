"""Cosine warm-up schedule against its closed form; the epoch-keyed sampler's determinism and sharding."""

from __future__ import annotations

import math

import pytest
import torch

from ssm.training.sampling import epoch_sampler
from ssm.training.schedule import CosineWarmupLR, cosine_warmup_factor


def _reference(step: int, warmup: int, total: int, floor: float) -> float:
    # Written from the definition: linear ramp over `warmup` steps, then a half cosine to `floor`.
    if step < warmup:
        return (step + 1) / warmup
    t = min(step - warmup, total - warmup) / (total - warmup)
    return floor + (1 - floor) * (1 + math.cos(math.pi * t)) / 2


@pytest.mark.parametrize("warmup, total, floor", [(0, 10, 0.0), (3, 10, 0.0), (4, 17, 0.1), (1, 2, 0.5)])
def test_scheduler_follows_closed_form(warmup: int, total: int, floor: float) -> None:
    p = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.SGD(
        [{"params": [p], "lr": 0.5}, {"params": [torch.nn.Parameter(torch.zeros(()))], "lr": 0.1}]
    )
    sched = CosineWarmupLR(opt, warmup_steps=warmup, total_steps=total, min_lr_ratio=floor)
    for step in range(total + 3):
        ref = _reference(step, warmup, total, floor)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * ref, rel=1e-12)
        assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * ref, rel=1e-12)
        opt.step()
        sched.step()
    assert cosine_warmup_factor(total, warmup, total, floor) == pytest.approx(floor)


def test_scheduler_state_dict_resumes_the_same_rates() -> None:
    def make():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(()))], lr=1.0)
        return opt, CosineWarmupLR(opt, warmup_steps=2, total_steps=9)

    opt, sched = make()
    for _ in range(4):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2, sched2 = make()
    sched2.load_state_dict(state)
    for _ in range(3):
        opt.step(), sched.step(), opt2.step(), sched2.step()
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"warmup_steps": -1, "total_steps": 5}, "warmup_steps"),
        ({"warmup_steps": 0, "total_steps": None}, "total_steps"),
        ({"total_steps": 5, "min_lr_ratio": 2.0}, "min_lr_ratio"),
    ],
)
def test_scheduler_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(()))], lr=1.0)
    with pytest.raises(ValueError, match=message):
        CosineWarmupLR(opt, **kwargs)


def _order(n: int, **kwargs) -> list[int]:
    return list(epoch_sampler(range(n), **kwargs))


def test_sampler_is_keyed_on_seed_and_epoch() -> None:
    s = epoch_sampler(range(50), seed=3)
    first = list(s)
    assert sorted(first) == list(range(50))
    assert _order(50, seed=3) == first
    s.set_epoch(1)
    second = list(s)
    assert second != first and sorted(second) == list(range(50))
    assert _order(50, seed=3, epoch=1) == second
    s.set_epoch(0)
    assert list(s) == first
    assert _order(50, seed=4) != first
    assert _order(7, seed=3, shuffle=False) == list(range(7))
    # the order is torch's DistributedSampler permutation: randperm under the seed seed + epoch
    g = torch.Generator().manual_seed(3 + 1)
    assert second == torch.randperm(50, generator=g).tolist()


@pytest.mark.parametrize("n, replicas", [(10, 2), (11, 3), (5, 4)])
def test_sampler_shards_cover_the_epoch(n: int, replicas: int) -> None:
    shards = [_order(n, seed=1, num_replicas=replicas, rank=r, epoch=2) for r in range(replicas)]
    size = math.ceil(n / replicas)
    assert all(len(s) == size for s in shards)
    merged = [i for group in zip(*shards) for i in group]
    full = _order(n, seed=1, epoch=2)
    assert merged == (full * 2)[: size * replicas]  # interleaved shards rebuild the (wrapped) permutation
    with pytest.raises(ValueError, match="rank"):
        epoch_sampler(range(n), num_replicas=replicas, rank=replicas)
    with pytest.raises(ValueError, match="non-empty"):
        epoch_sampler([])


def test_datamodule_wrapper_shards_training_and_evaluation_over_processes() -> None:
    from types import SimpleNamespace

    from ssm.data.digits import DigitsDataModule
    from ssm.training.sampling import ReproducibleDataModule

    dm = DigitsDataModule(batch_size=8, seed=0)
    dm.setup("fit")
    seen_train, seen_val = [], []
    for rank in range(2):
        wrapper = ReproducibleDataModule(dm, seed=5)
        wrapper.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        seen_train.append(list(wrapper.train_dataloader().sampler))
        seen_val.append(list(wrapper.val_dataloader().sampler))
    n_train, n_val = len(dm.train_set), len(dm.val_set)
    assert set(seen_train[0]).isdisjoint(seen_train[1]) or n_train % 2
    assert set(seen_train[0]) | set(seen_train[1]) == set(range(n_train))
    assert [i for pair in zip(*seen_val) for i in pair][:n_val] == list(range(n_val))
    single = ReproducibleDataModule(dm, seed=5)
    assert single.val_dataloader() is not None and single.trainer is None
