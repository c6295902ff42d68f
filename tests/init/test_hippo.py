"""HiPPO matrices against closed forms written elementwise, and small hand-derived cases."""

import math

import pytest
import torch

from ssm.init import MEASURES, hippo, rank_correction


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def legs_loop(N):
    A = [[0.0] * N for _ in range(N)]
    for n in range(N):
        for k in range(N):
            if n > k:
                A[n][k] = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1)
            elif n == k:
                A[n][k] = -(n + 1.0)
    return _t(A), _t([math.sqrt(2 * n + 1) for n in range(N)])


def legt_loop(N):
    A = [[0.0] * N for _ in range(N)]
    for n in range(N):
        for k in range(N):
            s = 1.0 if n >= k else (-1.0) ** (n - k)
            A[n][k] = -math.sqrt((2 * n + 1) * (2 * k + 1)) * s
    return _t(A), _t([math.sqrt(2 * n + 1) for n in range(N)])


def lagt_loop(N):
    A = [[-1.0 if n >= k else 0.0 for k in range(N)] for n in range(N)]
    return _t(A), _t([1.0] * N)


def fout_loop(N):
    # index 0: constant; 2j-1: sqrt2 cos(2 pi j x); 2j: sqrt2 sin(2 pi j x)
    B = [1.0 if n == 0 else (math.sqrt(2) if n % 2 == 1 else 0.0) for n in range(N)]
    A = [[-B[n] * B[k] for k in range(N)] for n in range(N)]
    for n in range(N):
        for k in range(N):
            if n % 2 == 1 and k == n + 1:
                A[n][k] += 2 * math.pi * ((n + 1) // 2)
            if n % 2 == 0 and n > 0 and k == n - 1:
                A[n][k] -= 2 * math.pi * (n // 2)
    return _t(A), _t(B)


LOOPS = {"legs": legs_loop, "legt": legt_loop, "lagt": lagt_loop, "fout": fout_loop}


@pytest.mark.parametrize("measure", MEASURES)
def test_closed_form_all_sizes(measure):
    for N in range(1, 65):
        A, B = hippo(measure, N)
        assert A.dtype == torch.float64 and B.dtype == torch.float64
        assert A.shape == (N, N) and B.shape == (N,)
        A_ref, B_ref = LOOPS[measure](N)
        torch.testing.assert_close(A, A_ref, rtol=1e-15, atol=1e-13, msg=f"{measure} A, N={N}")
        torch.testing.assert_close(B, B_ref, rtol=1e-15, atol=1e-13, msg=f"{measure} B, N={N}")


def test_hand_derived_small_cases():
    s3 = math.sqrt(3.0)
    A, B = hippo("legs", 2)
    torch.testing.assert_close(A, torch.tensor([[-1.0, 0.0], [-s3, -2.0]], dtype=torch.float64))
    torch.testing.assert_close(B, torch.tensor([1.0, s3], dtype=torch.float64))
    A, B = hippo("legt", 2)
    torch.testing.assert_close(A, torch.tensor([[-1.0, s3], [-s3, -3.0]], dtype=torch.float64))
    A, _ = hippo("lagt", 3)
    torch.testing.assert_close(
        A, torch.tensor([[-1.0, 0, 0], [-1, -1, 0], [-1, -1, -1]], dtype=torch.float64)
    )
    # FouT, N = 3: constant, cos(2 pi x), sin(2 pi x); c_cos' = 2 pi c_sin + sqrt2 (f(t) - f(t-1))
    r2, tp = math.sqrt(2.0), 2 * math.pi
    A, B = hippo("fout", 3)
    A_ref = torch.tensor([[-1.0, -r2, 0], [-r2, -2, tp], [0, -tp, 0]], dtype=torch.float64)
    torch.testing.assert_close(A, A_ref)
    torch.testing.assert_close(B, torch.tensor([1.0, r2, 0.0], dtype=torch.float64))


def _fout_coeffs(f, t, N, M=4096):
    """c_n(t) = int_{t-1}^t f(s) p_n(s - t + 1) ds by the (spectrally exact) periodic rectangle rule."""
    x = torch.arange(M, dtype=torch.float64) / M
    fx = f(x + t - 1)
    basis = [torch.ones_like(x)]
    for j in range(1, N // 2 + 1):
        w = 2 * math.pi * j * x
        basis += [math.sqrt(2) * torch.cos(w), math.sqrt(2) * torch.sin(w)]
    return torch.stack([(fx * b).mean() for b in basis[:N]])


def test_fout_ode_is_exact_inside_the_basis():
    """For a period-1 trigonometric f in the span of the basis, FouT's ODE is exact:
    dc/dt (finite difference of the windowed projection) equals A c + B f(t)."""
    N = 5

    def f(s):
        return 0.3 + 0.7 * math.sqrt(2) * torch.cos(2 * math.pi * s) - 0.4 * math.sqrt(2) * torch.sin(
            4 * math.pi * s + 0.5
        )

    A, B = hippo("fout", N)
    t, h = 0.37, 1e-5
    c = _fout_coeffs(f, t, N)
    dc_fd = (_fout_coeffs(f, t + h, N) - _fout_coeffs(f, t - h, N)) / (2 * h)
    dc = A @ c + B * f(torch.tensor(t, dtype=torch.float64))
    torch.testing.assert_close(dc, dc_fd, atol=1e-7, rtol=0)


@pytest.mark.parametrize("measure", MEASURES)
def test_rank_correction_makes_normal(measure):
    for N in (1, 2, 7, 32):
        A, _ = hippo(measure, N)
        P = rank_correction(measure, N)
        S = A + P.T @ P
        K = S - torch.diagonal(S).mean() * torch.eye(N, dtype=torch.float64)
        torch.testing.assert_close(K, -K.T, atol=1e-12, rtol=0)
        torch.testing.assert_close(S @ S.T, S.T @ S, atol=1e-9 * N * N, rtol=1e-12)
    assert rank_correction("legt", 4).shape == (2, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="legs.*legt.*lagt.*fout"):
        hippo("legendre", 4)
    with pytest.raises(ValueError, match="N must be >= 1"):
        hippo("legs", 0)
    with pytest.raises(TypeError, match="N must be an int"):
        hippo("legs", 4.0)
