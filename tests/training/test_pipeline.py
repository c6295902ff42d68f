"""A fast_dev_run of every task's pipeline on fixture data, each task with a different layer family."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import TINY, compose_cfg

from ssm.training.train import run

# task -> (experiment, extra overrides); together the rows cover all six layer families.
CASES = {
    "listops": ("lra/listops-s4", ["layer.d_state=4"]),
    "text": ("lra/text-s4d", ["layer.d_state=4"]),
    "retrieval": ("lra/retrieval-dss", ["layer.d_state=4", "layer.l_max=256", "data.l_max=256"]),
    "image": ("lra/image-s5", ["layer.d_state=8", "layer.blocks=2"]),
    "pathfinder": ("lra/pathfinder-s5-ptd", ["layer.d_state=16", "layer.blocks=1"]),
    "pathx": ("lra/pathx-s4-ptd", ["layer.d_state=16"]),
    "scifar": ("scifar-s4", ["layer.d_state=4"]),
    "smnist": ("smnist-s4d", ["layer.d_state=4"]),
    "psmnist": ("psmnist-s5", ["layer.d_state=4", "layer.blocks=1"]),
}


@pytest.mark.parametrize("task", list(CASES))
def test_fast_dev_run(task: str, data_root: Path, tmp_path: Path) -> None:
    experiment, extra = CASES[task]
    cfg = compose_cfg(
        [
            f"experiment={experiment}",
            f"paths.data_dir={data_root}",
            f"paths.output_dir={tmp_path}",
            "trainer.fast_dev_run=true",
            *TINY,
            *extra,
        ]
    )
    result = run(cfg)
    assert result["parameters"] > 0
    assert 0.0 <= result["test"]["test/acc"] <= 1.0
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "summary.md").is_file()
