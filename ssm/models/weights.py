"""Save and load a trained :class:`~ssm.SequenceModel` without Lightning or Hydra.

Two files hold a model: an ``ssm-train`` checkpoint (a Lightning ``.ckpt``: ``state_dict`` under
``model.``, the run's config under ``ssm_config`` and the model's own config under ``ssm_model``),
and a weights-only file, the format a result ships with::

    {"format": "ssm-weights/1",
     "config": {"_target_": "ssm.SequenceModel", "d_input": 1, "d_model": 64, "d_output": 10,
                "n_layers": 4, "layer": {"_target_": "ssm.S4D", "_partial_": True, "d_state": 64, ...},
                "embedding": False, "dropout": 0.1, ...},      # SequenceModel's keyword arguments
     "state_dict": {...},                                       # SequenceModel.state_dict()
     "ssm_version": "0.1.0",
     "metadata": {...}}                                         # free-form: source, experiment, epoch

Both are written by ``torch.save`` (a zip archive) and read with ``torch.load(weights_only=True)``:
plain containers and tensors only, no pickled code. ``_target_`` names are resolved by importing them,
and only classes defined in ``ssm`` itself are accepted, so a file cannot make the loader build
anything else. The config is also a valid Hydra config (``hydra.utils.instantiate(config)``).
"""

from __future__ import annotations

import functools
import importlib
import pickle
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from .._archive import CheckpointError, verify_archive

__all__ = [
    "FORMAT",
    "CheckpointError",
    "build_from_config",
    "layer_spec",
    "load_model",
    "read_model_file",
    "save_weights",
    "verify_archive",
]

FORMAT = "ssm-weights/1"
_PLAIN = (type(None), bool, int, float, str)
PathLike = Union[str, Path]


# ------------------------------------------------------------------------------ describing a model
def _is_plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _target_name(cls: type) -> str:
    """``ssm.S4D`` where the top-level package exports the class, else its defining module's path."""
    import ssm

    if getattr(ssm, cls.__name__, None) is cls:
        return f"ssm.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def layer_spec(layer: Any) -> Optional[dict[str, Any]]:
    """The plain config of a ``layer`` callable (``{"_target_": ..., "_partial_": True, **kwargs}``),
    or None when it cannot be written down: only an ssm layer class, or a ``functools.partial`` of one
    with plain keyword arguments, can (a lambda or a class outside ssm cannot)."""
    func, kwargs = layer, {}
    if isinstance(layer, functools.partial):
        if layer.args:
            return None
        func, kwargs = layer.func, dict(layer.keywords)
    if not (isinstance(func, type) and issubclass(func, nn.Module) and _is_ssm_class(func)):
        return None
    if not _is_plain(kwargs):
        return None
    return {"_target_": _target_name(func), "_partial_": True, **kwargs}


def _is_ssm_class(obj: Any) -> bool:
    return isinstance(obj, type) and (obj.__module__ == "ssm" or obj.__module__.startswith("ssm."))


# -------------------------------------------------------------------------------- building a model
def _resolve(target: Any, what: str) -> type:
    """Import ``target`` (a dotted name), accepting only nn.Module classes defined in ssm."""
    if not isinstance(target, str) or not (target.startswith("ssm.") and target.count(".") >= 1):
        raise CheckpointError(f"{what}: _target_ must name a class of the ssm package, got {target!r}")
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{what}: cannot import {target!r} ({err})") from err
    if not (_is_ssm_class(obj) and issubclass(obj, nn.Module)):
        raise CheckpointError(f"{what}: {target!r} is not a torch module class defined in ssm")
    return obj


def _kwargs(node: Mapping[str, Any], what: str) -> dict[str, Any]:
    for key, value in node.items():
        if isinstance(value, Mapping) and "_target_" in value:
            raise CheckpointError(f"{what}: nested _target_ under {key!r} is not supported")
    return {k: v for k, v in node.items() if not k.startswith("_")}


def build_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Instantiate a model from its plain config (the ``"config"`` entry of a weights file)."""
    from .backbone import SequenceModel

    if not isinstance(config, Mapping):
        raise CheckpointError(f"the model config must be a dict, got {type(config).__name__}")
    model_cls = _resolve(config.get("_target_", "ssm.SequenceModel"), "model config")
    if not issubclass(model_cls, SequenceModel):
        raise CheckpointError(f"model config: {config.get('_target_')!r} is not a SequenceModel")
    layer = config.get("layer")
    if not isinstance(layer, Mapping) or "_target_" not in layer:
        raise CheckpointError("model config: 'layer' must be a dict with a _target_ (e.g. 'ssm.S4D')")
    layer_factory = functools.partial(_resolve(layer["_target_"], "layer config"), **_kwargs(layer, "layer"))
    kwargs = _kwargs({k: v for k, v in config.items() if k != "layer"}, "model config")
    try:
        return model_cls(layer=layer_factory, **kwargs)
    except TypeError as err:
        raise CheckpointError(f"model config does not match {model_cls.__name__}: {err}") from err


def _config_from_run(run: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The model config of a checkpoint that has only the run config (``ssm_config``): the model and
    layer groups from it; d_input, d_output and embedding read off the encoder and decoder weights."""
    model, layer = run.get("model"), run.get("layer")
    if not isinstance(model, Mapping) or not isinstance(layer, Mapping):
        raise CheckpointError("the checkpoint's ssm_config has no 'model' and 'layer' groups")
    if "encoder.weight" not in state_dict:
        raise CheckpointError("the checkpoint's state_dict has no model.encoder.weight")
    embedding = "encoder.bias" not in state_dict  # nn.Embedding has no bias, nn.Linear has one
    enc = state_dict["encoder.weight"]
    dec = state_dict.get("decoder.weight")
    return {
        **model,
        "d_input": int(enc.shape[0] if embedding else enc.shape[1]),
        "d_output": None if dec is None else int(dec.shape[0]),
        "embedding": embedding,
        "layer": dict(layer),
    }


# ---------------------------------------------------------------------------------------- files
def read_model_file(path: PathLike, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any], dict]:
    """``(config, state_dict, metadata)`` of a weights file or an ``ssm-train`` checkpoint, after the
    archive's CRC check. For a checkpoint, metadata names the experiment, seed, epoch and step."""
    path = Path(path)
    verify_archive(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path} cannot be loaded with torch.load(weights_only=True): {err}") from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not an ssm checkpoint or weights file")
    fmt = obj.get("format")
    if fmt is not None:
        if fmt != FORMAT:
            raise CheckpointError(f"{path} has format {fmt!r}; this version of ssm reads {FORMAT!r}")
        missing = [k for k in ("config", "state_dict") if not isinstance(obj.get(k), dict)]
        if missing:
            raise CheckpointError(f"{path} (format {FORMAT}) has no {' or '.join(missing)} dict")
        return dict(obj["config"]), dict(obj["state_dict"]), dict(obj.get("metadata") or {})
    if "state_dict" in obj and ("ssm_model" in obj or "ssm_config" in obj):  # an ssm-train checkpoint
        prefix = "model."
        state = {k[len(prefix):]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
        run = obj.get("ssm_config") or {}
        meta = {"source": f"ssm-train checkpoint {path.name}", "experiment": run.get("name"),
                "seed": run.get("seed"), "epoch": obj.get("epoch"), "global_step": obj.get("global_step")}
        config = dict(obj["ssm_model"]) if "ssm_model" in obj else _config_from_run(run, state)
        return config, state, meta
    raise CheckpointError(
        f"{path} is neither an ssm weights file (no 'format': {FORMAT!r}) nor an ssm-train checkpoint "
        "(no 'ssm_model' / 'ssm_config' entry)"
    )


def load_model(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """The model stored in ``path``, with its weights, in eval mode, on ``map_location``."""
    config, state, _ = read_model_file(path, map_location=map_location)
    model = build_from_config(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the stored config: {err}") from err
    return model.to(torch.device(map_location)).eval()


def save_weights(model: nn.Module, path: PathLike, metadata: Optional[dict[str, Any]] = None) -> Path:
    """Write ``model`` (a :class:`~ssm.SequenceModel`) as a weights-only file of format ``FORMAT``."""
    import ssm

    config = model.config()
    if metadata is not None and not _is_plain(metadata):
        raise ValueError("metadata must hold only plain values (str, int, float, bool, None, lists, dicts)")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": config, "state_dict": state, "ssm_version": ssm.__version__,
               "metadata": dict(metadata or {})}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # a reader never sees a half-written file
    return path
