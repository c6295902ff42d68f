"""The source distribution holds what a source build and a contributor need (the CUDA sources, docs,
tests, configs, examples, benchmarks); the wheel built from that sdist holds the configs and the PTD
data. Built with setuptools' PEP 517 hooks, as ``python -m build --no-isolation`` does: the sdist from
the checkout, then the wheel from the unpacked sdist."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("setuptools", reason="building the distributions needs setuptools")

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "SSM_BUILD_EXT": "0"}  # the pure-Python build (CUDA sources still ship)


def _hook(hook: str, source: Path, out: Path) -> Path:
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=source, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{hook} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return out / proc.stdout.strip().splitlines()[-1]


def _clean_copy(dest: Path) -> Path:
    """The files of a fresh clone (tracked or new, not ignored), copied to ``dest``. A build in the
    checkout itself would also pick up the file list of an earlier build (``*.egg-info/SOURCES.txt``)."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                          capture_output=True, text=True) if (REPO / ".git").exists() else None
    if proc is not None and proc.returncode == 0:
        for rel in filter(None, proc.stdout.split("\0")):
            if (REPO / rel).is_file():  # a deleted tracked file is still listed
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)
    else:  # not a git checkout (e.g. an unpacked sdist)
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "runs", "data", "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache"))
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """(files in the sdist, relative to its top folder; files in the wheel)."""
    tmp = tmp_path_factory.mktemp("dist")
    sdist = _hook("build_sdist", _clean_copy(tmp / "checkout"), tmp)
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        tar.extractall(tmp / "unpacked", filter="data")
    top = names[0].split("/")[0]
    sdist_files = {n.split("/", 1)[1] for n in names if "/" in n and not n.endswith("/")}
    wheel = _hook("build_wheel", tmp / "unpacked" / top, tmp)
    with zipfile.ZipFile(wheel) as whl:
        wheel_files = set(whl.namelist())
    return sdist_files, wheel_files


def _repo_files(folder: str, *suffixes: str) -> set[str]:
    return {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and (not suffixes or p.suffix in suffixes)
            and not _ignored(p)}


def _ignored(path: Path) -> bool:
    if not (REPO / ".git").exists():
        return False
    return subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO).returncode == 0


def test_sdist_has_the_cuda_sources(dists) -> None:
    sdist, _ = dists
    sources = _repo_files("csrc", ".cu", ".cuh", ".cpp", ".h")
    assert any(s.endswith(".cu") for s in sources) and any(s.endswith(".cpp") for s in sources)
    missing = sources - sdist
    assert not missing, f"SSM_BUILD_EXT=1 from the sdist would miss {sorted(missing)} (MANIFEST.in)"
    assert {"setup.py", "pyproject.toml", "MANIFEST.in", "csrc/README.md"} <= sdist


@pytest.mark.parametrize("folder,suffixes", [("docs", (".md",)), ("tests", (".py",)), ("examples", (".py",)),
                                             ("benchmarks", (".py", ".md", ".sh")), ("configs", (".yaml",))])
def test_sdist_has_docs_tests_examples_benchmarks_configs(dists, folder: str, suffixes) -> None:
    sdist, _ = dists
    wanted = _repo_files(folder, *suffixes)
    assert wanted, folder
    assert not wanted - sdist, f"missing from the sdist: {sorted(wanted - sdist)}"
    assert not [n for n in sdist if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_has_the_configs_and_ptd_data(dists) -> None:
    _, wheel = dists
    configs = {f"ssm/{p}" for p in _repo_files("configs", ".yaml")}  # configs/ ships as ssm.configs
    assert "ssm/configs/train.yaml" in configs and not configs - wheel, sorted(configs - wheel)
    ptd = {f"ssm/init/data/{p.name}" for p in (REPO / "ssm" / "init" / "data").glob("*.npz")}
    assert ptd and not ptd - wheel, sorted(ptd - wheel)
    assert "ssm/configs/__init__.py" in wheel


def test_wheel_holds_only_the_package(dists) -> None:
    _, wheel = dists
    tops = {n.split("/")[0] for n in wheel}
    assert tops == {"ssm", next(t for t in tops if t.endswith(".dist-info"))}, tops
