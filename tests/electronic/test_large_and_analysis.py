"""Automatic shift-invert, fat bands, |ψ|² maps and Dask on Hamiltonians with known spectra."""
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from wander_gui.core.io import read_hr
from wander_gui.electronic.bands import compute_bands, state_density, valence_width
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path, special_points, uniform_mesh
from wander_gui.electronic.solvers import count_below, solve_bands

DATA = Path(__file__).parent.parent / "data"
A = 3.18
CELL = np.array([[A, 0, 0], [A / 2, A * np.sqrt(3) / 2, 0], [0, 0, 20.0]])


def honeycomb(t=-1.0, delta=0.4):
    """Gapped honeycomb: orbital A (on-site +δ) and B (−δ) — here A on layer 0, B on layer 1."""
    tau = np.array([[0, 0, 0], (CELL[0] + CELL[1]) / 3])
    rows, cols, Rs, vals = [0, 1], [0, 1], [(0, 0, 0), (0, 0, 0)], [delta, -delta]
    for R in [(0, 0, 0), (-1, 0, 0), (0, -1, 0)]:
        rows += [0, 1]
        cols += [1, 0]
        Rs += [R, tuple(-np.array(R))]
        vals += [t, t]
    return TBHamiltonian(CELL, tau, np.array(rows), np.array(cols), np.array(Rs), np.array(vals, complex))


def test_inertia_count_matches_dense():
    rng = np.random.default_rng(3)
    n = 300
    M = sp.random(n, n, density=0.03, random_state=4) + 1j * sp.random(n, n, density=0.03, random_state=5)
    H = (M + M.conj().T).tocsc() + sp.diags(rng.normal(0, 2, n))
    e = np.linalg.eigvalsh(H.toarray())
    for sigma in (-3.0, -0.2, 0.9, 4.0):
        assert count_below(H, sigma) == int((e < sigma).sum())


def test_large_supercell_sparse_auto_sigma_matches_folded_primitive():
    """9×9 repeat of the real monolayer Wannier90 Hamiltonian (891 orbitals; the sparse path is
    forced, "auto" takes it above DENSE_LIMIT orbitals): the automatic mid-gap shift-invert
    must return the 16 states around the gap that the primitive cell has on the 9×9 mesh
    folding onto Γ."""
    hr = read_hr(DATA / "mos2_monolayer_hr.dat.gz")
    prim = TBHamiltonian.from_wannier_hr(hr, cell_cv=CELL)
    n = 9
    big = prim.supercell(n, n)
    assert big.n_orb == 11 * n * n
    assert big.hermiticity_error() < 1e-5
    res = compute_bands(big, [(0, 0, 0)], nbands=16, solver="sparse")
    e_prim = solve_bands(prim, uniform_mesh(n, n))  # (n², 11)
    nv = 7
    vb, cb = np.sort(e_prim[:, :nv].ravel()), np.sort(e_prim[:, nv:].ravel())
    assert res.vbm == pytest.approx(vb[-1], abs=1e-6)
    assert res.cbm == pytest.approx(cb[0], abs=1e-6)
    assert vb[-1] < res.sigma < cb[0]
    ref = np.sort(np.concatenate([vb[-res.n_valence:], cb[:16 - res.n_valence]]))
    assert np.allclose(res.e_kn[0], ref, atol=1e-6)


def test_fat_bands_of_a_layer_polarised_model():
    tb = honeycomb(delta=0.4)
    K = special_points(CELL)["K"]
    k, _, _ = band_path(CELL, "GMKG", 20)
    res = compute_bands(tb, np.vstack([k, [K]]), n_valence=1, orbital_layer=[0, 1])
    w = res.layer0_weight_kn
    assert w.shape == res.e_kn.shape
    assert np.allclose(w.sum(axis=1), 1.0)  # one orbital on layer 0: weights over bands sum to 1
    assert w[-1, 0] == pytest.approx(0.0, abs=1e-12)  # at K the valence state is pure B (layer 1)
    assert w[-1, 1] == pytest.approx(1.0, abs=1e-12)
    assert 0.1 < w[0, 0] < 0.9  # at Γ the states mix both layers


def test_state_density_locates_states_and_is_complete():
    tb = honeycomb(delta=0.4)
    K = special_points(CELL)["K"]
    rho = state_density(tb, K, [-1], orbital_atom=[0, 1], n_valence=1)
    assert np.allclose(rho, [0.0, 1.0])
    hr = read_hr(DATA / "mos2_monolayer_hr.dat.gz")
    big = TBHamiltonian.from_wannier_hr(hr, cell_cv=CELL).supercell(2, 2)
    atom = np.repeat(np.arange(12), np.tile([5, 3, 3], 4))  # hr order: Mo d (5), S p (3), S p (3)
    everything = state_density(big, (0.1, 0.2, 0), range(-28, 16), orbital_atom=atom)
    assert np.allclose(everything, np.tile([5, 3, 3], 4))  # completeness: Σ_n |ψ_n|² = 1 per orbital
    top = state_density(big, (0, 0, 0), [-1], orbital_atom=atom)
    assert top.sum() == pytest.approx(1.0)
    assert np.allclose(top[0::3], top[0])  # a perfect crystal: the same weight on every Mo


def test_valence_width_of_analytic_band():
    tb = honeycomb(t=-1.0, delta=0.4)
    k, _, _ = band_path(CELL, "GMKG", 60)
    res = compute_bands(tb, k, n_valence=1)
    # lower band of the gapped honeycomb: -sqrt(δ² + t²|f|²), |f| from 3 (Γ) to 0 (K)
    assert valence_width(res) == pytest.approx(np.sqrt(0.16 + 9) - 0.4, abs=1e-9)


def test_dask_local_cluster_gives_serial_results():
    pytest.importorskip("dask.distributed")
    tb = honeycomb()
    k, _, _ = band_path(CELL, "GMKG", 50)
    serial = compute_bands(tb, k, n_valence=1, orbital_layer=[0, 1])
    steps = []
    par = compute_bands(tb, k, n_valence=1, orbital_layer=[0, 1], dask="local",
                        on_step=lambda i, n: steps.append((i, n)))
    assert np.array_equal(serial.e_kn, par.e_kn)
    assert np.array_equal(serial.layer0_weight_kn, par.layer0_weight_kn)
    assert steps[-1] == (len(k), len(k))
