"""Every script in examples/ runs at its tiny size (``--tiny``) and reports success.

The examples are what a user copies first; running them here keeps them working as the package
changes. Each runs in a fresh interpreter, from a folder outside the repository (as a copied script
would), with its temporary files under the test's tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NEEDS_TRAIN = {"evaluate_checkpoint.py"}  # runs ssm-train: needs the [train] extra

# script -> text its output must contain at the tiny size
EXPECT = {
    "train_layer.py": "saved the state_dict",
    "streaming.py": "all agree",
    "custom_backbone.py": "token-by-token vs full forward",
    "evaluate_checkpoint.py": "same predictions",
}


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(EXPECT), f"examples/ holds {sorted(scripts)}; list each in EXPECT"


@pytest.mark.parametrize("script", sorted(EXPECT))
def test_example_runs_at_tiny_size(script: str, tmp_path: Path) -> None:
    if script in NEEDS_TRAIN and importlib.util.find_spec("lightning") is None:
        pytest.skip("needs the [train] extra (lightning)")
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--tiny"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} --tiny exited with {proc.returncode}:\n{out[-3000:]}"
    assert EXPECT[script] in proc.stdout, out[-3000:]
    assert "MISMATCH" not in proc.stdout and "DIFFERENT" not in proc.stdout, proc.stdout[-3000:]
