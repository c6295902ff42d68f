"""Every boolean option of the layer and model groups takes only true or false: a string such as "no"
is truthy in Python and would silently switch the option on."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest
from omegaconf import OmegaConf
from train_helpers import CONFIG_DIR, compose_cfg, run_ssm_train

from ssm.training.config import ConfigError, bool_options, validate_config

LAYERS = sorted(p.stem for p in (CONFIG_DIR / "layer").glob("*.yaml"))


def _bool_keys(cfg) -> list[str]:
    """Keys of the layer and model groups whose composed value is a bool (from the YAML, not the code)."""
    return [
        f"{group}.{key}"
        for group in ("layer", "model")
        for key in cfg[group]
        if not str(key).startswith("_") and isinstance(OmegaConf.select(cfg, f"{group}.{key}"), bool)
    ]


@pytest.mark.parametrize("layer", LAYERS)
def test_every_boolean_key_of_the_configs_refuses_other_values(layer: str, tmp_path: Path) -> None:
    base = [f"layer={layer}", f"paths.output_dir={tmp_path}"]
    cfg = compose_cfg(base)
    validate_config(cfg)  # the shipped values pass
    keys = _bool_keys(cfg)
    assert {"layer.bidirectional", "layer.tie_dropout", "model.prenorm", "model.glu"} <= set(keys)
    for key in keys:
        for value, shown in (("no", "'no'"), ("1", "1"), ("null", "None")):
            with pytest.raises(ConfigError) as err:
                validate_config(compose_cfg([*base, f"{key}={value}"]))
            assert str(err.value) == f"{key} must be true or false, got {shown}"


@pytest.mark.parametrize("layer", LAYERS)
def test_boolean_options_come_from_the_targets_signature(layer: str, tmp_path: Path) -> None:
    cfg = compose_cfg([f"layer={layer}", f"paths.output_dir={tmp_path}"])
    # Options the YAML files do not list are checked too: the signature, not a list, decides.
    assert {"bidirectional", "transposed", "tie_dropout"} <= set(bool_options(cfg.layer._target_))
    with pytest.raises(ConfigError, match=r"^layer.transposed must be true or false, got 'yes'$"):
        validate_config(compose_cfg([f"layer={layer}", "+layer.transposed=yes",
                                     f"paths.output_dir={tmp_path}"]))
    assert set(bool_options(cfg.model._target_)) >= {"prenorm", "glu", "tie_dropout", "embedding"}


def _example(width: int, flag: bool, maybe: Optional[bool] = None, untyped=False, count: int = 0) -> None:
    """A target with every kind of parameter the check must tell apart."""


def test_bool_options_reads_annotations_and_defaults() -> None:
    kinds = bool_options(f"{__name__}._example")
    assert kinds == {"flag": "bool", "maybe": "optional", "untyped": "bool"}
    assert bool_options("ssm.NoSuchLayer") == {}  # building reports a bad target


def test_command_refuses_bidirectional_no(tmp_path: Path) -> None:
    proc = run_ssm_train(["layer.bidirectional=no", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    message = "ssm-train: config error: layer.bidirectional must be true or false, got 'no'"
    assert proc.stderr.strip() == message
