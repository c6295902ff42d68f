"""benchmarks/robustness.py on two tiny untrained models: ``run`` writes the robustness JSONs, ``report``
writes docs/robustness.md (also with no results)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("lightning", reason="the robustness tool needs the [train] extra (lightning)")
pytest.importorskip("hydra", reason="the robustness tool needs the [train] extra (hydra-core)")
pytest.importorskip("matplotlib", reason="the robustness page draws plots (matplotlib)")
pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")

import lightning  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from benchmarks import robustness  # noqa: E402
from ssm.training.train import build_datamodule, build_module  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = ["model.d_model=8", "model.n_layers=1", "layer.d_state=16", "data.batch_size=50", "data.num_workers=0",
        "trainer.accelerator=cpu"]
KEYS = {"family", "seed", "task", "checkpoint", "subset", "results"}


def _module(layer: str, out: Path, seed: int = 0):
    """An untrained digits model with the given layer config (s4d, s4-ptd)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=digits-s4d", f"layer={layer}",
                                          f"paths.output_dir={out}", f"seed={seed}", *TINY])
    torch.manual_seed(seed)
    return build_module(cfg, build_datamodule(cfg))


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """Two checkpoints in the format ssm-eval reads (ssm-train's: the run config beside the Lightning
    module's state_dict), each with a result JSON as ssm-report writes them."""
    root = tmp_path_factory.mktemp("results")
    for family in ("s4d", "s4-ptd"):
        module = _module(family, root / "run")
        folder = root / "digits"
        folder.mkdir(exist_ok=True)
        torch.save({"ssm_config": module.run_config, "state_dict": module.state_dict(),
                    "pytorch-lightning_version": lightning.__version__}, folder / f"{family}_seed0.ckpt")
        (folder / f"{family}_seed0.json").write_text(json.dumps(
            {"task": "digits", "family": family, "variant": "default", "seed": 0, "status": "finished",
             "test_acc": None, "checkpoint": f"{family}_seed0.ckpt"}))
    return root


def test_run_and_report(results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "robustness"
    assert robustness.main(["run", str(results_dir), "--out", str(out), "--subset", "120"]) == 0
    files = sorted(out.rglob("*.json"))
    names = [f.relative_to(out).as_posix() for f in files]
    assert names == ["digits/s4-ptd_seed0.json", "digits/s4d_seed0.json"]
    for f in files:
        rec = json.loads(f.read_text())
        assert KEYS <= rec.keys()
        assert rec["subset"] == {"split": "test", "size": 120, "of": 359, "seed": 0}
        assert rec["state_size"] == 16 and abs(rec["omega_star"]["omega"] - 80.97) < 0.01
        assert len(rec["results"]) == 15
        assert all(r.keys() == {"amplitude", "omega", "acc"} for r in rec["results"])
        assert {r["omega"] for r in rec["results"]} == {325.4, rec["omega_star"]["omega"], 5.0}
        assert {r["amplitude"] for r in rec["results"]} == {0.0, 0.01, 0.03, 0.1, 0.3}
        assert all(r["acc"] == rec["clean_acc"] for r in rec["results"] if r["amplitude"] == 0)
    page = tmp_path / "docs" / "robustness.md"
    assert robustness.main(["report", "--results", str(out), "--page", str(page), "--sizes", "16"]) == 0
    text = page.read_text()
    assert "## Transfer functions" in text and "| S4D-LegS | 16 | off |" in text
    assert "### digits" in text and "| S4D-LegS | 1 | 325.4 |" in text and "omega* = 81.0" in text
    assert "digits, S4D-LegS vs S4-PTD, a = 0.1, omega = 325.4: **" in text
    assert "(one seed, no spread)" in text
    assert "has not run yet" not in text
    pngs = sorted(p.name for p in (page.parent / "robustness").glob("*.png"))
    assert pngs == ["digits_s4-ptd.png", "digits_s4d.png", "transfer.png"]


def test_amplitude_zero_must_reproduce_the_clean_accuracy(results_dir: Path, tmp_path: Path,
                                                          monkeypatch) -> None:
    from ssm.training import noise

    class Broken(noise.FourierNoise):  # a hook that perturbs even at amplitude 0
        def __init__(self, model, amplitude, omega, seed=0):
            super().__init__(model, amplitude if amplitude > 0 else 50.0, omega, seed)

    monkeypatch.setattr(noise, "FourierNoise", Broken)
    with pytest.raises(AssertionError, match="differs from the clean accuracy"):
        robustness.main(["run", str(results_dir / "digits" / "s4d_seed0.json"), "--out", str(tmp_path),
                         "--subset", "60", "--amplitudes", "0", "--omegas", "5"])


def test_report_without_results(tmp_path: Path) -> None:
    page = tmp_path / "robustness.md"
    robustness.main(["report", "--results", str(tmp_path / "none"), "--page", str(page), "--sizes", "16"])
    text = page.read_text()
    assert "The experiment has not run yet" in text and "| S4-PTD | 16 | n/a |" in text
    assert "No verdict yet" in text and "Rule (fixed before any result existed)" in text
    assert "## Discussion" not in text
    # a written discussion beside the results becomes the last section
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "discussion.md").write_text("What explains it.\n")
    robustness.main(["report", "--results", str(tmp_path / "none"), "--page", str(page), "--sizes", "16"])
    assert page.read_text().rstrip().endswith("## Discussion\n\nWhat explains it.")


def test_weights_only_file(tmp_path: Path) -> None:
    import ssm

    if not hasattr(ssm.SequenceModel, "from_checkpoint"):
        pytest.skip("this ssm has no SequenceModel.from_checkpoint")
    module = _module("s4d", tmp_path / "run", seed=3)
    module.model.save_weights(tmp_path / "w.pt")
    (tmp_path / "w.json").write_text(json.dumps({"task": "digits", "family": "s4d", "seed": 3}))
    out = tmp_path / "out"
    assert robustness.main(["run", str(tmp_path / "w.json"), "--out", str(out), "--subset", "50",
                            "--amplitudes", "0", "0.1", "--omegas", "325.4"]) == 0
    rec = json.loads((out / "digits" / "s4d_seed3.json").read_text())
    assert rec["subset"]["of"] == 359 and len(rec["results"]) == 2


def _rec(family: str, seed: int, drop: float, variant: str = "default", clean: float = 0.85) -> dict:
    """A robustness record whose accuracy falls by ``drop`` at a = 0.1, omega = 325.4 (and nowhere else)."""
    results = [{"amplitude": a, "omega": w, "acc": clean - (drop if (a, w) == (0.1, 325.4) else 0.0)}
               for w in (325.4, 1303.3, 5.0) for a in (0.0, 0.01, 0.03, 0.1, 0.3)]
    return {"task": "t", "family": family, "variant": variant, "seed": seed, "results": results,
            "omega_star": {"omega": 1303.3}}


def test_verdict_follows_the_rule() -> None:
    from benchmarks import _robustness_page as page

    # S4D-LegS loses 10 and 12 points (sd sqrt 2), S4-PTD 1 and 1: Delta = 10, s = 1 -> reproduced.
    word, numbers = page.verdict([_rec("s4d", 0, 0.10), _rec("s4d", 1, 0.12)],
                                 [_rec("s4-ptd", 0, 0.01), _rec("s4-ptd", 1, 0.01)])
    assert word == "reproduced" and "Delta = 10.0" in numbers and "s = 1.0" in numbers
    # 3 points more, above max(s, 1 point) but below 5: partly.
    word, _ = page.verdict([_rec("s4d", 0, 0.04), _rec("s4d", 1, 0.04)],
                           [_rec("s4-ptd", 0, 0.01), _rec("s4-ptd", 1, 0.01)])
    assert word == "partly reproduced"
    # Drops -5 and 13 points (mean 4, s = 9) against 0: the difference is within the spread.
    word, _ = page.verdict([_rec("s4d", 0, -0.05), _rec("s4d", 1, 0.13)],
                           [_rec("s4-ptd", 0, 0.0), _rec("s4-ptd", 1, 0.0)])
    assert word == "not reproduced"
    # One seed per family is marked.
    word, _ = page.verdict([_rec("s4d", 0, 0.10)], [_rec("s4-ptd", 0, 0.0)])
    assert word == "reproduced (one seed, no spread)"
    # At omega* nothing drops in these records.
    word, _ = page.verdict([_rec("s4d", 0, 0.10)], [_rec("s4-ptd", 0, 0.0)], omega=None)
    assert word.startswith("not reproduced")


def test_conclusion_judges_each_shared_variant_and_bolds_only_the_default() -> None:
    from benchmarks import _robustness_page as page

    recs = [_rec("s4d", 0, 0.10), _rec("s4-ptd", 0, 0.0), _rec("s4d", 0, 0.0, "old"),
            _rec("s4-ptd", 0, 0.0, "old"), _rec("s5", 0, 0.0, "old")]  # no S5-PTD: S5 not judged
    lines = [x for x in page.conclusion(page._groups(recs)) if x.startswith("- ")]
    assert len(lines) == 4, lines
    assert lines[0].startswith("- t, S4D-LegS vs S4-PTD")
    assert "**reproduced (one seed, no spread)**" in lines[0]
    assert all(x.startswith("- t [old], S4D-LegS vs S4-PTD") and "**" not in x for x in lines[2:])
