import numpy as np
import pytest
import scipy.sparse as sp

from wander_gui.core.io import WannierHR, read_hr, write_hr
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path, read_kpoints, special_points
from wander_gui.electronic.solvers import dos, eigenvalues_at, solve_bands
from wander_gui.errors import InputError

A = 3.18
CELL = np.array([[A, 0, 0], [A / 2, A * np.sqrt(3) / 2, 0], [0, 0, 20.0]])
NN = [(1, 0, 0), (0, 1, 0), (-1, 1, 0), (-1, 0, 0), (0, -1, 0), (1, -1, 0)]


def triangular_s(t=-0.7, eps=0.3):
    """One s orbital on a triangular lattice with nearest-neighbour hopping t."""
    R = np.array([(0, 0, 0)] + NN)
    vals = np.array([eps] + [t] * 6, complex)
    z = np.zeros(len(R), int)
    return TBHamiltonian(CELL, np.zeros((1, 3)), z, z, R, vals)


def test_analytic_triangular_dispersion():
    tb = triangular_s()
    k, _, _ = band_path(CELL, "GMKG", 30)
    e = solve_bands(tb, k)[:, 0]
    exact = 0.3 + 2 * -0.7 * (np.cos(2 * np.pi * k[:, 0]) + np.cos(2 * np.pi * k[:, 1])
                              + np.cos(2 * np.pi * (k[:, 1] - k[:, 0])))
    assert np.allclose(e, exact)
    # at K the three cosines are all -1/2: e = eps - 3t
    K = special_points(CELL)["K"]
    assert solve_bands(tb, [K])[0, 0] == pytest.approx(0.3 + 3 * 0.7)


def honeycomb(t=-1.0, delta=0.4):
    """Two orbitals (A at 0, B at (a1+a2)/3) with nearest-neighbour hopping: gapped graphene."""
    tau = np.array([[0, 0, 0], (CELL[0] + CELL[1]) / 3])
    rows, cols, Rs, vals = [0, 1], [0, 1], [(0, 0, 0), (0, 0, 0)], [delta, -delta]
    for R in [(0, 0, 0), (-1, 0, 0), (0, -1, 0)]:  # B neighbours of A
        rows += [0, 1]; cols += [1, 0]; Rs += [R, tuple(-np.array(R))]; vals += [t, t]
    return TBHamiltonian(CELL, tau, np.array(rows), np.array(cols), np.array(Rs), np.array(vals, complex))


def test_gauge_invariance_and_hermiticity():
    tb = honeycomb()
    assert tb.hermiticity_error() < 1e-14
    k, _, _ = band_path(CELL, "GMKG", 40)
    e1 = solve_bands(tb, k, gauge="lattice")
    e2 = solve_bands(tb, k, gauge="atomic")
    assert np.allclose(e1, e2)
    # the H(k) differ, only the spectrum is gauge-invariant
    assert not np.allclose(tb.hk(k[5]).toarray(), tb.hk(k[5], gauge="atomic").toarray())


def test_dense_bloch_sum_matches_sparse_in_both_gauges():
    tb = honeycomb(delta=0.3).supercell(2, 3)  # several orbitals share (m, n) across R vectors
    rng = np.random.default_rng(4)
    for k in rng.random((3, 3)) * [1, 1, 0]:
        for gauge in ("lattice", "atomic"):
            assert np.allclose(tb.hk_dense(k, gauge=gauge), tb.hk(k, gauge=gauge).toarray(), atol=1e-13)
    # above the memory cap it falls back to the sparse assembly (same matrix)
    tb2 = honeycomb().supercell(2, 2)
    tb2.DENSE_STACK_MAX_BYTES = 0
    assert tb2._dense_stack is None
    assert np.allclose(tb2.hk_dense(k), tb2.hk(k).toarray())


def test_block_product_matches_sparse_h_in_both_gauges():
    tb = honeycomb(delta=0.2).supercell(32, 32)  # 2,048 orbitals: the threaded row-block branch
    X = np.random.default_rng(1).standard_normal((tb.n_orb, 5)) + 0j
    k = np.array([0.13, 0.31, 0.0])
    for gauge in ("lattice", "atomic"):
        ref = tb.hk(k, gauge=gauge) @ X
        for threads in (1, 3):
            assert np.allclose(tb.hk_times(k, X, gauge=gauge, threads=threads), ref, atol=1e-12)


def test_unique_lattice_vectors_match_numpy():
    from wander_gui.electronic.hamiltonian import _unique_rows
    R = np.random.default_rng(0).integers(-7, 8, size=(500, 3))
    Rs, inv = _unique_rows(R)
    ref, ref_inv = np.unique(R, axis=0, return_inverse=True)
    assert np.array_equal(Rs, ref) and np.array_equal(inv, ref_inv.ravel())
    assert np.array_equal(Rs[inv], R)


def test_gap_at_K_of_gapped_honeycomb():
    tb = honeycomb(delta=0.4)
    K = special_points(CELL)["K"]
    e = solve_bands(tb, [K])[0]
    assert np.allclose(e, [-0.4, 0.4])  # massive Dirac point: gap 2 delta at K


@pytest.mark.parametrize("density", [0.01, 0.15])  # SuperLU / dense LU factorisation of H − σ
def test_dense_vs_sparse_agree(density):
    from wander_gui.electronic.solvers import DENSE_FACTOR_ABOVE
    n = 400
    M = sp.random(n, n, density=density, random_state=1) + 1j * sp.random(n, n, density=density, random_state=2)
    H = (M + M.conj().T).tocsr() + sp.diags(np.linspace(-3, 3, n))
    assert (H.nnz > DENSE_FACTOR_ABOVE * n * n) == (density > 0.1)
    full = eigenvalues_at(H, nbands=None, sigma=None, solver="dense")
    near = eigenvalues_at(H, nbands=12, sigma=0.05, solver="sparse")
    ref = np.sort(full[np.argsort(np.abs(full - 0.05))[:12]])
    assert np.allclose(near, ref, atol=1e-8)
    from wander_gui.electronic.solvers import count_below  # inertia of the same factorisation
    for s in (-2.0, 0.05, 1.3):
        assert count_below(H, s) == int((full < s).sum())


def test_hr_round_trip_gives_identical_bands(tmp_path):
    tb = honeycomb()
    nR = sorted({tuple(r) for r in tb.R_nc})
    H = np.zeros((len(nR), 2, 2), complex)
    for m, n, R, v in zip(tb.rows, tb.cols, tb.R_nc, tb.values):
        H[nR.index(tuple(R)), m, n] += v
    hr = WannierHR(R_Rc=np.array(nR), H_Rmn=H, ndegen_R=np.ones(len(nR), int))
    write_hr(hr, tmp_path / "g_hr.dat")
    tb2 = TBHamiltonian.from_wannier_hr(read_hr(tmp_path / "g_hr.dat"), cell_cv=CELL)
    k, _, _ = band_path(CELL, "GMKG", 25)
    assert np.allclose(solve_bands(tb, k), solve_bands(tb2, k), atol=1e-6)


def test_dos_integrates_to_band_count():
    e = solve_bands(honeycomb(), np.random.default_rng(0).random((200, 3)) * [1, 1, 0])
    E, g = dos(e, width=0.05)
    assert np.trapezoid(g, E) == pytest.approx(2.0, rel=1e-3)


def test_bad_input(tmp_path):
    tb = honeycomb()
    with pytest.raises(InputError, match="nbands"):
        solve_bands(tb, [[0, 0, 0]], nbands=5)
    with pytest.raises(InputError, match="gauge"):
        tb.hk([0, 0, 0], gauge="weird")
    p = tmp_path / "k.txt"
    p.write_text("0 0 0\n0.5 0\n")
    with pytest.raises(InputError, match="3 numbers"):
        read_kpoints(p)
    with pytest.raises(InputError, match="path"):
        band_path(CELL, "GXK")
