"""S4's released B clip (``b_clip``) and the eigenvector phase convention it depends on.

The released code computes ``B~ = V^* B`` with V the eigenvectors that ``eigh(-1j * S)`` returns for
the eigenvalues with negative imaginary part, then clamps ``Im B~`` to [-2, 2]. Here that procedure
is written out directly and compared with :func:`ssm.init.nplr` mode by mode.
"""

import pytest
import torch

from ssm.init import MEASURES, diag_init, hippo, nplr, rank_correction


def released_B(measure: str, N: int, clip: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(imaginary parts of the kept eigenvalues, B~) as S4's released nplr computes them."""
    A, B = hippo(measure, N)
    P = rank_correction(measure, N)
    S = (A + P.T @ P).to(torch.complex128)
    mu, V = torch.linalg.eigh(S * -1j)  # eigh reads the lower triangle; the real diagonal drops out
    V, mu = V[:, : N // 2], mu[: N // 2]  # ascending: the half with negative imaginary part
    Bt = V.conj().T @ B.to(torch.complex128)
    if clip is not None:
        Bt = Bt.real + 1j * Bt.imag.clamp(-clip, clip)
    return mu, Bt


@pytest.mark.parametrize("N", [8, 16, 64, 256])
@pytest.mark.parametrize("clip", [None, 2.0, 0.5])
def test_nplr_clip_matches_the_released_procedure(N: int, clip) -> None:
    Lambda, _, B, _ = nplr("legs", N, b_clip=clip)
    mu, B_rel = released_B("legs", N, clip)
    # ours keeps +mu in descending order, the released code -mu in ascending order: same modes
    torch.testing.assert_close(Lambda.imag, -mu, rtol=0, atol=1e-9)
    # eigenvectors conjugated up to a sign: B~ = +-conj(B~ released), mode by mode
    flip = torch.where((B - B_rel.conj()).abs() < (B + B_rel.conj()).abs(), 1.0, -1.0)
    torch.testing.assert_close(B, flip * B_rel.conj(), rtol=0, atol=1e-9)


def test_clip_closed_form_and_fraction_at_64() -> None:
    _, _, B0, _ = nplr("legs", 64)
    _, _, B2, _ = nplr("legs", 64, b_clip=2.0)
    torch.testing.assert_close(B2.real, B0.real, rtol=0, atol=0)
    torch.testing.assert_close(B2.imag, B0.imag.clamp(-2, 2), rtol=0, atol=0)
    changed = (B2 != B0).float().mean().item()
    assert 0.25 <= changed <= 0.45, f"fraction of clipped modes at N=64: {changed}"
    assert B0.imag.abs().max() > 2 and B2.imag.abs().max() <= 2


@pytest.mark.parametrize("measure", MEASURES)
def test_first_component_of_every_eigenvector_is_real(measure: str) -> None:
    _, _, _, V = nplr(measure, 32)
    assert V[0].imag.abs().max().item() < 1e-12
    Lambda, P, B, V2 = nplr(measure, 32, b_clip=2.0)
    torch.testing.assert_close(V2, V)  # the clip changes B~ only


def test_s4d_legs_clip_applies_before_the_half() -> None:
    _, _, B_exact, V = nplr("legs", 64)
    Lambda, B, V_d = diag_init("legs", 64, b_clip=2.0)
    torch.testing.assert_close(2 * B, B_exact.real + 1j * B_exact.imag.clamp(-2, 2), rtol=0, atol=1e-12)
    Lambda0, B0, _ = diag_init("legs", 64)
    torch.testing.assert_close(2 * B0, B_exact, rtol=0, atol=1e-12)
    torch.testing.assert_close(Lambda, Lambda0)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "2"])
def test_bad_b_clip_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="b_clip"):
        nplr("legs", 16, b_clip=bad)
    with pytest.raises(ValueError, match="b_clip"):
        diag_init("legs", 16, b_clip=bad)


@pytest.mark.parametrize("init", ["inv", "lin", "real", "dss", "ptd"])
def test_b_clip_only_for_legs(init: str) -> None:
    with pytest.raises(ValueError, match="b_clip applies to init 'legs'"):
        diag_init(init, 16, b_clip=2.0)


def test_layers_take_the_clipped_B() -> None:
    import ssm

    _, _, B_clip, _ = nplr("legs", 16, b_clip=2.0)
    s4 = ssm.S4(4, 16, b_clip=2.0)
    B = torch.view_as_complex(s4.B.detach().double().contiguous())
    torch.testing.assert_close(B, B_clip.expand_as(B).to(B.dtype), rtol=1e-6, atol=1e-6)
    s4d = ssm.S4D(4, 16, b_clip=2.0)
    B = torch.view_as_complex(s4d.B.detach().double().contiguous())
    torch.testing.assert_close(2 * B, B_clip.expand_as(B), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="b_clip"):
        ssm.S4D(4, 16, init="inv", b_clip=2.0)
