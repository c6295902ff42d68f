"""The code blocks of README.md and docs/*.md run, so that they cannot drift from the code.

- Every ```python block is executed on its own, in a fresh namespace and an empty working folder: a
  block must be self-contained (its imports, its inputs). To run at a tiny size, a line may end in a
  marker ``# doc-test: VALUE``: the test replaces the value assigned on that line by VALUE, e.g.
  ``batch, length = 8, 1024   # doc-test: 2, 64`` runs with ``2, 64``. The reader sees the real sizes.
- ```bash blocks are checked without running anything long: ``ssm-train`` lines must compose with the
  shipped configs and pass the config checks (experiment names, groups, keys, values); ``ssm-eval``
  lines must parse (a placeholder such as ``<date_time>`` stands for any word); ``make`` targets must
  exist; ``python -m`` modules must import; extras named in ``pip install`` lines must exist in
  pyproject.toml.
- A block preceded by the line ``<!-- doc-test: skip REASON -->`` is skipped with that reason.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"#\s*doc-test:\s*(?P<tiny>.+?)\s*$")
ASSIGNMENT = re.compile(r"^(?P<lhs>[^=#]*[^=#<>!]=)(?!=)\s*(?P<rhs>[^#]*?)\s*(?P<comment>#.*)$")
SKIP = re.compile(r"<!--\s*doc-test:\s*skip\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(lang: str) -> list[Block]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group("lang") != lang:
                continue
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = SKIP.search(before)
            found.append(Block(path, text[: m.start()].count("\n") + 1, lang, m.group("code"),
                               skip.group("reason") or "marked skip" if skip else None))
    return found


def tiny(code: str, where: str) -> str:
    """Apply the ``# doc-test: VALUE`` markers: each replaces the value assigned on its line."""
    out = []
    for line in code.splitlines():
        marker = MARKER.search(line)
        if marker:
            m = ASSIGNMENT.match(line)
            assert m, f"{where}: a doc-test marker must end an assignment line, got {line!r}"
            line = f"{m.group('lhs')} {marker.group('tiny')}"
        out.append(line)
    return "\n".join(out) + "\n"


PYTHON = blocks("python")
BASH = blocks("bash")


def test_the_docs_have_blocks_to_check() -> None:
    assert len(PYTHON) >= 6 and len(BASH) >= 6, (len(PYTHON), len(BASH))


def test_markers_replace_the_assigned_value() -> None:
    code = "import x\nbatch, n = 8, 1024   # doc-test: 2, 16\nshape = (3, 4)  # doc-test: (1, 1)\n"
    assert tiny(code, "t") == "import x\nbatch, n = 2, 16\nshape = (1, 1)\n"
    with pytest.raises(AssertionError, match="must end an assignment"):
        tiny("f(x)  # doc-test: 3\n", "t")


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.skip:
        pytest.skip(block.skip)
    if "ssm.data" in block.code or "ssm.training" in block.code:
        pytest.importorskip("lightning", reason="the block uses the [train] extra")
    monkeypatch.chdir(tmp_path)  # files a block writes land in the test's folder
    code = compile(tiny(block.code, block.where), block.where, "exec")
    exec(code, {"__name__": "__doc_block__"})  # a fresh namespace: the block must define what it uses


# ------------------------------------------------------------------------------------ bash blocks
def commands(block: Block) -> list[list[str]]:
    """The block's commands as argument lists (comments dropped, `&&` chains split)."""
    out = []
    for line in re.sub(r"\\\n", " ", block.code).splitlines():  # join `\`-continued lines
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            out.append(words[:cut])
            words = words[cut + 1:]
    return [c for c in out if c]


def _program(words: list[str]) -> tuple[str, list[str]]:
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # leading VAR=value assignments
        words = words[1:]
    return (words[0], words[1:]) if words else ("", [])


def _check_ssm_train(args: list[str], where: str) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from ssm.training.train import _experiments_help, validate_config

    if any(a in ("--help", "-h", "--cfg", "--info") for a in args):
        return
    multirun = any(a in ("-m", "--multirun") for a in args)
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    if multirun:  # a sweep: check its first point
        overrides = [o.split("=", 1)[0] + "=" + o.split("=", 1)[1].split(",")[0] if "=" in o else o
                     for o in overrides]
    overrides = [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]
    overrides = [re.sub(r"<[\w-]+>", "PLACEHOLDER", o) for o in overrides]  # e.g. runs/x/<date_time>/...
    OmegaConf.register_new_resolver("ssm_experiments", _experiments_help, replace=True)
    try:
        with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
    except Exception as err:  # Hydra raises several types for a bad override
        raise AssertionError(f"{where}: `ssm-train {' '.join(args)}` does not compose: {err}") from err
    validate_config(cfg)


def _check_ssm_eval(args: list[str], where: str, capsys: pytest.CaptureFixture) -> None:
    from ssm.training.evaluate import main

    if "--help" in args or "-h" in args:
        return
    with pytest.raises(SystemExit) as info:  # the documented checkpoints do not exist here
        main(args)
    err = capsys.readouterr().err
    assert info.value.code != 0 and "usage:" not in err, f"{where}: `ssm-eval {' '.join(args)}`: {err}"


def _check_ssm_report(args: list[str], where: str, capsys: pytest.CaptureFixture) -> None:
    from ssm.training import relabel, report

    p, rest = (relabel.parser(), args[1:]) if args[:1] == ["relabel"] else (report.parser(), args)
    if "--help" in rest or "-h" in rest:
        return
    try:
        p.parse_args(rest)
    except SystemExit as err:
        raise AssertionError(f"{where}: `ssm-report {' '.join(args)}`: {capsys.readouterr().err}") from err


def _check_pip(args: list[str], where: str) -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for group in re.findall(r"\[([\w,\-]+)\]", " ".join(args)):
        unknown = set(group.split(",")) - extras
        assert not unknown, f"{where}: pip names extras {sorted(unknown)} that pyproject.toml does not define"


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("block", BASH, ids=[b.where for b in BASH])
def test_bash_block_commands_are_valid(block: Block, capsys: pytest.CaptureFixture) -> None:
    if block.skip:
        pytest.skip(block.skip)
    needs_train = any(_program(c)[0] in ("ssm-train", "ssm-eval") for c in commands(block))
    if needs_train:
        pytest.importorskip("lightning", reason="ssm-train / ssm-eval need the [train] extra")
        pytest.importorskip("hydra", reason="ssm-train / ssm-eval need the [train] extra")
    for words in commands(block):
        program, args = _program(words)
        if program == "ssm-train":
            _check_ssm_train(args, block.where)
        elif program == "ssm-eval":
            _check_ssm_eval(args, block.where, capsys)
        elif program == "ssm-report":
            _check_ssm_report(args, block.where, capsys)
        elif program == "make":
            assert set(a for a in args if "=" not in a) <= _make_targets(), f"{block.where}: {words}"
        elif program.startswith("python") and args[:1] == ["-m"]:
            assert importlib.util.find_spec(args[1]) is not None, f"{block.where}: no module {args[1]}"
        elif program == "pip" or (program.startswith("python") and args[:2] == ["-m", "pip"]):
            _check_pip(args, block.where)


def test_bash_checks_catch_a_bad_command(capsys: pytest.CaptureFixture) -> None:
    """The checks above can fail: an unknown experiment, key or flag is reported."""
    pytest.importorskip("hydra", reason="needs the [train] extra")
    with pytest.raises(AssertionError, match="does not compose"):
        _check_ssm_train(["experiment=lra/listops-s9"], "t")
    with pytest.raises(AssertionError, match="does not compose"):
        _check_ssm_train(["model.no_such_key=1"], "t")
    with pytest.raises(AssertionError, match="usage:"):
        _check_ssm_eval(["CKPT", "--no-such-flag"], "t", capsys)
    with pytest.raises(AssertionError, match="ssm-report relabel"):
        _check_ssm_report(["relabel", "r.json", "--varaint", "x"], "t", capsys)
    with pytest.raises(AssertionError, match="ssm-report --markdwon"):
        _check_ssm_report(["--markdwon", "page.md", "runs"], "t", capsys)
    block = Block(REPO / "t.md", 1, "bash", "ssm-report relabel r.json \\\n    --variant x --set a=1\n", None)
    assert commands(block) == [["ssm-report", "relabel", "r.json", "--variant", "x", "--set", "a=1"]]
