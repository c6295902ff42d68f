"""Linear recurrences ``x_k = a_k x_{k-1} + b_k`` computed with a parallel associative scan (S5).

S5 (Smith, Warrington, Linderman, arXiv 2208.04933, Sec. 2.2 and App. H) evaluates its diagonal
recurrence with the associative operator ``(a_i, b_i) o (a_j, b_j) = (a_j a_i, a_j b_i + b_j)``
(``i`` before ``j``), whose prefix combination gives every state in ``O(log L)`` parallel steps.

Three functions, one recurrence:

* :func:`scan_ref` - the plain sequential loop, the ground truth of the tests.
* :func:`associative_scan` - a Hillis-Steele scan with the operator above for time-varying
  coefficients ``a`` of shape ``(..., L)``: ``ceil(log2 L)`` levels, each a handful of torch ops over
  the whole sequence; autograd runs through the torch ops.
* :func:`scan` - the fast path for the time-invariant case that S5 needs (``a`` constant along the
  sequence), organized as the classic three-phase blocked parallel scan. (1) The sequence is cut
  into chunks of ``T`` steps and every chunk is scanned locally from a zero state: the local prefix
  combination ``x_local[k] = sum_{j<=k} a^(k-j) b[j]`` is a lower-triangular Toeplitz product, done
  for all chunks and rows at once by one batched matmul (a CPU's BLAS runs this far faster than
  ``log2 T`` Hillis-Steele passes over memory). (2) The chunk totals (chunk-end states) obey the
  same recurrence with coefficient ``a^T``; :func:`associative_scan` combines them in
  ``ceil(log2(L / T))`` levels. (3) Every position receives its carry ``a^(t+1) h_{c-1}``.
  Autograd keeps ``O(numel(b))`` saved activations (a few copies of the input), not
  ``O(numel(b) log L)``.

Complex inputs are expected (complex64 or complex128); real inputs also work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["scan", "scan_ref", "associative_scan"]

DEFAULT_CHUNK = 32


def _check(a: Tensor, b: Tensor, x0: Tensor | None, name: str) -> None:
    if not isinstance(b, Tensor):
        raise TypeError(f"{name}: b must be a tensor of shape (..., L); got {type(b).__name__}")
    if b.dim() < 1:
        raise ValueError(f"{name}: b must be a tensor of shape (..., L); got {tuple(b.shape)}")
    if b.shape[-1] < 1:
        raise ValueError(f"{name}: b must have a length L >= 1 (last dim); got shape {tuple(b.shape)}")
    if not (b.is_floating_point() or b.is_complex()):
        raise TypeError(f"{name}: b must be a floating-point or complex tensor; got {b.dtype}")
    if not isinstance(a, Tensor):
        raise TypeError(f"{name}: a must be a tensor; got {type(a).__name__}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: a and b must share a dtype; got a {a.dtype} and b {b.dtype}")
    if x0 is not None:
        if not isinstance(x0, Tensor):
            raise TypeError(f"{name}: x0 must be None or a tensor; got {type(x0).__name__}")
        if x0.dtype != b.dtype:
            raise TypeError(f"{name}: x0 must have b's dtype {b.dtype}; got {x0.dtype}")
        try:
            fits = torch.broadcast_shapes(x0.shape, b.shape[:-1]) == b.shape[:-1]
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{name}: x0 must broadcast to b.shape[:-1] = {tuple(b.shape[:-1])}; "
                             f"got shape {tuple(x0.shape)}")
    devices = {t.device for t in (a, b, x0) if t is not None}
    if len(devices) > 1:
        raise ValueError(f"{name}: a, b and x0 must be on one device; got {sorted(map(str, devices))}")


def _broadcast(a: Tensor, b: Tensor, name: str) -> torch.Size:
    try:
        return torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(f"{name}: a of shape {tuple(a.shape)} does not broadcast with b of shape "
                         f"{tuple(b.shape)}") from err


def scan_ref(a: Tensor, b: Tensor, x0: Tensor | None = None) -> Tensor:
    """Sequential reference: ``x_k = a_k * x_{k-1} + b_k`` with ``x_{-1} = x0`` (zero if None).

    Args:
        a: coefficients broadcastable to ``b``: ``(..., L)`` time-varying, or ``(..., 1)`` constant.
        b: inputs ``(..., L)``.
        x0: initial state broadcastable to ``b.shape[:-1]``, or None.
    Returns:
        ``x`` of shape ``broadcast(a, b).shape`` with the state after every step.
    """
    _check(a, b, x0, "scan_ref")
    shape = _broadcast(a, b, "scan_ref")
    a, b = a.expand(shape), b.expand(shape)
    x = torch.zeros(shape[:-1], dtype=b.dtype, device=b.device) if x0 is None else x0.expand(shape[:-1])
    out = []
    for k in range(shape[-1]):
        x = a[..., k] * x + b[..., k]
        out.append(x)
    return torch.stack(out, dim=-1)


def associative_scan(a: Tensor, b: Tensor) -> Tensor:
    """Hillis-Steele inclusive scan of ``(a, b)`` pairs; returns the ``b`` component (the states).

    Level ``s`` (``s = 1, 2, 4, ...``) combines each element with the one ``s`` before it,
    ``(a_k, b_k) <- (a_k a_{k-s}, a_k b_{k-s} + b_k)``; after ``ceil(log2 L)`` levels element ``k``
    holds the combination of elements ``0..k``, i.e. ``x_k`` with ``x_{-1} = 0``.

    Args:
        a: ``(..., L)`` coefficients (broadcastable to ``b``).
        b: ``(..., L)`` inputs.
    Returns:
        ``(..., L)`` states.
    """
    _check(a, b, None, "associative_scan")
    shape = _broadcast(a, b, "associative_scan")
    a, b = a.expand(shape), b.expand(shape)
    L = shape[-1]
    s = 1
    while s < L:
        b = torch.cat([b[..., :s], torch.addcmul(b[..., s:], a[..., s:], b[..., :-s])], dim=-1)
        if 2 * s < L:  # the last level needs no new coefficients
            a = torch.cat([a[..., :s], a[..., s:] * a[..., :-s]], dim=-1)
        s *= 2
    return b


def _powers(a: Tensor, n: int) -> Tensor:
    """``a^0 .. a^n`` stacked on a new last dim, by doubling: ``a^(m+1..2m) = a^(1..m) * a^m``.

    Only products, in forward and backward: exact for ``a == 0`` (unlike ``exp(t log a)``), and no
    division by ``a`` in backward, which ``torch.cumprod``'s gradient does and which overflows to
    inf/NaN where ``|a|`` is subnormal (e.g. ``Lambda_bar = exp(dt Lambda)`` with
    ``dt Re(Lambda)`` in about ``(-103, -87)`` in single precision, ``(-745, -708)`` in double).
    """
    pw = torch.stack([torch.ones_like(a), a], dim=-1)
    while pw.shape[-1] < n + 1:
        pw = torch.cat([pw, pw[..., 1:] * pw[..., -1:]], dim=-1)
    return pw[..., : n + 1]


def scan(a: Tensor, b: Tensor, x0: Tensor | None = None, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """Time-invariant recurrence ``x_k = a * x_{k-1} + b_k`` along the last dimension of ``b``.

    Blocked parallel scan (see the module docstring): one batched Toeplitz matmul inside chunks of
    ``chunk_size`` steps, :func:`associative_scan` across the ``ceil(L / chunk_size)`` chunk totals,
    then one carry update.

    Args:
        a: ``(...)`` coefficients, constant along the sequence, broadcastable to ``b.shape[:-1]``
            (e.g. ``(N, 1)`` against ``b`` of shape ``(N, batch, L)``).
        b: ``(..., L)`` inputs.
        x0: initial state broadcastable to ``b.shape[:-1]``, or None for zero.
        chunk_size: ``T``, steps per chunk (``>= 1``); changes speed only, not the result.
            ``1`` runs :func:`associative_scan` over the whole sequence (``log2 L`` levels).
    Returns:
        ``(..., L)`` states, same shape as ``b``.
    """
    _check(a, b, x0, "scan")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"scan: chunk_size must be a positive int; got {chunk_size!r} "
                        f"({type(chunk_size).__name__})")
    if chunk_size < 1:
        raise ValueError(f"scan: chunk_size must be a positive int; got {chunk_size!r}")
    batch = b.shape[:-1]
    try:
        torch.broadcast_shapes(a.shape, batch)
    except RuntimeError as err:
        raise ValueError(
            f"scan: a (constant along the sequence) must broadcast to b.shape[:-1] = {tuple(batch)}; "
            f"got a of shape {tuple(a.shape)}"
        ) from err
    if torch.broadcast_shapes(a.shape, batch) != batch:
        raise ValueError(f"scan: a of shape {tuple(a.shape)} would enlarge b's batch shape {tuple(batch)}")
    L = b.shape[-1]
    if b.numel() == 0:  # an empty batch: nothing to scan (the chunk reshapes below need rows)
        return b * a.unsqueeze(-1)
    if x0 is not None:
        # x_0 = a x0 + b_0: fold the initial state into the first input (exact).
        b = torch.cat([(b[..., 0] + a * x0).unsqueeze(-1), b[..., 1:]], dim=-1)

    # Align a with b's batch dims and drop its trailing broadcast (size-1) dims: those dims are
    # merged with the chunk dimension, so one (T, T) matrix serves all of them in one matmul.
    a = a.reshape((1,) * (len(batch) - a.dim()) + tuple(a.shape))
    r = len(batch)
    while r > 0 and a.shape[r - 1] == 1:
        r -= 1
    a = a.reshape(a.shape[:r])  # (*lead,)

    if chunk_size == 1:  # no chunks: the plain Hillis-Steele scan over the whole sequence
        return associative_scan(a.reshape(a.shape + (1,) * (b.dim() - r)), b)
    T = min(chunk_size, L)
    n_chunks = -(-L // T)
    pad = n_chunks * T - L
    if pad:
        b = F.pad(b, (0, pad))  # trailing zeros cannot change earlier states
    lead = batch[:r]
    bc = b.reshape(*lead, -1, T)  # (*lead, rows * chunks, T); rows are the merged broadcast dims

    pw = _powers(a, T)  # (*lead, T + 1): a^0 .. a^T
    idx = torch.arange(T, device=b.device)
    diff = idx[:, None] - idx[None, :]  # k - j
    toeplitz = pw[..., diff.clamp(min=0)] * (diff >= 0).to(pw.dtype)  # (*lead, T, T): a^(k-j), k >= j
    x_local = torch.matmul(bc, toeplitz.transpose(-1, -2))  # x_local[..., k] = sum_j M[k, j] b[..., j]

    if n_chunks > 1:
        x_local = x_local.reshape(*lead, -1, n_chunks, T)
        ends = x_local[..., -1]  # (*lead, rows, chunks) chunk-end states from zero start
        # the chunk-end states obey the same recurrence with coefficient a^T: log-depth scan over
        # the chunks (small elementwise ops; no tiny matmuls, which stall on a busy CPU)
        h = associative_scan(pw[..., T].reshape(*a.shape, 1, 1), ends)  # true states at chunk ends
        h_prev = F.pad(h[..., :-1], (1, 0))  # state entering each chunk
        # x[c, t] = x_local[c, t] + a^(t+1) h_{c-1}
        x_local = torch.addcmul(x_local, h_prev.unsqueeze(-1), pw[..., 1:].reshape(*a.shape, 1, 1, T))
    x = x_local.reshape(*batch, n_chunks * T)
    return x[..., :L] if pad else x
