"""Where ``ssm-train`` finds its configs, the experiments they define, and the check of a composed run.

:func:`validate_config` looks at the values a run depends on before anything is built and raises
:class:`ConfigError` naming the key, what was expected and what came; options a model or layer
declares as bool are read from their signatures (:func:`bool_options`), so a string such as "no"
never reaches a constructor as a truthy value.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import inspect
import math
import types
import typing
from pathlib import Path
from typing import Any, Optional

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from ssm.training.lit_module import TASKS

__all__ = ["ConfigError", "config_path", "experiment_names", "bool_options", "validate_config"]


class ConfigError(ValueError):
    """A config value or override that cannot work, with the key, what was expected and what came."""


def config_path() -> str:
    """Where Hydra finds the configs: the installed ``ssm.configs`` package, else the checkout's folder."""
    if importlib.util.find_spec("ssm.configs") is not None:
        return "pkg://ssm.configs"
    local = Path(__file__).resolve().parents[2] / "configs"
    if (local / "train.yaml").is_file():
        return str(local)
    raise RuntimeError(
        "cannot find the ssm configs: neither the package ssm.configs (installed with ssm) "
        f"nor {local}/train.yaml exists; reinstall, e.g. `pip install -e '.[train]'` in a clone of "
        "structured-ssm (README, Install)"
    )


def experiment_names(path: Optional[str] = None) -> list[str]:
    """Names accepted by ``experiment=NAME`` (e.g. ``lra/listops-s4``), sorted."""
    path = path or config_path()
    if path.startswith("pkg://"):
        root: Any = importlib.resources.files(path[len("pkg://") :]).joinpath("experiment")
    else:
        root = Path(path) / "experiment"
    names: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".yaml"):
                names.append(prefix + child.name[: -len(".yaml")])

    walk(root, "")
    return sorted(names)


def _experiments_help() -> str:
    models = ("s4-ptd", "s5-ptd", "s4d", "s4", "s5", "dss")
    by_task: dict[str, list[str]] = {}
    for name in experiment_names():
        task = next((name[: -len(m) - 1] for m in models if name.endswith("-" + m)), name)
        by_task.setdefault(task, []).append(name)
    return "\n".join("  " + "  ".join(names) for _, names in sorted(by_task.items()))


# ------------------------------------------------------------------------------------------ validation
def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _check(cfg: DictConfig, key: str, ok: Any, expected: str, required: bool = True) -> None:
    value = _get(cfg, key)
    if value is None and not required:
        return
    try:
        good = value is not None and ok(value)
    except (TypeError, ValueError):
        good = False
    if not good:
        raise ConfigError(f"{key} must be {expected}, got {value!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bool_kind(annotation: Any, default: Any) -> Optional[str]:
    """"bool" or "optional" for a parameter taking a bool (or bool or None), else None."""
    if isinstance(annotation, str):  # an annotation get_type_hints could not evaluate
        text = annotation.replace(" ", "")
        if text == "bool":
            return "bool"
        return "optional" if text in ("Optional[bool]", "bool|None", "None|bool") else None
    if annotation is bool:
        return "bool"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return "optional" if set(typing.get_args(annotation)) == {bool, type(None)} else None
    if annotation is inspect.Parameter.empty and isinstance(default, bool):
        return "bool"
    return None


def bool_options(target: str) -> dict[str, str]:
    """The keyword arguments of ``target`` (a ``_target_`` path) that take a bool: name -> "bool" or
    "optional" (bool or None), read from its signature's annotations and defaults. Empty when the
    target cannot be located (building it then reports that)."""
    try:
        obj = hydra.utils.get_object(target)
        signature = inspect.signature(obj)
    except (ImportError, AttributeError, ValueError, TypeError):
        return {}
    try:
        hints = typing.get_type_hints(obj.__init__ if isinstance(obj, type) else obj)
    except (NameError, TypeError, AttributeError):
        hints = {}
    kinds = {}
    for name, param in signature.parameters.items():
        kind = _bool_kind(hints.get(name, param.annotation), param.default)
        if kind is not None:
            kinds[name] = kind
    return kinds


def validate_config(cfg: DictConfig) -> None:
    """Check the values a run depends on before anything is built; raise :class:`ConfigError`."""
    for group in ("data", "layer", "model", "optimizer", "trainer"):
        if not isinstance(_get(cfg, group), DictConfig) or "_target_" not in cfg[group]:
            raise ConfigError(
                f"config group '{group}' is missing or has no _target_; pick one with {group}=NAME"
            )
    _check(cfg, "task", lambda v: v in TASKS, f"one of {list(TASKS)}")
    _check(cfg, "seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    _check(cfg, "ssm_lr", lambda v: _is_num(v) and v > 0, "a positive number or null", required=False)
    _check(
        cfg, "torch_threads", lambda v: _is_int(v) and v >= 1, "a positive integer or null", required=False
    )
    _check(cfg, "ssm_weight_decay", lambda v: _is_num(v) and v >= 0, "a number >= 0")
    _check(cfg, "optimizer.lr", lambda v: _is_num(v) and v > 0, "a positive number")
    _check(cfg, "optimizer.weight_decay", lambda v: _is_num(v) and v >= 0, "a number >= 0", required=False)
    _check(
        cfg, "optimizer.regular_ssm_params",
        lambda v: isinstance(v, ListConfig) and all(isinstance(n, str) and n for n in v),
        "a list of SSM parameter names (e.g. [B]) or null", required=False,
    )
    if not cfg.optimizer.get("_partial_", False):
        raise ConfigError("optimizer must set `_partial_: true` (it is called with the parameter groups)")
    if not cfg.layer.get("_partial_", False):
        raise ConfigError("layer must set `_partial_: true` (the model calls it with d_model)")
    if _get(cfg, "scheduler") is not None:
        if not cfg.scheduler.get("_partial_", False):
            raise ConfigError("scheduler must set `_partial_: true` (it is called with the optimizer)")
        _check(
            cfg, "scheduler.warmup_steps", lambda v: _is_int(v) and v >= 0, "an integer >= 0", required=False
        )
        _check(
            cfg, "scheduler.total_steps", lambda v: _is_int(v) and v >= 1, "a positive integer or null",
            required=False,
        )
        warmup, total = _get(cfg, "scheduler.warmup_steps"), _get(cfg, "scheduler.total_steps")
        if _is_int(warmup) and _is_int(total) and warmup >= total:
            raise ConfigError(
                f"scheduler.warmup_steps must be below scheduler.total_steps={total} (the learning rate "
                f"would never reach its peak), got {warmup}; or set scheduler.total_steps=null to fit "
                "the schedule to the run"
            )
        _check(
            cfg,
            "scheduler.min_lr_ratio",
            lambda v: _is_num(v) and 0 <= v <= 1,
            "a number in [0, 1]",
            required=False,
        )
    _check(cfg, "model.d_model", lambda v: _is_int(v) and v >= 1, "a positive integer")
    _check(cfg, "model.n_layers", lambda v: _is_int(v) and v >= 1, "a positive integer")
    _check(cfg, "model.dropout", lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)", required=False)
    _check(
        cfg,
        "layer.d_state",
        lambda v: _is_int(v) and v >= 2 and v % 2 == 0,
        "an even integer >= 2",
        required=False,
    )
    d_model = cfg.model.d_model
    _check(
        cfg,
        "layer.n_ssm",
        lambda v: _is_int(v) and v >= 1 and d_model % v == 0,
        f"a positive integer dividing model.d_model={d_model}, or null",
        required=False,
    )
    # Every option the model or layer declares as a bool: a string such as "no" would be truthy. The
    # model first: layer options may follow model ones by interpolation (layer.tie_dropout).
    for group in ("model", "layer"):
        kinds = bool_options(str(cfg[group]._target_))
        for key in cfg[group]:
            if str(key) in kinds:
                optional = kinds[str(key)] == "optional"
                expected = "true, false or null" if optional else "true or false"
                _check(cfg, f"{group}.{key}", lambda v: isinstance(v, bool), expected, required=not optional)
    _check(cfg, "layer.dt_min", lambda v: _is_num(v) and v > 0, "a positive number", required=False)
    _check(
        cfg,
        "layer.dt_max",
        lambda v: _is_num(v) and v >= cfg.layer.dt_min,
        "a number >= layer.dt_min",
        required=False,
    )
    _check(cfg, "data.batch_size", lambda v: _is_int(v) and v >= 1, "a positive integer")
    _check(
        cfg,
        "trainer.max_epochs",
        lambda v: _is_int(v) and (v >= 1 or v == -1),
        "a positive integer or -1",
        required=False,
    )
    _check(
        cfg,
        "trainer.gradient_clip_val",
        lambda v: _is_num(v) and v >= 0,
        "a number >= 0 or null",
        required=False,
    )
    loggers = _get(cfg, "logger")
    if _get(cfg, "callbacks.lr_monitor") is not None and not (
        loggers and any(v is not None for v in loggers.values())
    ):
        raise ConfigError(
            "callbacks.lr_monitor needs a logger; add one (logger=default) or drop the monitor "
            "with callbacks.lr_monitor=null"
        )
    if cfg.task == "retrieval" and _get(cfg, "model.pool") is None:
        raise ConfigError(
            "task=retrieval needs a pooled model (model.pool mean or last), got model.pool=null"
        )
