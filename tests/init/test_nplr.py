"""NPLR/DPLR form: reconstruction identity of the API, spectrum, odd sizes."""

import functools

import pytest
import torch

from ssm.init import MEASURES, hippo, rank_correction
from ssm.init import nplr as _nplr_uncached


@functools.lru_cache(maxsize=None)
def _cached(measure, N):
    return _nplr_uncached(measure, N)


def nplr(measure, N):
    return tuple(t.clone() for t in _cached(measure, N))

SIZES = (2, 4, 6, 16, 64, 100, 256)


def reconstruct(Lambda, P, B, V):
    p = 2 * (V @ P.T).real  # (N, rank)
    A = 2 * (V @ torch.diag(Lambda) @ V.conj().T).real - p @ p.T
    return A, 2 * (V @ B).real


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", SIZES)
def test_reconstructs_A_and_B(measure, N):
    Lambda, P, B, V = nplr(measure, N)
    rank = 2 if measure == "legt" else 1
    assert Lambda.shape == (N // 2,) and P.shape == (rank, N // 2)
    assert B.shape == (N // 2,) and V.shape == (N, N // 2)
    assert all(t.dtype == torch.complex128 for t in (Lambda, P, B, V))
    A_ref, B_ref = hippo(measure, N)
    A, B_orig = reconstruct(Lambda, P, B, V)
    err_A = ((A - A_ref).norm() / A_ref.norm()).item()
    err_B = ((B_orig - B_ref).norm() / B_ref.norm()).item()
    assert err_A <= 1e-9 and err_B <= 1e-9, f"{measure} N={N}: rel err A {err_A:.2e}, B {err_B:.2e}"
    # V has orthonormal columns, orthogonal to their conjugates (the other half)
    eye = torch.eye(N // 2, dtype=torch.complex128)
    torch.testing.assert_close(V.conj().T @ V, eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(V.T @ V, torch.zeros_like(eye), atol=1e-10, rtol=0)
    # each column is an eigenvector of the normal part S
    S = A_ref + rank_correction(measure, N).T @ rank_correction(measure, N)
    resid = S.to(torch.complex128) @ V - V * Lambda
    assert resid.abs().max() <= 1e-9 * S.abs().max(), f"eigen-residual {resid.abs().max():.2e}"


@pytest.mark.parametrize("N", SIZES)
def test_real_parts(N):
    for measure, re in (("legs", -0.5), ("lagt", -0.5), ("legt", 0.0), ("fout", 0.0)):
        Lambda = nplr(measure, N)[0]
        expected = torch.full((N // 2,), re, dtype=torch.float64)
        torch.testing.assert_close(Lambda.real, expected, atol=1e-12, rtol=0)
        assert (Lambda.imag >= 0).all()


def test_legs_eigenvalues_match_dense_eig_small_N():
    """For small N the general eigensolver is still accurate: compare the spectra of S."""
    N = 8
    A, _ = hippo("legs", N)
    P = rank_correction("legs", N)
    ev = torch.linalg.eigvals(A + P.T @ P)
    ev = ev[ev.imag > 0]
    Lambda = nplr("legs", N)[0]
    torch.testing.assert_close(
        torch.sort(Lambda.imag).values, torch.sort(ev.imag).values, atol=1e-10, rtol=0
    )


def test_fout_zero_modes_are_paired():
    # FouT's skew part has two zero eigenvalues for even N (the constant and the unpaired cosine)
    Lambda = nplr("fout", 8)[0]
    assert (Lambda.abs() < 1e-12).sum() == 1
    torch.testing.assert_close(
        torch.sort(Lambda.imag).values[1:], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) * 2 * torch.pi
    )


def test_odd_and_bad_N_raise():
    with pytest.raises(ValueError, match="N must be even"):
        _nplr_uncached("legs", 7)
    with pytest.raises(ValueError, match="measure must be one of"):
        _nplr_uncached("chebyshev", 8)


def test_nplr_results_are_cached_and_independent():
    from ssm.init.dplr import _nplr_cached

    _nplr_cached.cache_clear()
    first = _nplr_uncached("legs", 32)
    first[0].zero_()  # callers may modify what they get
    second = _nplr_uncached("legs", 32)
    info = _nplr_cached.cache_info()
    assert info.hits == 1 and info.misses == 1, info
    assert torch.allclose(second[0].real, torch.full((16,), -0.5, dtype=torch.float64)), "a modified result leaked"
