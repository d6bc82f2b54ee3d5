import numpy as np
import pytest

from wander_gui.core.builder import build_aligned, build_bilayer, build_twisted
from wander_gui.core.coincidence import search_cells
from wander_gui.core.materials import MATERIALS, get_material
from wander_gui.core.neighbors import min_distance
from wander_gui.errors import InputError


@pytest.mark.parametrize("stacking", ["R", "H"])
@pytest.mark.parametrize("mn,natoms", [((1, 2), 42), ((2, 3), 114), ((3, 4), 222)])
def test_counts_layers_info(mn, natoms, stacking):
    a = build_twisted(mn=mn, stacking=stacking)
    assert len(a) == natoms
    layer = a.arrays["layer"]
    assert np.sum(layer == 0) == np.sum(layer == 1) == natoms // 2
    sym = np.array(a.get_chemical_symbols())
    for lay in (0, 1):
        assert np.sum((sym == "Mo") & (layer == lay)) * 2 == np.sum((sym == "S") & (layer == lay))
    assert a.info["mn"] == list(mn) or tuple(a.info["mn"]) == mn
    assert a.info["stacking"] == stacking and a.info["material"] == "MoS2"
    assert np.linalg.det(a.cell.array) > 0
    assert np.allclose(a.cell[2], [0, 0, a.cell[2, 2]]) and a.cell[2, 2] > 20
    assert list(a.pbc) == [True, True, False]
    # layer 1 lies above layer 0
    z = a.positions[:, 2]
    assert z[layer == 1].min() > z[layer == 0].max()


def test_element_order_is_stable():
    a = build_twisted(mn=(1, 2))
    sym = a.get_chemical_symbols()
    assert sym[:7] == ["Mo"] * 7 and sym[7:21] == ["S"] * 14 and sym[21:28] == ["Mo"] * 7
    b = build_twisted(mn=(1, 2))
    assert np.allclose(a.positions, b.positions)


def test_min_distance_is_bond_length():
    mat = get_material("MoS2")
    a = build_twisted(mn=(2, 3))
    d, _ = min_distance(a)
    assert d == pytest.approx(np.hypot(mat.a / np.sqrt(3), mat.t_XX / 2), abs=1e-6)


def test_stacking_registry_at_zero_twist():
    R = build_aligned(stacking="R", supercell=1, d_interlayer=6.5)
    H = build_aligned(stacking="H", supercell=1, d_interlayer=6.5)

    def xy(at, sym, lay):
        m = (np.array(at.get_chemical_symbols()) == sym) & (at.arrays["layer"] == lay)
        return at.positions[m][0, :2]
    # R (AA): metal over metal; H (AA'): metal over chalcogen and chalcogen over metal
    assert np.allclose(xy(R, "Mo", 0), xy(R, "Mo", 1))
    cell2 = H.cell.array[:2, :2]
    for top, bottom in (("Mo", "S"), ("S", "Mo")):
        d = xy(H, top, 1) - xy(H, bottom, 0)
        f = np.linalg.solve(cell2.T, d)
        assert np.allclose(f - np.round(f), 0, atol=1e-9)
    mo = H.positions[np.array(H.get_chemical_symbols()) == "Mo"]
    assert abs(mo[1, 2] - mo[0, 2]) == pytest.approx(6.5)


def test_strain_changes_lattice():
    a = build_aligned(supercell=1, strain_percent=2.0, strain_mode="biaxial")
    assert np.linalg.norm(a.cell[0]) == pytest.approx(3.18 * 1.02)
    u = build_aligned(supercell=1, strain_percent=2.0, strain_mode="uniaxial", strain_direction_deg=0)
    assert u.cell[0, 0] == pytest.approx(3.18 * 1.02)
    assert u.cell[1, 1] == pytest.approx(3.18 * np.sqrt(3) / 2)


def test_unequal_layer_cell_builds():
    spec = [c for c in search_cells(8.95, max_atoms=201, max_residual_strain=0.08) if c.n_atoms == 201][0]
    a = build_bilayer(spec, stacking="R")
    layer = a.arrays["layer"]
    assert sorted([np.sum(layer == 0), np.sum(layer == 1)]) == [93, 108]
    assert a.info["n_fu_layer0"] + a.info["n_fu_layer1"] == 67


@pytest.mark.parametrize("name", list(MATERIALS))
def test_all_materials_build(name):
    a = build_twisted(name, "H", mn=(1, 2))
    mat = get_material(name)
    assert set(a.get_chemical_symbols()) == {mat.metal, mat.chalcogen}


@pytest.mark.parametrize("kw,word", [
    (dict(angle=61.0), "angle"), (dict(angle=None), "angle"), (dict(angle=5.0, max_atoms=100), "max_atoms"),
    (dict(mn=(1, 2), d_interlayer=2.0), "d_interlayer"), (dict(mn=(1, 2), vacuum=3.0), "vacuum"),
    (dict(angle=5.0, strain_percent=9.0), "strain"), (dict(mn=(8, 9), max_atoms=1000), "max_atoms"),
])
def test_bad_input_names_argument(kw, word):
    with pytest.raises(InputError, match=word):
        build_twisted(**kw)


def test_bad_material_and_stacking():
    with pytest.raises(InputError, match="material"):
        build_twisted("NbSe2", mn=(1, 2))
    with pytest.raises(InputError, match="stacking"):
        build_twisted("MoS2", "X", mn=(1, 2))
