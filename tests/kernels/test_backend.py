"""Dispatcher: availability, the auto rule and its one-time log, loud errors, input validation."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys

import pytest
import torch

import ssm.kernels as K
from ssm.kernels import backend as B

C64 = torch.complex64


def test_import_does_not_load_pykeops_or_compile():
    code = "import sys, ssm.kernels; sys.exit('pykeops' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"importing ssm.kernels imported pykeops: {result.stderr[-2000:]}"


def test_available_backends():
    avail = K.available_backends()
    assert list(avail) == ["ref", "torch", "keops", "cuda"]
    assert avail["ref"] and avail["torch"]
    assert avail["keops"] == (B.unavailable_reason("keops") is None)
    if not torch.cuda.is_available():
        assert avail["cuda"] is False
        assert "cuda" in B.unavailable_reason("cuda").lower() or "CUDA" in B.unavailable_reason("cuda")


def test_unknown_backend_lists_the_valid_ones():
    v = torch.ones(2, 3, dtype=C64)
    with pytest.raises(ValueError, match="backend must be one of.*'torch'.*got 'fast'"):
        K.vandermonde(v, v, 4, backend="fast")


@pytest.fixture
def fresh_keops_check():
    B._keops_reason.cache_clear()
    yield
    B._keops_reason.cache_clear()


def test_missing_keops_says_how_to_install(monkeypatch, fresh_keops_check):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(B.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pykeops" else real_find_spec(name, *a))
    assert K.available_backends()["keops"] is False
    v = torch.ones(2, 3, dtype=C64)
    with pytest.raises(K.BackendUnavailableError, match=r'pip install "structured-ssm\[keops\]"'):
        K.cauchy(v, torch.ones(4, dtype=C64), v, backend="keops")
    # auto never falls back silently to a backend that is missing: it picks torch and says why
    assert B.resolve_backend("auto", "cauchy", v, 1 << 30) == "torch"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_unavailable_is_an_error_with_a_reason():
    v = torch.ones(2, 3, dtype=C64)
    with pytest.raises((K.BackendUnavailableError, ValueError), match="cuda"):
        K.vandermonde(v, v, 4, backend="cuda")


def test_auto_rule_on_cpu():
    v = torch.ones(2, 3, dtype=C64)
    assert B.resolve_backend("auto", "cauchy", v, B.KEOPS_MIN_WORK - 1) == "torch"
    big = B.resolve_backend("auto", "cauchy", v, B.KEOPS_MIN_WORK)
    assert big == ("keops" if K.available_backends()["keops"] else "torch")
    for op in ("vandermonde", "vandermonde_transpose"):
        assert B.resolve_backend("auto", op, v, 1 << 30) == "torch"


def test_auto_choice_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(B, "_LOGGED", set())
    v = torch.randn(2, 3, dtype=C64)
    with caplog.at_level(logging.INFO, logger="ssm.kernels"):
        for _ in range(3):
            K.vandermonde(v, v, 5, conj=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "ssm.kernels"]
    assert len(lines) == 1 and "vandermonde" in lines[0] and "'torch'" in lines[0], lines


@pytest.mark.parametrize(
    "call,exc,pattern",
    [
        (lambda v: K.cauchy(v.real, torch.ones(4, dtype=C64), v), TypeError,
         "v must be complex64 or complex128"),
        (lambda v: K.cauchy(v, torch.ones(4, dtype=torch.complex128), v), TypeError,
         "z must have the same dtype"),
        (lambda v: K.cauchy(v, torch.ones(2, 4, dtype=C64), v), ValueError, r"z must be 1-D"),
        (lambda v: K.cauchy(v, torch.ones(0, dtype=C64), v), ValueError, r"L >= 1"),
        (lambda v: K.vandermonde(v[..., :0], v[..., :0], 3), ValueError, r"v must hold N >= 1"),
        (lambda v: K.cauchy(v, torch.ones(4, dtype=C64), v[..., :2]), ValueError, "share the last dim N"),
        (lambda v: K.cauchy(v, torch.ones(4, dtype=C64), torch.ones(5, 3, dtype=C64)), ValueError,
         "do not broadcast"),
        (lambda v: K.cauchy([1.0], torch.ones(4, dtype=C64), v), TypeError, "v must be a torch.Tensor"),
        (lambda v: K.vandermonde(v, v, 0), ValueError, "L must be >= 1, got 0"),
        (lambda v: K.vandermonde(v, v, 2.0), TypeError, "L must be an int"),
        (lambda v: K.vandermonde(v, v, True), TypeError, "L must be an int"),
        (lambda v: K.vandermonde(v, v.to(torch.complex128), 3), TypeError, "x must have the same dtype"),
        (lambda v: K.vandermonde_transpose(torch.ones(2, 5), v, v, 4), ValueError,
         r"u must have shape \(\.\.\., L\)"),
        (lambda v: K.vandermonde_transpose(torch.ones(2, 4, dtype=torch.float64), v, v, 4), TypeError,
         "u must be torch.float32 or torch.complex64"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, exc, pattern):
    v = torch.ones(2, 3, dtype=C64)
    with pytest.raises(exc, match=pattern):
        call(v)


def test_numpy_integer_length_is_accepted():
    np = pytest.importorskip("numpy")
    v = torch.randn(2, 3, dtype=C64)
    torch.testing.assert_close(K.vandermonde(v, v, np.int64(6)), K.vandermonde(v, v, 6))


def test_main_self_test_runs(capsys):
    from ssm.kernels.__main__ import main

    assert main(["--backends", "ref", "torch", "--no-timing"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "FAIL" not in out and "ok" in out


@pytest.fixture
def keops_gpu_probe(monkeypatch):
    """``set_probe(code)``: pretend pykeops found CUDA and make ``code`` the GPU self-check."""
    pykeops = pytest.importorskip("pykeops")
    monkeypatch.setattr(pykeops.config, "gpu_available", True, raising=False)
    monkeypatch.delenv("SSM_KEOPS_GPU_CHECK", raising=False)
    monkeypatch.setattr(B, "_cuda_reason", lambda: "no extension in this test")
    B._keops_gpu_reason.cache_clear()

    def set_probe(code: str) -> None:
        monkeypatch.setattr(B, "KEOPS_GPU_PROBE", code)
        B._keops_gpu_reason.cache_clear()

    yield set_probe
    B._keops_gpu_reason.cache_clear()


@pytest.mark.keops
def test_keops_gpu_crash_is_an_error_not_a_crash(keops_gpu_probe):
    """A GPU KeOps set-up whose first formula kills the process is found by the self-check in a child
    process: auto on CUDA tensors picks torch and says why; asking for keops raises with the reason."""
    keops_gpu_probe("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    reason = B._keops_gpu_reason()
    assert reason is not None and "SIGSEGV" in reason and "backend='cuda'" in reason
    choice, why = B._auto("cauchy", torch.device("cuda"), C64, 1 << 30)
    assert choice == "torch" and "SIGSEGV" in why
    keops_gpu_probe("import sys; sys.exit('formula failed to compile')")
    reason = B._keops_gpu_reason()
    assert "exited with status 1" in reason and "formula failed to compile" in reason


@pytest.mark.keops
def test_keops_gpu_passing_check_is_used_and_cached(keops_gpu_probe, tmp_path):
    marker = tmp_path / "runs"
    keops_gpu_probe(f"open({str(marker)!r}, 'a').write('x')")
    assert B._keops_gpu_reason() is None
    assert B._auto("vandermonde", torch.device("cuda"), C64, 1)[0] == "keops"
    assert B._keops_gpu_reason() is None
    assert marker.read_text() == "x", "the self-check runs once per process"


@pytest.mark.keops
def test_keops_gpu_check_can_be_skipped(keops_gpu_probe, monkeypatch):
    keops_gpu_probe("import sys; sys.exit(3)")
    monkeypatch.setenv("SSM_KEOPS_GPU_CHECK", "0")
    assert B._keops_gpu_reason() is None
