import numpy as np
import pytest

from wander_gui.core.coincidence import make_spec, search_cells
from wander_gui.core.lattice import polar2, rot2
from wander_gui.errors import InputError


def test_finds_paper_8p95_cell_with_unequal_layers():
    cells = search_cells(8.95, max_atoms=201, max_residual_strain=0.08)
    found = [c for c in cells if c.n_atoms == 201]
    assert found, "8.95 deg / 201-atom cell not found"
    c = found[0]
    assert sorted(c.n_fu) == [31, 36]
    assert abs(c.theta_eff_deg - 8.95) < 0.01
    # both layers hexagonal: the strain is isotropic, |eps| = sqrt(36/31) - 1 or 1 - sqrt(31/36)
    eig = np.linalg.eigvalsh(c.strain_top)
    assert np.isclose(eig[0], eig[1], atol=1e-9)
    assert min(abs(abs(eig[0]) - (np.sqrt(36 / 31) - 1)), abs(abs(eig[0]) - (1 - np.sqrt(31 / 36)))) < 1e-9


def test_finds_paper_3p42_cell():
    cells = search_cells(3.42, max_atoms=1310, max_residual_strain=0.035)
    found = [c for c in cells if c.n_atoms == 1308 and abs(c.theta_eff_deg - 3.42) < 0.01]
    assert found
    assert sorted(found[0].n_fu) == [211, 225]
    assert 0.03 < found[0].max_residual_strain < 0.035


def test_exact_cells_have_zero_residual():
    cells = search_cells(21.79, max_atoms=60, max_residual_strain=0.001)
    assert cells[0].n_atoms == 42
    assert cells[0].max_residual_strain < 1e-9
    assert len(cells) == 1  # multiples of the 42-atom cell are not listed


def test_strain_request_is_met():
    cells = search_cells(13.17, strain_percent=2.0, strain_mode="biaxial", max_atoms=1500,
                         max_residual_strain=0.003)
    assert cells
    c = cells[0]
    assert c.max_residual_strain <= 0.003 + 1e-12
    eig = np.linalg.eigvalsh(c.strain_top)
    assert np.all(np.abs(eig - 0.02) <= 0.003 + 1e-9)


def test_uniaxial_strain_direction():
    cells = search_cells(9.43, strain_percent=2.0, strain_mode="uniaxial", strain_direction_deg=0,
                         max_atoms=2000, max_residual_strain=0.005)
    assert cells
    st = cells[0].strain_top
    assert st[0, 0] == pytest.approx(0.02, abs=0.005)
    assert abs(st[1, 1]) < 0.005


def test_polar_decomposition():
    U = np.array([[1.02, 0.01], [0.01, 0.99]])
    F = rot2(np.radians(7.0)) @ U
    phi, U2 = polar2(F)
    assert phi == pytest.approx(7.0)
    assert np.allclose(U2, U)


def test_make_spec_rejects_bad_matrices():
    with pytest.raises(InputError, match="S1, S2"):
        make_spec(3.18, 5.0, [[1, 0], [0, -1]], [[1, 0], [0, 1]])


@pytest.mark.parametrize("kw,word", [(dict(strain_percent=7.0), "strain"), (dict(strain_mode="twist"), "strain_mode"),
                                     (dict(max_residual_strain=0.5), "max_residual_strain"),
                                     (dict(material="Graphene"), "material"), (dict(sort_by="x"), "sort_by")])
def test_bad_input(kw, word):
    with pytest.raises(InputError, match=word):
        search_cells(5.0, **kw)
