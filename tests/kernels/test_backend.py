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
    # the command that works before the package is on the index, naming the extra of our distribution
    with pytest.raises(K.BackendUnavailableError,
                       match=r'pip install "pykeops>=2\.2" \(the \[keops\] extra of structured-ssm'):
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


def test_main_timing_flags(capsys):
    """--threads sets torch's thread count for the run; the table names it and the load average."""
    from ssm.kernels.__main__ import main

    before = torch.get_num_threads()
    try:
        code = main(["--backends", "ref", "torch", "--H", "2", "--N", "4", "--L", "16", "--threads", "1",
                     "--min-run-time", "0.01"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "torch threads 1 (" in out and "load average" in out, out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(OPS_PREFIXES)]
    timed = [r for r in rows if len(r) >= 5 and r[3] == "ms"]
    assert len(timed) == 9, out  # 3 ops x (ref, torch, auto)
    for r in timed:  # "runs" column: blocks x calls per block, both >= 1
        blocks, calls = (int(n) for n in r[4].split("x"))
        assert blocks >= 1 and calls >= 1, r


OPS_PREFIXES = ("cauchy ", "vandermonde ", "vandermonde_transpose ")


@pytest.mark.parametrize("flag", [["--threads", "0"], ["--min-run-time", "0"], ["--threads", "two"]])
def test_main_rejects_bad_timing_flags(flag, capsys):
    from ssm.kernels.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(["--no-timing", *flag])
    assert info.value.code == 2
    assert flag[0] in capsys.readouterr().err


def _imported_modules(path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("ssm."):
            names.add(node.value)  # importlib.import_module("ssm.kernels....")
    return names


def test_backend_and_cuda_modules_depend_one_way():
    """backend.py imports cuda.py on demand; cuda.py (and the shared checks) never import backend.py."""
    from pathlib import Path

    root = Path(K.__file__).parent
    assert "ssm.kernels.cuda" in _imported_modules(root / "backend.py")
    for name in ("cuda.py", "_common.py", "_ext.py"):
        imported = _imported_modules(root / name)
        assert not {"ssm.kernels.backend", "backend"} & imported, f"{name} imports backend.py: {imported}"


def test_broadcast_gradients_are_summed_to_input_shapes():
    """Size-1 and missing batch dims broadcast in the torch path; their gradients sum back (as ref)."""
    g = torch.Generator().manual_seed(3)
    v = torch.randn(3, 1, 5, dtype=torch.complex128, generator=g)
    x = -torch.rand(2, 5, dtype=torch.float64, generator=g) + 1j * torch.rand(2, 5, dtype=torch.float64, generator=g)
    u = torch.randn(4, 1, 2, 7, dtype=torch.float64, generator=g)
    for fn in (lambda b, v_, x_, u_: K.vandermonde(v_, x_, 7, backend=b),
               lambda b, v_, x_, u_: K.vandermonde_transpose(u_, v_, x_, 7, backend=b)):
        grads = {}
        for b in ("ref", "torch"):
            ins = [t.clone().requires_grad_() for t in (v, x, u)]
            out = fn(b, *ins)
            seed = torch.Generator().manual_seed(4)
            gout = torch.randn(out.shape, dtype=out.dtype, generator=seed)
            grads[b] = torch.autograd.grad(out, ins, gout, allow_unused=True)
        for want, got, t in zip(grads["ref"], grads["torch"], (v, x, u)):
            if want is None:
                assert got is None
                continue
            assert got.shape == t.shape
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
