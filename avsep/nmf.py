"""Batched non-negative matrix factorisation in PyTorch.

Factors many spectrogram chunks at once, ``V ≈ W H`` with ``V`` of shape
``(nb_chunks, nb_bins, nb_frames)``, by the multiplicative updates for the beta divergence
(Févotte & Idier, "Algorithms for nonnegative matrix factorization with the
beta-divergence", Neural Computation 2011): beta=1 is Kullback-Leibler (the default, as in
Gao et al. 2018), beta=2 Euclidean, beta=0 Itakura-Saito, any other beta general. Each
iteration updates W then H, the order scikit-learn's ``solver='mu'`` uses, so both give the
same iterates from the same start. With ``fixed_w`` only H is learned (guided NMF).
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["LOSSES", "NMFResult", "beta_divergence", "init_factors", "nmf"]

#: Loss names and their beta.
LOSSES = {"kl": 1.0, "euclidean": 2.0, "itakura_saito": 0.0}


def _beta(loss: str | float) -> float:
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown NMF loss {loss!r}; expected one of {sorted(LOSSES)} or a number (beta)")
        return LOSSES[loss]
    return float(loss)


@dataclasses.dataclass
class NMFResult:
    """Output of :func:`nmf`.

    Attributes:
        W: bases, shape ``(nb_chunks, nb_bins, nb_components)``.
        H: activations, shape ``(nb_chunks, nb_components, nb_frames)``.
        objective: final beta divergence per chunk, shape ``(nb_chunks,)``.
        n_iter: iterations run (the batch stops when every chunk has converged).
    """

    W: torch.Tensor
    H: torch.Tensor
    objective: torch.Tensor
    n_iter: int


def beta_divergence(V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, loss="kl", eps: float = 1e-12) -> torch.Tensor:
    """Beta divergence ``D(V | W H)`` summed over each chunk.

    Args:
        V: ``(nb_chunks, nb_bins, nb_frames)``, non-negative.
        W: ``(nb_chunks, nb_bins, nb_components)``.
        H: ``(nb_chunks, nb_components, nb_frames)``.

    Returns:
        ``(nb_chunks,)``. Euclidean is ``0.5 * ||V - WH||²``, as in scikit-learn.
    """
    beta = _beta(loss)
    WH = W @ H
    if beta == 2.0:
        return 0.5 * ((V - WH) ** 2).sum(dim=(1, 2))
    WH = WH.clamp_min(eps)
    if beta == 1.0:
        # 0 log 0 = 0: zero entries of V contribute WH only.
        Vs = V.clamp_min(eps)
        return torch.where(V > 0, V * torch.log(Vs / WH), 0.0).sum(dim=(1, 2)) + (WH - V).sum(dim=(1, 2))
    Vs = V.clamp_min(eps)
    if beta == 0.0:
        ratio = Vs / WH
        return (ratio - torch.log(ratio) - 1).sum(dim=(1, 2))
    div = Vs**beta + (beta - 1) * WH**beta - beta * Vs * WH ** (beta - 1)
    return div.sum(dim=(1, 2)) / (beta * (beta - 1))


def init_factors(
    V: torch.Tensor, n_components: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random non-negative start, scaled like scikit-learn's ``init='random'``:
    ``sqrt(mean(V) / n_components) * |N(0, 1)|`` per chunk.

    Returns:
        W ``(nb_chunks, nb_bins, n_components)`` and H ``(nb_chunks, n_components, nb_frames)``.
    """
    B, F, N = V.shape
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    scale = torch.sqrt(V.mean(dim=(1, 2)).clamp_min(1e-12) / n_components).cpu()
    W = torch.randn(B, F, n_components, generator=gen, dtype=V.dtype).abs_() * scale[:, None, None]
    H = torch.randn(B, n_components, N, generator=gen, dtype=V.dtype).abs_() * scale[:, None, None]
    return W.to(V.device), H.to(V.device)


def _gamma(beta: float) -> float:
    """Exponent that makes the multiplicative update monotone (Févotte & Idier 2011)."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


class _Workspace:
    """Buffers reused across iterations. Allocating a fresh (chunks, bins, frames) tensor per
    operation costs more than the arithmetic on a CPU (page faults on new memory), so the
    updates write into these with ``out=`` and in-place ops."""

    def __init__(self, V: torch.Tensor, M: int):
        B, F, N = V.shape
        self.big = torch.empty_like(V)
        self.big2 = torch.empty_like(V)
        self.num_w = V.new_empty(B, F, M)
        self.den_w = V.new_empty(B, F, M)
        self.num_h = V.new_empty(B, M, N)
        self.den_h = V.new_empty(B, M, N)


def _ratio(V, W, H, beta, eps, ws):
    """Fill ``ws.big`` with ``(WH)^(beta-2) * V`` and, unless beta is 1 or 2, ``ws.big2``
    with ``(WH)^(beta-1)``; for beta=2 ``ws.big`` is V itself."""
    if beta == 2.0:
        return V, None
    # W and H are floored at eps, so WH > 0 and needs no clamp of its own.
    WH = torch.bmm(W, H, out=ws.big)
    if beta == 1.0:
        return torch.div(V, WH, out=WH), None
    torch.pow(WH, beta - 1, out=ws.big2)
    WH.pow_(beta - 2).mul_(V)
    return WH, ws.big2


def _update_w(V, W, H, beta, eps, ws):
    R, P = _ratio(V, W, H, beta, eps, ws)
    Ht = H.transpose(1, 2)
    num = torch.bmm(R, Ht, out=ws.num_w)
    if beta == 1.0:
        den = H.sum(dim=2, keepdim=True).transpose(1, 2)
    elif beta == 2.0:
        den = torch.bmm(W, H @ Ht, out=ws.den_w)
    else:
        den = torch.bmm(P, Ht, out=ws.den_w)
    delta = num.div_(den)  # den > 0: W and H are floored at eps
    g = _gamma(beta)
    return W.mul_(delta.pow_(g) if g != 1.0 else delta).clamp_min_(eps)


def _update_h(V, W, H, beta, eps, ws):
    R, P = _ratio(V, W, H, beta, eps, ws)
    Wt = W.transpose(1, 2)
    num = torch.bmm(Wt, R, out=ws.num_h)
    if beta == 1.0:
        den = W.sum(dim=1, keepdim=True).transpose(1, 2)
    elif beta == 2.0:
        den = torch.bmm(Wt @ W, H, out=ws.den_h)
    else:
        den = torch.bmm(Wt, P, out=ws.den_h)
    delta = num.div_(den)
    g = _gamma(beta)
    return H.mul_(delta.pow_(g) if g != 1.0 else delta).clamp_min_(eps)


@torch.no_grad()
def nmf(
    V: torch.Tensor,
    n_components: int | None = None,
    *,
    loss: str | float = "kl",
    n_iter: int = 200,
    tol: float = 1e-4,
    W: torch.Tensor | None = None,
    H: torch.Tensor | None = None,
    fixed_w: bool = False,
    seed: int = 0,
    eps: float = 1e-10,
    check_every: int = 10,
    block_size: int | None = None,
) -> NMFResult:
    """Factor every chunk of ``V`` as ``W @ H`` with multiplicative updates.

    Args:
        V: ``(nb_chunks, nb_bins, nb_frames)`` non-negative magnitudes (or a 2-D
            ``(nb_bins, nb_frames)`` matrix, treated as one chunk).
        n_components: M, bases per chunk; taken from ``W`` when it is given.
        loss: ``"kl"`` (default), ``"euclidean"``, ``"itakura_saito"`` or a beta (float).
        n_iter: maximum iterations.
        tol: stop once every chunk's relative objective decrease over ``check_every``
            iterations, ``(previous - current) / initial``, is below ``tol``. 0 runs all
            ``n_iter``.
        W: initial (or, with ``fixed_w``, fixed) bases ``(nb_chunks or 1, nb_bins, M)``.
        H: initial activations ``(nb_chunks, M, nb_frames)``.
        fixed_w: learn H only; W is returned untouched (guided NMF).
        seed: seed of the random start of the factors not given.
        eps: floor of W, H and the update denominators, so that silent chunks and zero
            rows of a fixed W stay finite.
        check_every: iterations between convergence checks.
        block_size: chunks factored together (default: sized for the CPU caches). Results do
            not depend on it, except that ``tol`` is checked per block.

    Returns:
        :class:`NMFResult`.
    """
    squeeze = V.dim() == 2
    if squeeze:
        V = V.unsqueeze(0)
        W = None if W is None else (W.unsqueeze(0) if W.dim() == 2 else W)
        H = None if H is None else (H.unsqueeze(0) if H.dim() == 2 else H)
    if V.dim() != 3:
        raise ValueError(f"V must be (nb_chunks, nb_bins, nb_frames), got shape {tuple(V.shape)}")
    if not torch.isfinite(V).all() or (V < 0).any():
        raise ValueError("V must be finite and non-negative")
    if fixed_w and W is None:
        raise ValueError("fixed_w needs W")
    beta = _beta(loss)
    B, F, N = V.shape
    M = W.shape[-1] if W is not None else n_components
    if M is None or M < 1:
        raise ValueError("give n_components or W")
    W0, H0 = init_factors(V, M, seed=seed)
    if W is None:
        W = W0
    else:
        if W.shape[-2] != F or W.shape[0] not in (1, B):
            raise ValueError(f"W has shape {tuple(W.shape)}; expected ({B} or 1, {F}, {M})")
        W = W.to(V)
        if not fixed_w:
            # Updated in place below: never touch the caller's tensor.
            W = W.expand(B, F, M).clone()
    H = (H0 if H is None else H.to(V).clone()).clamp_min_(eps)
    if H.shape != (B, M, N):
        raise ValueError(f"H has shape {tuple(H.shape)}; expected ({B}, {M}, {N})")
    # Factors are kept at or above eps, so W H never vanishes and V / (W H) stays finite
    # without clamping the large (bins x frames) product. A fixed W is floored in a copy.
    W_given = W
    W = W.clamp_min(eps) if fixed_w else W.clamp_min_(eps)
    if fixed_w and W.shape[0] == 1:
        # One dictionary for every chunk: the chunks side by side in time are one matrix,
        # and H of each chunk is its block of columns. One large product beats B small ones.
        V_wide = V.transpose(0, 1).reshape(1, F, B * N)
        H_wide = H.transpose(0, 1).reshape(1, M, B * N).contiguous()
        H_wide, it = _iterate(V_wide, W, H_wide, True, beta, n_iter, tol, eps, check_every)
        H = H_wide.reshape(M, B, N).transpose(0, 1).contiguous()
    else:
        it = 0
        for lo in range(0, B, block_size or _block_size(F, N)):
            sl = slice(lo, lo + (block_size or _block_size(F, N)))
            W_b = W[sl] if W.shape[0] == B else W
            H_b = H[sl]
            H[sl], n = _iterate(V[sl], W_b, H_b, fixed_w, beta, n_iter, tol, eps, check_every)
            it = max(it, n)
    W_full = W.expand(B, F, M)
    objective = beta_divergence(V, W_full, H, beta, eps)
    if fixed_w:
        W = W_given
    if squeeze:
        return NMFResult(W.expand(B, F, M)[0], H[0], objective, it)
    return NMFResult(W, H, objective, it)


def _block_size(n_bins: int, n_frames: int) -> int:
    """Chunks factored together: blocks of about 500,000 (chunk, bin, frame) entries, so
    that the (chunks, bins, frames) buffers stay in the CPU caches (the benchmark:
    ``python -m avsep.bench.nmf``)."""
    return max(1, round(500_000 / (n_bins * n_frames)))


def _iterate(V, W, H, fixed_w, beta, n_iter, tol, eps, check_every):
    """Run the updates on one block in place; returns ``(H, iterations run)``. W is updated
    in place unless ``fixed_w``."""
    ws = _Workspace(V, W.shape[-1])
    W_full = W.expand(V.shape[0], *W.shape[1:])
    initial = beta_divergence(V, W_full, H, beta).clamp_min(eps) if tol > 0 else None
    previous = initial
    it = 0
    for it in range(1, n_iter + 1):
        if not fixed_w:
            _update_w(V, W, H, beta, eps, ws)
        _update_h(V, W_full, H, beta, eps, ws)
        if tol > 0 and it % check_every == 0:
            current = beta_divergence(V, W_full, H, beta)
            if bool(((previous - current) / initial < tol).all()):
                break
            previous = current
    return H, it
