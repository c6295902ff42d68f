"""``form="released"``: the HiPPO matrices of S4's released code, against closed forms written out.

The released code halves LegT (A, B, and P by sqrt2), adds I/2 to LagT, and builds FouT at frequencies
``pi j`` with a dead state at index 1; LegS is the same. ``form="paper"`` (the default) is unchanged.
"""

import math

import pytest
import torch

from ssm.init import FORMS, MEASURES, hippo, nplr, rank_correction


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def legt_released_loop(N):
    A = [[0.0] * N for _ in range(N)]
    for n in range(N):
        for k in range(N):
            s = 1.0 if n >= k else (-1.0) ** (n - k)
            A[n][k] = -0.5 * math.sqrt((2 * n + 1) * (2 * k + 1)) * s
    return _t(A), _t([0.5 * math.sqrt(2 * n + 1) for n in range(N)])


def lagt_released_loop(N):
    A = [[-0.5 if n == k else (-1.0 if n > k else 0.0) for k in range(N)] for n in range(N)]
    return _t(A), _t([1.0] * N)


def fout_released_e(N):
    # index 0: constant; 1: dead; 2j: sqrt2 cos (frequency j); 2j+1: sine
    return [1.0 if n == 0 else (math.sqrt(2) if n % 2 == 0 else 0.0) for n in range(N)]


def fout_released_loop(N):
    e = fout_released_e(N)
    A = [[-e[n] * e[k] for k in range(N)] for n in range(N)]
    for j in range(1, N):
        if 2 * j + 1 < N:
            A[2 * j][2 * j + 1] -= math.pi * j
            A[2 * j + 1][2 * j] += math.pi * j
    return _t(A), _t(e)


RELEASED_LOOPS = {"legt": legt_released_loop, "lagt": lagt_released_loop, "fout": fout_released_loop}
# Re(Lambda) of the released forms: the normal part is skew except for LegS
RELEASED_RE = {"legs": -0.5, "legt": 0.0, "lagt": 0.0, "fout": 0.0}


@pytest.mark.parametrize("measure", ["legt", "lagt", "fout"])
def test_released_closed_form(measure):
    for N in range(1, 17):
        A, B = hippo(measure, N, form="released")
        A_ref, B_ref = RELEASED_LOOPS[measure](N)
        torch.testing.assert_close(A, A_ref, rtol=1e-15, atol=1e-13, msg=f"{measure} A, N={N}")
        torch.testing.assert_close(B, B_ref, rtol=1e-15, atol=1e-13, msg=f"{measure} B, N={N}")


def test_released_against_paper_exactly():
    for N in (1, 2, 5, 8, 33):
        A, B = hippo("legt", N)
        A_r, B_r = hippo("legt", N, form="released")
        assert torch.equal(A_r, A / 2) and torch.equal(B_r, B / 2), f"legt N={N}"
        A, B = hippo("lagt", N)
        A_r, B_r = hippo("lagt", N, form="released")
        eye = torch.eye(N, dtype=torch.float64)
        assert torch.equal(A_r, A + eye / 2) and torch.equal(B_r, B), f"lagt N={N}"
        for fn in (hippo, rank_correction):
            paper, released = fn("legs", N), fn("legs", N, form="released")
            paper = paper if isinstance(paper, tuple) else (paper,)
            released = released if isinstance(released, tuple) else (released,)
            assert all(torch.equal(a, b) for a, b in zip(paper, released)), f"legs N={N}"


def test_released_hand_derived_small_cases():
    s3, r2, pi = math.sqrt(3.0), math.sqrt(2.0), math.pi
    A, B = hippo("legt", 2, form="released")
    torch.testing.assert_close(A, _t([[-0.5, s3 / 2], [-s3 / 2, -1.5]]))
    torch.testing.assert_close(B, _t([0.5, s3 / 2]))
    A, _ = hippo("lagt", 3, form="released")
    torch.testing.assert_close(A, _t([[-0.5, 0, 0], [-1, -0.5, 0], [-1, -1, -0.5]]))
    # FouT, N = 6: constant, dead, cos(pi x), sin(pi x), cos(2 pi x), sin(2 pi x)
    A, B = hippo("fout", 6, form="released")
    A_ref = _t([
        [-1, 0, -r2, 0, -r2, 0],
        [0, 0, 0, 0, 0, 0],
        [-r2, 0, -2, -pi, -2, 0],
        [0, 0, pi, 0, 0, 0],
        [-r2, 0, -2, 0, -2, -2 * pi],
        [0, 0, 0, 0, 2 * pi, 0],
    ])
    torch.testing.assert_close(A, A_ref)
    torch.testing.assert_close(B, _t([1, 0, r2, 0, r2, 0]))
    # the dead state: no input, nothing in or out of it
    assert A[1].abs().max() == 0 and A[:, 1].abs().max() == 0 and B[1] == 0


def test_released_rank_correction_closed_form():
    for N in (1, 4, 7):
        r = [math.sqrt(2 * n + 1) / math.sqrt(2) for n in range(N)]
        P_ref = _t([[r[n] if n % 2 == 0 else 0.0 for n in range(N)],
                    [r[n] if n % 2 else 0.0 for n in range(N)]])
        torch.testing.assert_close(rank_correction("legt", N, form="released"), P_ref, rtol=1e-15, atol=0)
        torch.testing.assert_close(rank_correction("lagt", N, form="released"), _t([[0.5**0.5] * N]))
        torch.testing.assert_close(rank_correction("fout", N, form="released"), _t([fout_released_e(N)]))


@pytest.mark.parametrize("measure", MEASURES)
def test_released_rank_correction_makes_skew(measure):
    for N in (1, 2, 7, 32):
        A, _ = hippo(measure, N, form="released")
        P = rank_correction(measure, N, form="released")
        S = A + P.T @ P
        K = S - RELEASED_RE[measure] * torch.eye(N, dtype=torch.float64)
        torch.testing.assert_close(K, -K.T, atol=1e-12, rtol=0, msg=f"{measure} N={N}")


def reconstruct(Lambda, P, B, V):
    p = 2 * (V @ P.T).real
    return 2 * (V @ torch.diag(Lambda) @ V.conj().T).real - p @ p.T, 2 * (V @ B).real


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", (2, 4, 6, 16, 64))
def test_released_nplr_reconstructs_A_and_B(measure, N):
    Lambda, P, B, V = nplr(measure, N, form="released")
    A_ref, B_ref = hippo(measure, N, form="released")
    A, B_orig = reconstruct(Lambda, P, B, V)
    err_A = ((A - A_ref).norm() / A_ref.norm()).item()
    err_B = ((B_orig - B_ref).norm() / B_ref.norm()).item()
    assert err_A <= 1e-9 and err_B <= 1e-9, f"{measure} N={N}: rel err A {err_A:.2e}, B {err_B:.2e}"
    torch.testing.assert_close(V.conj().T @ V, torch.eye(N // 2, dtype=torch.complex128), atol=1e-10, rtol=0)
    torch.testing.assert_close(Lambda.real, torch.full((N // 2,), RELEASED_RE[measure], dtype=torch.float64),
                               atol=1e-12, rtol=0)


def _mode_signs(V1, V0):
    """+-1 per column with V1 = sign * V0 (both have a real first component; its sign is the solver's)."""
    return torch.where((V1 - V0).abs().sum(0) < (V1 + V0).abs().sum(0), 1.0, -1.0)


@pytest.mark.parametrize("N", (4, 16, 64))
def test_released_nplr_against_paper(N):
    # LegT: S halves, so the same eigenvectors with Lambda / 2, B~ / 2 and P~ / sqrt2
    L0, P0, B0, V0 = nplr("legt", N)
    L1, P1, B1, V1 = nplr("legt", N, form="released")
    torch.testing.assert_close(L1, L0 / 2, atol=1e-12, rtol=0)
    sign = _mode_signs(V1, V0)
    torch.testing.assert_close(V1, sign * V0, atol=1e-10, rtol=0)
    torch.testing.assert_close(B1, sign * B0 / 2, atol=1e-10, rtol=0)
    torch.testing.assert_close(P1, sign * P0 / math.sqrt(2), atol=1e-10, rtol=0)
    # LagT: the same skew part, the real part moves from -1/2 to 0
    L0, P0, B0, V0 = nplr("lagt", N)
    L1, P1, B1, V1 = nplr("lagt", N, form="released")
    torch.testing.assert_close(L1, L0 + 0.5, atol=1e-12, rtol=0)
    sign = _mode_signs(V1, V0)
    for a, b in ((P1, P0), (B1, B0), (V1, V0)):
        torch.testing.assert_close(a, sign * b, atol=1e-10, rtol=0)
    # LegS: the same
    assert all(torch.equal(a, b) for a, b in zip(nplr("legs", N), nplr("legs", N, form="released")))


@pytest.mark.parametrize("N", (4, 8, 64))
def test_released_fout_frequencies_and_dead_state(N):
    j = torch.arange(N // 2 - 1, 0, -1, dtype=torch.float64)  # descending, then the zero mode
    Lambda = nplr("fout", N, form="released")[0]
    expected = torch.complex(j.new_zeros(N // 2), torch.cat([math.pi * j, j.new_zeros(1)]))
    torch.testing.assert_close(Lambda, expected, atol=1e-12, rtol=0)
    Lambda = nplr("fout", N)[0]
    torch.testing.assert_close(Lambda.imag, torch.cat([2 * math.pi * j, j.new_zeros(1)]), atol=1e-12, rtol=0)
    # the released zero mode is the pair of the constant and the dead state, (e_0 -+ i e_1) / sqrt2
    _, _, B, V = nplr("fout", N, form="released")
    assert torch.allclose(V[:2, -1].abs(), torch.full((2,), 2**-0.5, dtype=torch.float64), atol=1e-12)
    assert V[2:, -1].abs().max() < 1e-12 and V[1, -1].real.abs() < 1e-12
    assert abs(B[-1].abs() - 2**-0.5) < 1e-12 and B[-1].imag.abs() < 1e-12  # V^* B, B = (1, 0, ...) there


def released_procedure(measure, N):
    """(Lambda, P~, B~) as S4's released nplr computes them from the released matrices: eigh of
    -1j S, the half with Im < 0 (ascending); one zero pair set to (e_0 + i e_1) / sqrt2."""
    A, B = hippo(measure, N, form="released")
    P = rank_correction(measure, N, form="released")
    S = A + P.T @ P
    mu, V = torch.linalg.eigh(-1j * S.to(torch.complex128))
    V, mu = V[:, : N // 2].clone(), mu[: N // 2]
    if mu[-1].abs() < 1e-4:
        V[:, -1] = 0
        V[0, -1], V[1, -1] = 2**-0.5, 2**-0.5 * 1j
    Vh = V.conj().T
    Lambda = torch.complex(torch.diagonal(S).mean().expand(N // 2), mu.to(torch.float64))
    return Lambda, (Vh @ P.T.to(torch.complex128)).T, Vh @ B.to(torch.complex128)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", (4, 16, 64))
def test_released_nplr_matches_the_released_procedure(measure, N):
    """Same modes (ours keep Im > 0: the conjugates); B~ and P~ agree up to a phase per mode, so the
    phase-free products B~ conj(P~_r) and |B~| agree (FouT's eigenvectors vanish at index 0, so the
    first-component phase rule leaves them as the solver gives them)."""
    Lambda, P, B, _ = nplr(measure, N, form="released")
    L_rel, P_rel, B_rel = released_procedure(measure, N)
    torch.testing.assert_close(Lambda, L_rel.conj(), atol=1e-9, rtol=0)
    torch.testing.assert_close(B.abs(), B_rel.abs(), atol=1e-9, rtol=0)
    torch.testing.assert_close(B * P.conj(), (B_rel * P_rel.conj()).conj(), atol=1e-9, rtol=0)


def test_fout_is_never_clipped():
    for form in FORMS:
        _, _, B, _ = nplr("fout", 256, form=form)
        assert B.abs().max() < 1.5, f"{form}: max |B~| {B.abs().max():.3f}"
        assert torch.equal(nplr("fout", 256, b_clip=2.0, form=form)[2], B)


@pytest.mark.parametrize("measure", MEASURES)
def test_paper_is_the_default(measure):
    for a, b in zip(hippo(measure, 8), hippo(measure, 8, form="paper")):
        assert torch.equal(a, b)
    assert torch.equal(rank_correction(measure, 8), rank_correction(measure, 8, form="paper"))
    for a, b in zip(nplr(measure, 8), nplr(measure, 8, form="paper")):
        assert torch.equal(a, b)


def test_released_and_paper_are_cached_apart():
    a = nplr("legt", 10)[0]
    b = nplr("legt", 10, form="released")[0]
    c = nplr("legt", 10)[0]
    assert torch.equal(a, c)
    torch.testing.assert_close(b, a / 2, atol=1e-12, rtol=0)


@pytest.mark.parametrize("bad", ["release", "Paper", None, 1])
def test_bad_form_is_refused(bad):
    for call in (lambda: hippo("legt", 4, form=bad), lambda: rank_correction("legt", 4, form=bad),
                 lambda: nplr("legt", 4, form=bad)):
        with pytest.raises(ValueError, match="form must be one of \\['paper', 'released'\\]"):
            call()
