"""Transfer functions of every init (ssm.init.transfer) against closed forms and dense solves; PTD tracks
HiPPO-LegS while S4D-LegS spikes; ``python -m ssm.init transfer``."""

import cmath
import math

import pytest
import torch

from ssm.init import diag_init, hippo, hippo_transfer_function, omega_star, siso_system, transfer_function
from ssm.init.ptd import load_perturbation
from ssm.init.transfer import FAMILIES, SISOSystem, deviation, frequency_grid, reference_C

ALL = [(family, init) for family, inits in FAMILIES.items() for init in inits]
OMEGA = torch.tensor([0.05, 0.3, 1.0, 7.5, 42.0, 123.4, 325.4, 900.0, 5e3], dtype=torch.float64)


def cplx(*values):
    return torch.tensor(values, dtype=torch.complex128)


def real_block_form(Lambda, B, C):
    """The real 2M-dimensional system of a conjugate-half diagonal one: state [Re x; Im x]."""
    Lr, Li = torch.diag(Lambda.real), torch.diag(Lambda.imag)
    A = torch.cat([torch.cat([Lr, -Li], 1), torch.cat([Li, Lr], 1)])
    return A, torch.cat([B.real, B.imag]), 2 * torch.cat([C.real, -C.imag])


def direct_solve(A, B, C, omega):
    """C (i omega - A)^-1 B by torch.linalg.solve, one frequency at a time."""
    eye = torch.eye(A.shape[0], dtype=torch.complex128)
    return torch.stack([C.to(torch.complex128) @ torch.linalg.solve(1j * w * eye - A.to(torch.complex128),
                                                                     B.to(torch.complex128)) for w in omega])


# ------------------------------------------------------------------------------------ closed forms
def test_one_pair_is_a_second_order_rational_function():
    lam, b, c = -0.7 + 3j, 0.4 - 1.2j, 1.5 + 0.3j
    G = SISOSystem(cplx(lam), cplx(b), cplx(c))(OMEGA)
    for w, g in zip(OMEGA.tolist(), G.tolist()):
        s = 1j * w
        # c b/(s - lam) + conj(c b)/(s - conj lam) over the common denominator
        num = 2 * (c * b).real * s - 2 * (c * b * lam.conjugate()).real
        assert g == pytest.approx(num / (s * s - 2 * lam.real * s + abs(lam) ** 2), rel=1e-13, abs=1e-15)


def test_diagonal_system_is_a_sum_of_simple_fractions():
    Lam, B, C = cplx(-0.5 + 2j, -1.0 + 0.1j, -3.0 + 40j), cplx(1, 2 - 1j, 0.5j), cplx(0.3 + 1j, -2, 1 + 1j)
    G = SISOSystem(Lam, B, C)(OMEGA)
    expected = [sum(c * b / (1j * w - l) + (c * b).conjugate() / (1j * w - l.conjugate())
                    for l, b, c in zip(Lam.tolist(), B.tolist(), C.tolist())) for w in OMEGA.tolist()]
    torch.testing.assert_close(G, cplx(*expected), rtol=1e-13, atol=1e-15)


def test_rank_one_term_by_the_2x2_inverse():
    lam, p, b, c = -0.5 + 3j, 0.8 - 0.2j, 1.0 + 0.5j, 0.7 - 1j
    G = SISOSystem(cplx(lam), cplx(b), cplx(c), P=cplx(p).reshape(1, 1))(OMEGA)
    for w, g in zip(OMEGA.tolist(), G.tolist()):
        s = 1j * w
        # [p; conj p] [p; conj p]^*
        pp = [[p * p.conjugate(), p * p], [(p * p).conjugate(), p.conjugate() * p]]
        m = [[s - lam + pp[0][0], pp[0][1]], [pp[1][0], s - lam.conjugate() + pp[1][1]]]
        det = m[0][0] * m[1][1] - m[0][1] * m[1][0]
        x = [(m[1][1] * b - m[0][1] * b.conjugate()) / det, (m[0][0] * b.conjugate() - m[1][0] * b) / det]
        assert g == pytest.approx(c * x[0] + c.conjugate() * x[1], rel=1e-13, abs=1e-15)


def test_hippo_legs_of_size_two_in_closed_form():
    # A = [[-1, 0], [-sqrt3, -2]], B = [1, sqrt3]: x0 = 1/(s+1), x1 = sqrt3 s / ((s+1)(s+2))
    C = reference_C(2, seed=4)
    G = hippo_transfer_function(2, OMEGA, seed=4)
    for w, g in zip(OMEGA.tolist(), G.tolist()):
        s = 1j * w
        expected = C[0].item() / (s + 1) + C[1].item() * math.sqrt(3) * s / ((s + 1) * (s + 2))
        assert g == pytest.approx(expected, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("measure", ["legs", "legt", "lagt", "fout"])
def test_hippo_reference_is_the_direct_solve(measure):
    # triangular measures take the forward substitution, the others the batched LAPACK solve
    A, B = hippo(measure, 10)
    G = hippo_transfer_function(10, OMEGA, measure=measure, seed=1)
    torch.testing.assert_close(G, direct_solve(A, B, reference_C(10, 1), OMEGA), rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------- every init, two ways
@pytest.mark.parametrize("family,init", ALL)
def test_every_init_equals_its_simple_fractions_or_dplr_solve(family, init):
    N = 16
    sys_ = siso_system(init, N, family=family, seed=3)
    G = transfer_function(init, N, OMEGA, family=family, seed=3)
    torch.testing.assert_close(G, sys_(OMEGA), rtol=0, atol=0)
    assert G.dtype == torch.complex128 and G.shape == OMEGA.shape
    full = torch.cat([sys_.Lambda, sys_.Lambda.conj()])
    Bf, Cf = torch.cat([sys_.B, sys_.B.conj()]), torch.cat([sys_.C, sys_.C.conj()])
    A = torch.diag(full)
    if sys_.P is not None:  # S4: diag(Lambda) - P P^* on the full basis [V, conj V]
        Pf = torch.cat([sys_.P, sys_.P.conj()], 1).T  # (N, rank)
        A = A - Pf @ Pf.conj().T
    expected = direct_solve(A, Bf, Cf, OMEGA)
    torch.testing.assert_close(G, expected, rtol=1e-10, atol=1e-12 * expected.abs().max().item())
    # a real system: G(-i omega) = conj(G(i omega))
    torch.testing.assert_close(sys_(-OMEGA), G.conj(), rtol=1e-12, atol=1e-14 * G.abs().max().item())


def _dense_A(family, init, N, blocks=1):
    """The real matrix each init with a basis stands for, built without the init's eigenvectors."""
    n = N // blocks
    A_H = hippo("legs", n)[0]
    p = torch.sqrt(torch.arange(n, dtype=torch.float64) + 0.5)
    if family == "s4":
        return hippo(init, N)[0]
    if init == "legs":
        blk = A_H + torch.outer(p, p)  # the normal part S
    elif init == "ptd":
        blk = A_H + load_perturbation(n)
    else:  # dss: the skew part, shifted to Re = -1/2
        blk = (A_H - A_H.T) / 2 - 0.5 * torch.eye(n, dtype=torch.float64)
    return torch.block_diag(*([blk] * blocks))


@pytest.mark.parametrize("family,init,blocks,clip", [
    ("s4", "legs", 1, None), ("s4", "legs", 1, 2.0), ("s4", "legt", 1, None), ("s4", "lagt", 1, None),
    ("s4", "fout", 1, None), ("s4d", "legs", 1, None), ("s4d", "legs", 1, 2.0), ("s4d", "ptd", 1, None),
    ("s5", "legs", 1, None), ("s5", "legs", 2, None), ("s5", "ptd", 1, None), ("s5", "ptd", 2, None),
    ("s5", "dss", 1, None),
])
def test_inits_with_a_basis_equal_their_dense_system(family, init, blocks, clip):
    N = 32
    sys_ = siso_system(init, N, family=family, b_clip=clip, seed=2, blocks=blocks)
    G = sys_(OMEGA)
    expected = direct_solve(_dense_A(family, init, N, blocks), sys_.B_in, sys_.C_out, OMEGA)
    torch.testing.assert_close(G, expected, rtol=1e-9, atol=1e-11 * expected.abs().max().item())
    B_H = hippo(init if family == "s4" else "legs", N)[1]
    if family != "s5" and clip is None:  # B as the init sets it from HiPPO's B
        torch.testing.assert_close(sys_.B_in, B_H / 2 if (family, init) == ("s4d", "legs") else B_H)
    if family != "s5":  # the layers' real N(0, I) C, mapped through V
        torch.testing.assert_close(sys_.C_out, reference_C(N, 2), rtol=1e-9, atol=1e-12)


def test_b_clip_changes_the_high_frequency_modes_only():
    off, on = siso_system("legs", 32, seed=0), siso_system("legs", 32, b_clip=2.0, seed=0)
    changed = (off.B != on.B).nonzero().squeeze(-1)
    assert 0 < len(changed) < 16 and (on.B.imag.abs() <= 1.0 + 1e-15).all()  # clip 2 before the 1/2
    top = off.Lambda.imag.argsort(descending=True)[: len(changed)]
    assert set(changed.tolist()) == set(top.tolist())  # the modes with the largest Im(Lambda)
    torch.testing.assert_close(on.C, off.C, rtol=0, atol=0)
    omega = frequency_grid(32)
    diff = (off(omega) - on(omega)).abs()
    w = omega[diff.argmax()].item()
    assert any(abs(w - off.Lambda.imag[k].item()) < 1 for k in changed), f"largest change at omega={w:.1f}"


def test_draws_are_seeded_and_follow_the_layer_laws():
    a, b = siso_system("inv", 64, seed=5), siso_system("inv", 64, seed=5)
    torch.testing.assert_close(a.C, b.C, rtol=0, atol=0)
    assert not torch.equal(a.C, siso_system("inv", 64, seed=6).C)
    # S4D's complex normal C (E|C|^2 = 1) and S5's truncated-normal B (variance 1 = 1/H, |B| <= 2 sd)
    Cs = torch.cat([siso_system("inv", 64, seed=s).C for s in range(40)])
    assert abs(Cs.abs().square().mean().item() - 1) < 0.1
    Bs = torch.stack([siso_system("legs", 32, family="s5", seed=s).B_in for s in range(40)])
    assert abs(Bs.var().item() - 1) < 0.1 and Bs.abs().max() <= 2 / 0.87962566103423978 + 1e-12


@pytest.mark.parametrize("kwargs,match", [
    (dict(init="inv", N=16, family="s4"), "init must be one of"),
    (dict(init="legs", N=16, family="dss"), "family must be one of"),
    (dict(init="inv", N=16, family="s4d", b_clip=2.0), "b_clip applies to init 'legs'"),
    (dict(init="legs", N=16, family="s5", b_clip=2.0), "b_clip applies to families"),
    (dict(init="legs", N=16, family="s4d", blocks=2), "blocks applies to family 's5'"),
    (dict(init="legs", N=15, family="s4d"), "N must be even"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        siso_system(**kwargs)


# ---------------------------------------------------------------- PTD tracks HiPPO, S4D-LegS spikes
@pytest.mark.parametrize("N", [32, 64])
def test_ptd_tracks_hippo_while_s4d_legs_spikes(N):
    omega = frequency_grid(N, lo=10.0)
    dev_s = deviation("legs", N, omega, seed=0)
    dev_p = deviation("ptd", N, omega, seed=0)
    G_H = hippo_transfer_function(N, omega, seed=0)
    sup_s, sup_p = dev_s.max().item(), dev_p.max().item()
    w_s = omega[dev_s.argmax()].item()
    msg = (f"N={N}: sup|G_PTD - G_H| = {sup_p:.4g}, sup|G_S4D-LegS - G_H| = {sup_s:.4g} at omega={w_s:.1f}; "
           f"max|G_H| = {G_H.abs().max().item():.4g}")
    assert sup_p <= sup_s / 4, msg
    # the spike is at high frequency: there S4D-LegS is off by many times HiPPO's own size
    high = omega >= 100
    assert dev_s[high].max() >= 10 * G_H[high].abs().max(), msg
    assert dev_p[high].max() <= G_H[high].abs().max(), msg


def test_omega_star_is_s4d_legs_top_resonance():
    # at N = 32 the study's noise frequency 325.4 is S4D-LegS's largest Im(Lambda), 325.426
    for N in (16, 32, 64):
        w, dev = omega_star(N)
        top = diag_init("legs", N)[0].imag.max().item()
        msg = f"N={N}: omega*={w:.3f}, top resonance {top:.3f}, dev {dev:.3g}"
        assert abs(w - top) < 0.02 and dev > 5, msg
    assert abs(omega_star(32)[0] - 325.4) < 0.05
    # the seeded C of S4D's layer law: seed 1 peaks at the second resonance (~107) instead
    assert abs(omega_star(32, seed=1)[0] - 107.09) < 0.05


def test_rms_deviation_is_the_mean_over_C():
    N, omega = 16, torch.tensor([3.0, 47.6, 80.97], dtype=torch.float64)
    rms = deviation("legs", N, omega, seed=None)
    mean_sq = torch.stack([deviation("legs", N, omega, seed=s) ** 2 for s in range(400)]).mean(0)
    torch.testing.assert_close(mean_sq.sqrt(), rms, rtol=0.15, atol=0)
    # S4 reproduces HiPPO-LegS exactly (no clip): its deviation is round-off
    assert deviation("legs", N, omega, family="s4", seed=None).max() < 1e-10
    assert cmath.isfinite(complex(rms[0].item()))


# --------------------------------------------------------------------------------------- command
def test_transfer_command_writes_table_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from ssm.init.__main__ import main

    md, png = tmp_path / "t.md", tmp_path / "t.png"
    main(["transfer", "-N", "16", "--markdown", str(md), "--plot", str(png)])
    text = md.read_text()
    for row in ("| S4D-LegS | 16 | off |", "| S4D-LegS | 16 | 2 |", "| S4-PTD | 16 | n/a |"):
        assert row in text
    assert "| 16 | 80.97 |" in text  # omega*
    assert "S4D-Inv" in text and png.stat().st_size > 10_000
    main(["transfer", "--omega-star", "32"])
    assert "omega* = 325.4" in capsys.readouterr().out
