import numpy as np
import pytest

from wander_gui.core.moire import exact_cell, ladder, ladder_table, n_fu_mn, nearest_cells, snap_angle, twist_angle_mn
from wander_gui.errors import InputError

# Known ladder of (m, m+1) cells: angle (deg, 2 decimals) and atoms (both layers).
KNOWN = [(21.79, 42), (13.17, 114), (9.43, 222), (7.34, 366), (6.01, 546), (5.09, 762),
         (4.41, 1014), (3.89, 1302)]


def test_known_ladder_is_reproduced():
    table = ladder_table(1400)
    pairs = {(round(th, 2), int(at)) for _, _, th, at in table}
    for item in KNOWN:
        assert item in pairs


@pytest.mark.parametrize("m", range(1, 9))
def test_mm1_cells(m):
    spec = exact_cell(m, m + 1, a=3.18)
    th, atoms = KNOWN[m - 1]
    assert round(spec.theta_deg, 2) == th
    assert spec.n_atoms == atoms
    # the cell is hexagonal: equal lengths, 60 deg, right-handed
    a, b = spec.L_cv[:, 0], spec.L_cv[:, 1]
    assert np.isclose(np.linalg.norm(a), np.linalg.norm(b))
    assert np.isclose(a @ b / (a @ a), 0.5)
    assert np.linalg.det(spec.L_cv) > 0


def test_cos_formula_and_area_match_geometry():
    for m, n in [(1, 2), (2, 5), (3, 7), (5, 11)]:
        N = m * m + m * n + n * n
        cos = (m * m + 4 * m * n + n * n) / (2 * N)
        assert np.isclose(np.cos(np.radians(twist_angle_mn(m, n))), cos)
        spec = exact_cell(m, n, a=1.0)
        area = abs(np.linalg.det(spec.L_cv))
        assert np.isclose(area, spec.n_fu[0] * np.sqrt(3) / 2)


def test_m_equiv_n_mod3_cell_is_three_times_smaller():
    assert n_fu_mn(1, 4) == 7  # 21 / 3
    spec = exact_cell(1, 4)
    assert spec.n_atoms == 42
    assert np.isclose(spec.theta_deg, 60 - twist_angle_mn(1, 2))


def test_layer2_matrix_is_exact_rotation():
    spec = exact_cell(3, 4, a=3.18)
    from wander_gui.core.lattice import hex_basis, rot2
    A2 = rot2(np.radians(spec.theta_deg)) @ hex_basis(3.18)
    assert np.allclose(A2 @ spec.S2, spec.L_cv, atol=1e-9)
    assert np.allclose(hex_basis(3.18) @ spec.S1, spec.L_cv, atol=1e-9)


def test_subdegree_cell_atom_count():
    snap = snap_angle(0.5, max_atoms=100_000)
    assert abs(snap["theta_deg"] - 0.5) < 0.01
    assert 70_000 < snap["n_atoms"] <= 100_000


def test_nearest_cells_sorted_and_within_budget():
    cells = nearest_cells(10.0, max_atoms=600, k=4)
    d = [abs(c["delta_deg"]) for c in cells]
    assert d == sorted(d)
    assert all(c["n_atoms"] <= 600 for c in cells)
    assert cells[0]["theta_deg"] == pytest.approx(10.42, abs=0.01)


def test_ladder_entries_unique_and_sorted():
    cells = ladder(400)
    th = [c.theta_deg for c in cells]
    assert th == sorted(th, reverse=True)
    assert len(set(np.round(th, 6))) == len(th)


@pytest.mark.parametrize("kwargs,word", [
    (dict(angle_deg=0.0), "angle"), (dict(angle_deg=60.0), "angle"), (dict(angle_deg=-3), "angle"),
    (dict(angle_deg=5.0, max_atoms=2), "max_atoms"), (dict(angle_deg=float("nan")), "angle"),
])
def test_bad_angles(kwargs, word):
    with pytest.raises(InputError, match=word):
        nearest_cells(**kwargs)


@pytest.mark.parametrize("mn", [(0, 0), (2, 2), (-1, 2), (1.5, 2)])
def test_bad_mn(mn):
    with pytest.raises(InputError, match=r"\(m, n\)"):
        exact_cell(*mn)


def test_budget_below_smallest_cell():
    with pytest.raises(InputError, match="max_atoms"):
        snap_angle(21.79, max_atoms=30)
