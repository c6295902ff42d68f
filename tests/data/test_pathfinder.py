"""LRA Pathfinder / Path-X loader on the curv_contour_length_14 layout (text metadata + PNGs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_fixtures import write_pathfinder_fixture, write_png
from ssm.data import DatasetNotFoundError, MalformedFileError, PathfinderDataModule
from ssm.data.lra.pathfinder import PathfinderDataset, read_pathfinder_metadata


def make_images(n: int, res: int, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (res, res), dtype=np.uint8) for _ in range(n)], [i % 2 for i in range(n)]


@pytest.mark.parametrize("tokens", [False, True])
def test_datamodule_reads_images_labels_and_splits(tmp_path, tokens):
    imgs, labels = make_images(20, 32)
    base = write_pathfinder_fixture(tmp_path, imgs, labels, per_folder=6)
    assert sorted(p.name for p in (base / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy", "3.npy"]
    dm = PathfinderDataModule(tmp_path, batch_size=20, resolution=32, tokens=tokens, split_seed=5)
    want = ((256, True) if tokens else (1, False)) + (1024, 2)
    assert (dm.d_input, dm.embedding, dm.l_max, dm.d_output) == want
    dm.setup()
    parts = [dm.train_set.indices, dm.val_set.indices, dm.test_set.indices]
    assert [len(p) for p in parts] == [16, 2, 2] and sorted(sum(parts, [])) == list(range(20))
    b = next(iter(dm.val_dataloader()))
    for j, idx in enumerate(dm.val_set.indices):
        flat = imgs[idx].reshape(-1)
        assert int(b["y"][j]) == labels[idx]
        if tokens:
            assert b["x"].dtype == torch.long and b["x"][j].tolist() == flat.tolist()
        else:
            np.testing.assert_allclose(b["x"][j, :, 0].numpy(), (flat / 255.0 - 0.5) / 0.5, atol=1e-6)
    again = PathfinderDataModule(tmp_path, resolution=32, split_seed=5)
    again.setup()
    assert again.val_set.indices == dm.val_set.indices


def test_binary_npy_metadata_and_pathx(tmp_path):
    # 10 images: the fewest whose 80/10/10 split leaves an example in every split.
    imgs, labels = make_images(10, 128)
    base = write_pathfinder_fixture(tmp_path, imgs, labels, per_folder=10, resolution=128)
    rows = np.array([["imgs/0", f"sample_{i}.png", str(i), str(labels[i]), "14"] for i in range(10)])
    np.save(base / "metadata" / "0.npy", rows)
    assert (base / "metadata" / "0.npy").read_bytes().startswith(b"\x93NUMPY")
    paths, y, _ = read_pathfinder_metadata(base)
    assert paths == [f"imgs/0/sample_{i}.png" for i in range(10)] and y.tolist() == labels
    dm = PathfinderDataModule(base, resolution=128, batch_size=1)
    assert dm.l_max == 16384
    dm.setup()
    x, label = dm.train_set.dataset[2]
    assert x.shape == (16384, 1) and label == labels[2]


def test_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="pathfinder32/curv_contour_length_14"):
        PathfinderDataModule(tmp_path / "none").setup()
    with pytest.raises(ValueError, match="resolution"):
        PathfinderDataModule(tmp_path, resolution=48)
    imgs, labels = make_images(4, 32)
    base = write_pathfinder_fixture(tmp_path, imgs, labels)
    meta = base / "metadata" / "0.npy"
    good = meta.read_text()
    meta.write_text(good.replace("sample_1.png 1 1", "sample_1.png 1 7"))
    with pytest.raises(MalformedFileError, match="0.npy, line 2: label"):
        read_pathfinder_metadata(base)
    meta.write_text(good + "imgs/0 sample_9.png\n")
    with pytest.raises(MalformedFileError, match="line 5: expected at least 4 fields"):
        read_pathfinder_metadata(base)
    meta.write_text(good)
    (base / "imgs" / "0" / "sample_2.png").unlink()
    write_png(base / "imgs" / "0" / "sample_3.png", np.zeros((16, 16), np.uint8))
    ds = PathfinderDataset(base, 32)  # 4 images: too few for the data module's 80/10/10 split
    with pytest.raises(DatasetNotFoundError, match=r"sample_2.png \(listed in .*0.npy, line 3\)"):
        ds[2]
    with pytest.raises(MalformedFileError, match="sample_3.png: expected a 32x32 image"):
        ds[3]
