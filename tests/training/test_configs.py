"""Every experiment config composes and builds its model and data module; bad values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from train_helpers import CONFIG_DIR, compose_cfg

from ssm.training.train import ConfigError, build_datamodule, build_module, experiment_names, validate_config

EXPERIMENTS = experiment_names(str(CONFIG_DIR))
TASKS = [
    "lra/listops",
    "lra/text",
    "lra/retrieval",
    "lra/image",
    "lra/pathfinder",
    "lra/pathx",
    "scifar",
    "smnist",
    "psmnist",
    "sfmnist",
    "psfmnist",
    "listops-cpu",
    "pathfinder-cpu",
]
MODELS = ["s4", "s4d", "dss", "s5", "s4-ptd", "s5-ptd"]


def test_every_task_model_pair_has_an_experiment() -> None:
    expected = {f"{t}-{m}" for t in TASKS for m in MODELS} | {"digits-s4d"}
    assert set(EXPERIMENTS) == expected


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name: str, data_root: Path, tmp_path: Path) -> None:
    text = (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
    assert "Source:" in text, f"{name}.yaml must say which source its hyperparameters follow"
    cfg = compose_cfg([f"experiment={name}", f"paths.data_dir={data_root}", f"paths.output_dir={tmp_path}"])
    assert cfg.name == name
    validate_config(cfg)
    # One block of the configured width, state size and layer options (all blocks are alike; building
    # six full-width blocks per experiment would dominate the suite's time).
    cfg.model.n_layers = 1
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params > 0 and module.ssm_parameter_count() > 0
    layer_target = cfg.layer._target_.rsplit(".", 1)[-1]
    kinds = {type(m).__name__ for m in module.model.modules()}
    assert layer_target in kinds, (
        f"{name}: expected {layer_target} layers in the model, found {sorted(kinds)}"
    )
    assert module.task == ("retrieval" if "retrieval" in name else "classification")


def test_default_experiment_parameter_count_matches_its_architecture(tmp_path: Path) -> None:
    cfg = compose_cfg([f"paths.output_dir={tmp_path}"])
    assert cfg.name == "digits-s4d"
    H, N, n_layers, d_in, classes = cfg.model.d_model, cfg.layer.d_state, cfg.model.n_layers, 1, 10
    s4d = 2 * H + 3 * H * N  # D, log_dt; log_A_real, A_imag (H x N/2); B, C (H x N/2 complex as pairs)
    block = s4d + (H * 2 * H + 2 * H) + 2 * H  # + GLU output projection + LayerNorm
    expected = (d_in * H + H) + n_layers * block + 2 * H + (H * classes + classes)
    assert expected == 84362  # the number stated in configs/experiment/digits-s4d.yaml and docs/training.md
    module = build_module(cfg, build_datamodule(cfg))
    assert sum(p.numel() for p in module.parameters()) == expected
    assert module.ssm_parameter_count() == n_layers * (H + 3 * H * N // 2 + H * N // 2)  # log_dt, A, B


# n_ssm and tie_dropout of the S4 configs the S4-family files follow (state-spaces/s4
# configs/experiment/lra/s4-*.yaml at commit 62a14bb, cifar/s4-cifar.yaml); null n_ssm: one per channel
SOURCE_N_SSM = {"lra/listops": 1, "lra/text": 1, "lra/retrieval": 1, "lra/image": 1, "lra/pathfinder": None,
                "lra/pathx": None, "scifar": 2}
SOURCE_TIE_DROPOUT = {"lra/image", "scifar"}


@pytest.mark.parametrize("task", list(SOURCE_N_SSM))
def test_s4_family_experiments_share_and_tie_as_their_source(task: str, tmp_path: Path) -> None:
    for model in ("s4", "s4d", "s4-ptd", "dss"):
        cfg = compose_cfg([f"experiment={task}-{model}", f"paths.output_dir={tmp_path}"])
        text = (CONFIG_DIR / "experiment" / f"{task}-{model}.yaml").read_text()
        tied = task in SOURCE_TIE_DROPOUT
        assert cfg.model.tie_dropout is tied and cfg.layer.tie_dropout is tied, f"{task}-{model}"
        assert ("tie_dropout as there" in text) is tied
        if model != "dss":  # DSS has no n_ssm option (one Lambda shared by all channels)
            assert cfg.layer.n_ssm == SOURCE_N_SSM[task], f"{task}-{model}"
            assert "Not reproduced: n_ssm" not in text and "n_ssm" in text


def test_other_experiments_keep_one_ssm_per_channel_and_untied_dropout(tmp_path: Path) -> None:
    for name in EXPERIMENTS:
        if any(name.startswith(t + "-") for t in SOURCE_N_SSM) and not name.endswith("s5") \
                and not name.endswith("s5-ptd"):
            continue
        cfg = compose_cfg([f"experiment={name}", f"paths.output_dir={tmp_path}"])
        assert cfg.model.tie_dropout is False and cfg.layer.tie_dropout is False, name
        assert cfg.layer.get("n_ssm") is None, name


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=-1", "optimizer.lr must be a positive number, got -1"),
        ("task=regression", "task must be one of ['classification', 'retrieval'], got 'regression'"),
        ("layer.d_state=3", "layer.d_state must be an even integer >= 2, got 3"),
        ("model.dropout=1.5", "model.dropout must be a number in [0, 1), got 1.5"),
        ("data.batch_size=0", "data.batch_size must be a positive integer, got 0"),
        ("layer.dt_max=0.0001", "layer.dt_max must be a number >= layer.dt_min, got 0.0001"),
        ("scheduler.warmup_steps=2.5", "scheduler.warmup_steps must be an integer >= 0, got 2.5"),
        ("ssm_lr=0", "ssm_lr must be a positive number or null, got 0"),
        ("layer.n_ssm=0", "layer.n_ssm must be a positive integer dividing model.d_model=64, or null, got 0"),
        ("layer.n_ssm=5", "layer.n_ssm must be a positive integer dividing model.d_model=64, or null, got 5"),
        ("model.tie_dropout=maybe", "model.tie_dropout must be true or false, got 'maybe'"),
        ("layer.tie_dropout=1", "layer.tie_dropout must be true or false, got 1"),
    ],
)
def test_bad_value_is_rejected_at_config_time(override: str, message: str, tmp_path: Path) -> None:
    cfg = compose_cfg([override, f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == message


def test_bad_layer_option_names_the_group_and_the_valid_values(tmp_path: Path) -> None:
    cfg = compose_cfg(["layer.init=bogus", f"paths.output_dir={tmp_path}"])
    validate_config(cfg)
    dm = build_datamodule(cfg)
    with pytest.raises(
        ConfigError, match=r"cannot build the model \(groups model and layer\).*init='bogus'.*legs"
    ):
        build_module(cfg, dm)


def test_unknown_key_and_unknown_experiment_fail_in_composition() -> None:
    with pytest.raises(ConfigCompositionException, match="model.d_modle"):
        compose_cfg(["model.d_modle=3"])
    with pytest.raises(Exception, match="experiment/lra/listops-s9"):
        compose_cfg(["experiment=lra/listops-s9"])
