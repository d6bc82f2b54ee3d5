"""Reduced-basis (subspace) bands: certified by residuals and equal to exact diagonalisation."""
from pathlib import Path

import numpy as np
import pytest

from wander_gui.core.io import read_hr
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path
from wander_gui.electronic.solvers import find_gap_sigma, solve_bands
from wander_gui.electronic.subspace import subspace_bands
from wander_gui.errors import InputError

DATA = Path(__file__).parent.parent / "data"
A = 3.18
CELL = np.array([[A, 0, 0], [A / 2, A * np.sqrt(3) / 2, 0], [0, 0, 20.0]])


@pytest.fixture(scope="module")
def big():
    """6×6 repeat of the real monolayer Wannier90 Hamiltonian (396 orbitals, 252 filled),
    orbital centres on a 3-site basis so the atomic gauge is that of a real cell."""
    hr = read_hr(DATA / "mos2_monolayer_hr.dat.gz")
    tau = np.zeros((11, 3))
    tau[5:8] = (CELL[0] + CELL[1]) / 3 + [0, 0, 1.56]
    tau[8:] = (CELL[0] + CELL[1]) / 3 - [0, 0, 1.56]
    return TBHamiltonian.from_wannier_hr(hr, cell_cv=CELL, tau_mv=tau).supercell(6, 6)


def test_subspace_bands_are_certified_and_match_dense(big):
    k, _, _ = band_path(big.cell_cv, "GMKG", 24)
    sigma = find_gap_sigma(big, 7 * 36)
    exact = solve_bands(big, k)  # every eigenvalue, dense
    res = subspace_bands(big, k, nbands=12, sigma=sigma, tol=1e-4)
    assert res.residual_kn.max() <= 1e-4
    for i in range(len(k)):
        nearest = np.abs(res.eps_kn[i][:, None] - exact[i][None, :]).min(1)
        assert np.all(nearest <= res.residual_kn[i] + 1e-9)  # the certificate holds
        nv = (exact[i] < sigma).sum()
        # and nothing near the gap is missed: the 6 highest valence and 6 lowest conduction states
        np.testing.assert_allclose(res.eps_kn[i], exact[i][nv - 6:nv + 6], atol=1e-6)
    assert set(np.linspace(0, len(k) - 1, 5).round().astype(int)) <= set(res.anchors)


def test_compute_bands_subspace_matches_dense(big):
    k, _, _ = band_path(big.cell_cv, "GMKG", 12)
    sub = compute_bands(big, k, nbands=8, solver="subspace", subspace_tol=1e-4)
    ref = compute_bands(big, k, nbands=8, solver="dense")  # 4 below and 4 above the gap
    np.testing.assert_allclose(sub.e_kn, ref.e_kn, atol=1e-6)
    assert sub.n_valence == ref.n_valence == 4
    assert sub.vbm == pytest.approx(ref.vbm, abs=1e-6) and sub.cbm == pytest.approx(ref.cbm, abs=1e-6)
    assert sub.residual_kn.shape == sub.e_kn.shape


def test_gap_search_states_become_atomic_gauge_anchors_at_path_corners(big):
    from wander_gui.electronic.subspace import anchors_from_gap_search
    k, _, labels = band_path(big.cell_cv, "GMKG", 20)
    sigma, anchors = anchors_from_gap_search(big, k, 7 * 36, 8)
    assert sigma == pytest.approx(find_gap_sigma(big, 7 * 36))
    corners = [i for i, kk in enumerate(k) if any(np.allclose(kk, c) for c in
                                                   ((0, 0, 0), (0.5, 0, 0), (2 / 3, 1 / 3, 0)))]
    assert sorted(anchors) == corners and len(corners) == 4  # Γ, M, K, Γ
    for i, V in anchors.items():
        Hk = big.hk(k[i], gauge="atomic")
        e = np.real(np.einsum("mi,mi->i", V.conj(), Hk @ V))
        assert np.abs(Hk @ V - V * e).max() < 1e-6  # exact eigenvectors in the atomic gauge
        assert (e < sigma).sum() == 4 and (e > sigma).sum() == 4


def test_subspace_bad_input_and_anchor_limit(big):
    k, _, _ = band_path(big.cell_cv, "GMKG", 12)
    sigma = find_gap_sigma(big, 7 * 36)
    with pytest.raises(InputError, match="tol"):
        subspace_bands(big, k, nbands=8, sigma=sigma, tol=0.0)
    with pytest.raises(InputError, match=r"nbands=500 must be in \[1, 394\]"):
        subspace_bands(big, k, nbands=500, sigma=sigma)
    with pytest.raises(InputError, match="k-points must be"):
        subspace_bands(big, k[:, :2], nbands=8, sigma=sigma)
    # an unreachable tolerance with few anchors allowed: an error, not a band with a larger error
    with pytest.raises(InputError, match="residual"):
        subspace_bands(big, k, nbands=8, sigma=sigma, tol=1e-14, anchors=[0], max_anchors=2)


def test_sparse_solver_explains_a_k_dependent_split(big):
    """The states closest to σ split differently at different k in a dispersive cell: the
    sparse path says so (and what to use) instead of returning bands with a wrong n_valence."""
    k, _, _ = band_path(big.cell_cv, "GMKG", 12)
    with pytest.raises(InputError, match=r"lie below it depending on k.*--solver subspace"):
        compute_bands(big, k, nbands=8, solver="sparse")
