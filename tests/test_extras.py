"""Without the [train] extra the commands say in one line which extra to install, and the data
generators work without Lightning. The missing packages are simulated in a fresh interpreter by an
import hook that refuses them, exactly as Python refuses a package that is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
TRAIN_ONLY = ("lightning", "pytorch_lightning", "lightning_fabric", "lightning_utilities", "hydra",
              "omegaconf", "torchmetrics", "tensorboard", "tqdm", "matplotlib", "sklearn")
INSTALL = 'pip install "structured-ssm[train]" (from a clone: pip install -e ".[train]")'

BLOCKER = """
import sys
BLOCKED = set(sys.argv[1].split(","))
class RefuseMissing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, RefuseMissing())
sys.argv = sys.argv[2:]
"""


def _run(blocked: tuple[str, ...], code: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", BLOCKER + code, ",".join(blocked), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_blocker_refuses_like_a_missing_package(tmp_path: Path) -> None:
    proc = _run(("lightning",), "import lightning.pytorch", ["x"], tmp_path)
    assert proc.returncode == 1 and "ModuleNotFoundError: No module named 'lightning" in proc.stderr


@pytest.mark.parametrize("prog, args", [("ssm-train", []), ("ssm-eval", ["some.ckpt"])])
@pytest.mark.parametrize("missing", ["lightning", "hydra", "torchmetrics"])
def test_command_without_the_extra_names_it_in_one_line(prog: str, args: list[str], missing: str,
                                                         tmp_path: Path) -> None:
    module, func = SCRIPTS[prog].split(":")  # the function the installed console script calls
    code = f"import sys; from {module} import {func}; sys.exit({func}())"
    proc = _run((missing,), code, [prog, *args], tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"{prog}: needs the [train] extra (module '{missing}' is not installed); install it with {INSTALL}"
    ], proc.stderr[-3000:]


def test_generators_need_no_training_packages(tmp_path: Path) -> None:
    code = "import runpy; runpy.run_module('ssm.data.generate', run_name='__main__', alter_sys=True)"
    listops = ["python -m ssm.data.generate", "listops", "--out", str(tmp_path / "lo"), "--n", "8",
               "--n-val", "2", "--n-test", "2", "--min-length", "5", "--max-length", "40", "--max-depth", "3",
               "--workers", "1"]
    proc = _run(TRAIN_ONLY, code, listops, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pathfinder = ["python -m ssm.data.generate", "pathfinder", "--out", str(tmp_path / "pf"), "--n", "2",
                  "--workers", "1"]
    proc = _run(TRAIN_ONLY, code, pathfinder, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # What they wrote is what the loaders read.
    from ssm.data.lra.listops import read_listops_tsv
    from ssm.data.lra.pathfinder import read_pathfinder_metadata

    assert len(read_listops_tsv(tmp_path / "lo" / "basic_train.tsv")[0]) == 8
    assert len(read_pathfinder_metadata(tmp_path / "pf" / "pathfinder32" / "curv_contour_length_14")[0]) == 2


def test_pathfinder_generator_without_pillow_names_the_extra(tmp_path: Path) -> None:
    code = "import runpy; runpy.run_module('ssm.data.generate', run_name='__main__', alter_sys=True)"
    argv = ["python -m ssm.data.generate", "pathfinder", "--out", str(tmp_path / "pf"), "--n", "2"]
    proc = _run(("PIL", *TRAIN_ONLY), code, argv, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "python -m ssm.data.generate pathfinder: needs the [train] extra (module 'PIL' is not installed); "
        f"install it with {INSTALL}"
    ]
    assert not (tmp_path / "pf").exists()


def test_importing_the_data_package_needs_no_lightning(tmp_path: Path) -> None:
    code = "import ssm.data; from ssm.data import MalformedFileError, DatasetNotFoundError; print('ok')"
    proc = _run(TRAIN_ONLY, code, ["x"], tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
