"""Fourier-mode input noise for the robustness study of PTD (arXiv 2310.01698, Sec. 6).

At test time only, every SSM layer's input ``u`` (B, L, H) receives

    u[b, k, h] += a * r[b, h] * cos(omega * k * dt_h),     r[b, h] ~ U(0, 1),

a single continuous-time Fourier mode of frequency ``omega`` read on the layer's own time grid
``t = k * dt`` (dt from ``layer.timestep()``; the study used a = 0.1, omega = 325.4 on sequential
CIFAR-10). S4D-LegS, whose transfer function spikes near such frequencies, degrades; S4-PTD does not.
S4/S4D have one dt per channel h; DSS has one, or (``sep_dt_re_im``, its default) one for the real and
one for the imaginary part of Lambda, whose geometric mean is the channel's time unit. S5 has one dt
per stored state rather than per channel; its time grid uses the geometric mean of those dt (one time
unit for the whole layer).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from ssm.layers.base import SSMLayer
from ssm.layers.s5 import S5

__all__ = ["fourier_noise", "layer_time_unit", "FourierNoise"]


def layer_time_unit(layer: nn.Module) -> Tensor:
    """(H,) timestep per channel of an SSM layer (S5: its geometric-mean dt repeated over channels)."""
    dt = layer.timestep().detach()
    H = layer.d_model
    if isinstance(layer, S5):  # one dt per stored state (P/2 of them), not per channel
        return torch.exp(torch.log(dt).mean()).expand(H)
    if dt.shape == (H, 2):  # DSS with separate real / imaginary timesteps
        return torch.exp(torch.log(dt).mean(-1))
    if dt.shape != (H,):
        raise ValueError(f"{type(layer).__name__}.timestep() has shape {tuple(dt.shape)}; expected ({H},)")
    return dt


def fourier_noise(
    shape: tuple[int, int, int],
    dt: Tensor,
    amplitude: float,
    omega: float,
    generator: Optional[torch.Generator] = None,
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
) -> Tensor:
    """``a * U(0,1) * cos(omega * k * dt)`` of shape (B, L, H).

    Args:
        shape: (B, L, H).
        dt: (H,) timestep of each channel.
        amplitude: a >= 0.
        omega: angular frequency in the layer's continuous time.
        generator: source of the U(0, 1) amplitudes, one per (batch element, channel).
    """
    B, L, H = shape
    if dt.shape != (H,):
        raise ValueError(f"dt must have shape ({H},) to match the {H} channels, got {tuple(dt.shape)}")
    if amplitude < 0:
        raise ValueError(f"amplitude must be >= 0, got {amplitude}")
    device = device if device is not None else dt.device
    k = torch.arange(L, device=device, dtype=torch.float64)
    t = k[:, None] * dt.to(device=device, dtype=torch.float64)[None, :]  # (L, H)
    r = torch.rand(
        (B, 1, H),
        generator=generator,
        dtype=torch.float64,
        device=generator.device if generator is not None else device,
    ).to(device)
    return (amplitude * r * torch.cos(omega * t)[None]).to(dtype)


class FourierNoise:
    """Context manager adding :func:`fourier_noise` to the input of every SSM layer of ``model``.

    Args:
        model: a module containing SSM layers (:class:`ssm.layers.base.SSMLayer`).
        amplitude: a (0 disables the noise).
        omega: angular frequency.
        seed: seed of the U(0, 1) amplitudes (reproducible across runs).
    """

    def __init__(self, model: nn.Module, amplitude: float, omega: float, seed: int = 0) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, SSMLayer)]
        if not self.layers:
            raise ValueError(f"{type(model).__name__} contains no SSM layer to add noise to")
        if amplitude < 0:
            raise ValueError(f"amplitude must be >= 0, got {amplitude}")
        self.amplitude, self.omega, self.seed = float(amplitude), float(omega), int(seed)
        self._handles: list[Any] = []
        self.generator = torch.Generator()

    def _hook(self, layer: SSMLayer, args: tuple, kwargs: dict) -> Optional[tuple[tuple, dict]]:
        if self.amplitude == 0.0:
            return None
        x = args[0] if args else kwargs["x"]
        if layer.transposed:  # (B, H, L)
            B, H, L = x.shape
        else:
            B, L, H = x.shape
        noise = fourier_noise(
            (B, L, H),
            layer_time_unit(layer),
            self.amplitude,
            self.omega,
            generator=self.generator,
            dtype=x.dtype,
            device=x.device,
        )
        if layer.transposed:
            noise = noise.transpose(1, 2)
        x = x + noise
        if args:
            return (x,) + tuple(args[1:]), kwargs
        return args, {**kwargs, "x": x}

    def __enter__(self) -> "FourierNoise":
        self.generator.manual_seed(self.seed)
        for layer in self.layers:
            self._handles.append(layer.register_forward_pre_hook(self._hook, with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
