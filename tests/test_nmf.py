"""The batched NMF solver against scikit-learn, and its guided (fixed-W) mode."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import NMF
from sklearn.decomposition._nmf import _beta_divergence

from avsep.nmf import beta_divergence, init_factors, nmf

SKLEARN_LOSS = {"kl": "kullback-leibler", "euclidean": "frobenius", "itakura_saito": "itakura-saito",
                0.5: 0.5, 3.0: 3.0}


def _spectrogram_like(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (np.abs(rng.standard_normal(shape)) ** 2 + 1e-3).astype(np.float64)


@pytest.mark.parametrize("loss", list(SKLEARN_LOSS))
def test_objective_agrees_with_sklearn_mu_from_the_same_start(loss):
    V = _spectrogram_like((64, 30))
    W0, H0 = init_factors(torch.tensor(V)[None], 6, seed=3)
    model = NMF(6, solver="mu", beta_loss=SKLEARN_LOSS[loss], init="custom", max_iter=40, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W_sk = model.fit_transform(V, W=W0[0].numpy().copy(), H=H0[0].numpy().copy())
    theirs = _beta_divergence(V, W_sk, model.components_, SKLEARN_LOSS[loss], square_root=False)
    ours = nmf(torch.tensor(V)[None], W=W0, H=H0, loss=loss, n_iter=40)
    assert float(ours.objective[0]) == pytest.approx(float(theirs), rel=1e-3)
    np.testing.assert_allclose(ours.W[0].numpy(), W_sk, rtol=1e-6, atol=1e-9)


def test_batch_equals_chunks_one_by_one():
    V = torch.tensor(_spectrogram_like((4, 32, 20)))
    batch = nmf(V, 5, n_iter=30, seed=2)
    W0, H0 = init_factors(V, 5, seed=2)
    for b in range(4):
        one = nmf(V[b : b + 1], W=W0[b : b + 1], H=H0[b : b + 1], n_iter=30)
        torch.testing.assert_close(one.objective[0], batch.objective[b])


def test_objective_decreases_and_tol_stops_early():
    V = torch.tensor(_spectrogram_like((3, 40, 25)))
    short = nmf(V, 4, n_iter=5)
    long = nmf(V, 4, n_iter=200)
    assert (long.objective < short.objective).all()
    early = nmf(V, 4, n_iter=2000, tol=1e-4)
    assert early.n_iter < 2000


def test_fixed_w_leaves_bases_untouched_and_fits_activations():
    torch.manual_seed(0)
    W = torch.rand(1, 50, 6, dtype=torch.float64)
    H_true = torch.rand(3, 6, 30, dtype=torch.float64)
    V = W @ H_true
    W_before = W.clone()
    result = nmf(V, W=W, fixed_w=True, n_iter=500)
    assert torch.equal(W, W_before) and torch.equal(result.W, W_before)
    assert (result.objective / V.sum(dim=(1, 2)) < 1e-3).all()


def test_silent_chunk_gives_finite_factors():
    V = torch.tensor(_spectrogram_like((2, 30, 20)))
    V[1] = 0.0
    result = nmf(V, 4, n_iter=50)
    assert torch.isfinite(result.W).all() and torch.isfinite(result.H).all()
    assert float(result.objective[1]) == pytest.approx(0.0, abs=1e-6)
    guided = nmf(V, W=result.W[:1], fixed_w=True, n_iter=50)
    assert torch.isfinite(guided.H).all()


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="non-negative"):
        nmf(-torch.ones(1, 4, 4), 2)
    with pytest.raises(ValueError, match="unknown NMF loss"):
        nmf(torch.ones(1, 4, 4), 2, loss="hinge")
    with pytest.raises(ValueError, match="fixed_w needs W"):
        nmf(torch.ones(1, 4, 4), 2, fixed_w=True)


def test_beta_divergence_is_zero_at_exact_fit():
    W, H = torch.rand(2, 10, 3, dtype=torch.float64), torch.rand(2, 3, 8, dtype=torch.float64)
    for loss in ("kl", "euclidean", "itakura_saito", 0.5):
        assert torch.allclose(beta_divergence(W @ H, W, H, loss), torch.zeros(2, dtype=torch.float64), atol=1e-9)
