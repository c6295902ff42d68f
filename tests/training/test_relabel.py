"""``ssm-report relabel``: a result changes variant, command and file names, and nothing else."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from ssm.training.relabel import relabel, rewrite_command
from ssm.training.report import collect, main as report_main

CMD = ("ssm-train experiment=psfmnist-dss seed=0 callbacks.progress_bar=null "
       "trainer.enable_progress_bar=false ssm_lr=0.003")


def _result(folder: Path, variant: str = "default", command: str = CMD, weights: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = ("dss" if variant == "default" else f"dss_{variant}") + "_seed0_2026-12-06_21-00-33"
    res = {"task": "psfmnist", "family": "dss", "variant": variant, "tier": "cpu", "seed": 0,
           "status": "finished", "test_acc": 0.8002, "best_val_acc": 0.806, "command": command,
           "git_commit": "8daeffb", "date": "2026-12-06T21:00:34+00:00",
           "run_dir": "/runs/psfmnist-dss/2026-12-06_21-00-33", "curve": [{"step": 168, "val/acc": 0.35}]}
    if weights:
        (folder / f"{stem}.pt").write_bytes(b"weights")
        res["checkpoint"] = f"{stem}.pt"
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    return path


def test_old_default_becomes_a_variant_with_its_override(tmp_path: Path) -> None:
    old = _result(tmp_path, command=CMD.replace(" ssm_lr=0.003", ""))
    before = json.loads(old.read_text())
    new = relabel(old, "ssm-lr-0.001", ["ssm_lr=0.001"], note="trained at the shared rate")
    assert new.name == "dss_ssm-lr-0.001_seed0_2026-12-06_21-00-33.json" and not old.exists()
    r = json.loads(new.read_text())
    assert r["command"] == ("ssm-train experiment=psfmnist-dss ssm_lr=0.001 variant=ssm-lr-0.001 seed=0 "
                            "callbacks.progress_bar=null trainer.enable_progress_bar=false")
    assert (r["variant"], r["recipe_note"]) == ("ssm-lr-0.001", "trained at the shared rate")
    # the weights moved with the JSON; every other field is as it was
    assert r["checkpoint"] == "dss_ssm-lr-0.001_seed0_2026-12-06_21-00-33.pt"
    assert (tmp_path / r["checkpoint"]).read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new.name, r["checkpoint"]])
    changed = {"variant", "command", "checkpoint", "recipe_note"}
    assert {k: v for k, v in r.items() if k not in changed} == {k: v for k, v in before.items() if k not in changed}
    # the report reads it under its new label
    assert [x["variant"] for x in collect([tmp_path])] == ["ssm-lr-0.001"]


def test_probe_becomes_default_keeping_its_override(tmp_path: Path) -> None:
    probe = _result(tmp_path, "ssm-lr-0.003", CMD.replace(" ssm_lr=0.003", " ssm_lr=0.003 variant=ssm-lr-0.003"))
    new = relabel(probe, "default", note="the probe whose setting became the default")
    r = json.loads(new.read_text())
    assert new.name == "dss_seed0_2026-12-06_21-00-33.json" and r["checkpoint"] == "dss_seed0_2026-12-06_21-00-33.pt"
    assert r["command"] == CMD and r["variant"] == "default"


def test_an_override_replaces_the_same_key_and_a_note_is_kept_when_not_given(tmp_path: Path) -> None:
    path = _result(tmp_path, weights=False)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(dict(data, recipe_note="earlier note")))
    new = relabel(path, "b32", ["data.batch_size=32", "++ssm_lr=0.001"])
    r = json.loads(new.read_text())
    words = shlex.split(r["command"])
    assert words[1:5] == ["experiment=psfmnist-dss", "data.batch_size=32", "++ssm_lr=0.001", "variant=b32"]
    assert "ssm_lr=0.003" not in words and r["recipe_note"] == "earlier note" and "checkpoint" not in r
    # a second relabel keeps the history of notes
    r = json.loads(relabel(new, "b64", ["data.batch_size=64"], note="moved again").read_text())
    assert r["recipe_note"] == "earlier note; later moved again"
    assert shlex.split(r["command"])[1:5] == ["experiment=psfmnist-dss", "data.batch_size=64", "variant=b64",
                                              "++ssm_lr=0.001"]


def test_the_cli_relabels_through_ssm_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    old = _result(tmp_path)
    assert report_main(["relabel", str(old), "--variant", "x-1", "--set", "ssm_lr=0.001", "--note", "n"]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out.name.startswith("dss_x-1_seed0") and json.loads(out.read_text())["recipe_note"] == "n"


@pytest.mark.parametrize("args, message", [
    (["--variant", "a b"], "variant: expected"),
    (["--variant", "x", "--set", "ssm_lr"], "overrides: expected"),
    (["--variant", "x", "--set", "variant=y"], "overrides: expected"),
    (["--variant", "x", "--set", "experiment=sfmnist-s4"], "overrides: expected"),
])
def test_the_cli_refuses_bad_arguments_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    old = _result(tmp_path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as info:
        report_main(["relabel", str(old), *args])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_refuses_to_overwrite_missing_weights_and_non_results(tmp_path: Path) -> None:
    a = _result(tmp_path / "a")
    _result(tmp_path / "a", "x")  # the target name is taken
    with pytest.raises(FileExistsError, match="already exists"):
        relabel(a, "x")
    assert a.exists() and (tmp_path / "a" / json.loads(a.read_text())["checkpoint"]).exists()
    b = _result(tmp_path / "b")
    (tmp_path / "b" / json.loads(b.read_text())["checkpoint"]).unlink()
    with pytest.raises(FileNotFoundError, match="not found beside it"):
        relabel(b, "x")
    assert b.exists()
    (tmp_path / "summary.json").write_text(json.dumps({"name": "sfmnist-s4"}))
    with pytest.raises(ValueError, match="not a result JSON"):
        relabel(tmp_path / "summary.json", "x")
    with pytest.raises(FileNotFoundError, match="no result file"):
        relabel(tmp_path / "none.json", "x")


_key = st.sampled_from(["seed", "ssm_lr", "data.batch_size", "layer.d_state", "model.dropout", "a_b"])
_value = st.text(alphabet="ab09._-,[]", min_size=1, max_size=8)


@given(st.lists(st.tuples(_key, _value), max_size=4), st.lists(st.tuples(_key, _value), max_size=4),
       st.sampled_from(["default", "v", "b-clip-2"]))
def test_rewritten_command_sets_each_key_once_to_the_given_value(
        before: list[tuple[str, str]], new: list[tuple[str, str]], variant: str) -> None:
    new = list(dict(new).items())  # one override per key
    cmd = shlex.join(["ssm-train", "experiment=sfmnist-s4", "variant=old"] + [f"{k}={v}" for k, v in before])
    words = shlex.split(rewrite_command(cmd, variant, [f"{k}={v}" for k, v in new]))
    keys = [w.split("=", 1)[0] for w in words[1:]]
    assert words[:2] == ["ssm-train", "experiment=sfmnist-s4"]
    for k, v in new:
        assert keys.count(k) == 1 and f"{k}={v}" in words
    assert keys.count("variant") == (variant != "default") and ("variant=old" not in words)
    # keys not overridden keep their tokens, in order
    untouched = [f"{k}={v}" for k, v in before if k not in dict(new)]
    assert [w for w in words if w in untouched] == untouched
