"""The configs and data files ship with the package; ssm.training imports with torch alone."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed() -> None:
    folders = {
        p.parent.relative_to(REPO).as_posix().replace("/", ".")
        for p in (REPO / "ssm").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = folders - set(SETUPTOOLS["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert SETUPTOOLS["package-dir"]["ssm.configs"] == "configs"


def _shipped(package: str, root: Path, path: Path) -> bool:
    rel = path.relative_to(root).as_posix()
    return any(fnmatch.fnmatch(rel, pat) for pat in SETUPTOOLS.get("package-data", {}).get(package, []))


def test_every_data_file_is_shipped() -> None:
    configs = REPO / "configs"
    assert (configs / "train.yaml").is_file()
    assert (configs / "__init__.py").is_file(), "Hydra's pkg:// config source needs configs/__init__.py"
    for f in configs.rglob("*"):
        if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts:
            assert _shipped("ssm.configs", configs, f), f"{f} is not in ssm.configs package-data"
    for f in (REPO / "ssm").rglob("*"):
        if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts:
            package = f.parent
            while not any(package.glob("*.py")):
                package = package.parent
            name = package.relative_to(REPO).as_posix().replace("/", ".")
            assert _shipped(name, package, f), f"{f} is not in the package-data of {name}"


def test_training_package_imports_without_lightning() -> None:
    code = (
        "import sys, ssm, ssm.training, ssm.training.optim, ssm.training.schedule; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'hydra', "
        "'omegaconf', 'torchmetrics')]; assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
