"""benchmarks/init_memory.py: its kernel is the layer's impulse response, its summary reads the energy right."""

from __future__ import annotations

import pytest
import torch

from benchmarks import init_memory
from ssm.layers.s5 import S5


@pytest.mark.parametrize("init", ["legs", "ptd"])
def test_kernel_energy_is_the_impulse_response(init):
    H, P, J, L = 3, 16, 2, 40
    e = init_memory.kernel_energy(init, 1e-3, 1e-1, d_model=H, d_state=P, blocks=J, length=L, seed=5)
    torch.manual_seed(5)  # the same layer again; its response to a unit impulse in each channel
    layer = S5(H, d_state=P, blocks=J, init=init, dt_min=1e-3, dt_max=1e-1).double()
    u = torch.zeros(H, L, H, dtype=torch.float64)
    u[torch.arange(H), 0, torch.arange(H)] = 1.0
    with torch.no_grad():
        y = layer(u)  # (H inputs, L, H outputs); y[j, l, h] = K_l[h, j] + D_h [l = 0, h = j]
        y[torch.arange(H), 0, torch.arange(H)] -= layer.D
    torch.testing.assert_close(e, y.square().sum((0, 2)), rtol=1e-9, atol=1e-14)


def test_summary_of_a_geometric_energy():
    e = 0.5 ** torch.arange(1000, dtype=torch.float64)  # cumulative share 1 - 0.5^(l+1)
    s = init_memory.summary(e)
    assert s["lag_50"] == 0 and s["lag_90"] == 3  # 0.5 at lag 0; 0.9375 first reached at lag 3
    assert s["beyond_100"] == pytest.approx(0.5 ** 100, rel=1e-9)
    assert s["energy"] == pytest.approx(2.0, rel=1e-12)
