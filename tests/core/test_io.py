import numpy as np
import pytest

from wander_gui.core.builder import build_twisted
from wander_gui.core.io import WannierHR, read_hr, read_structure, read_tb, write_hr, write_structure, write_tb
from wander_gui.errors import DataError, InputError


@pytest.mark.parametrize("name", ["cell.extxyz", "POSCAR", "cell.vasp"])
def test_structure_round_trip(tmp_path, name):
    a = build_twisted(mn=(2, 3), stacking="H")
    p = write_structure(a, tmp_path / name)
    b = read_structure(p)
    assert len(b) == len(a)
    assert np.allclose(b.positions, a.positions, atol=1e-6)
    assert np.allclose(b.cell.array, a.cell.array, atol=1e-6)
    assert np.array_equal(b.arrays["layer"], a.arrays["layer"])
    if name.endswith("extxyz"):
        assert b.info["stacking"] == "H" and list(b.info["mn"]) == [2, 3]


def random_hr(nw=5, seed=0):
    rng = np.random.default_rng(seed)
    R = np.array([(i, j, 0) for i in range(-2, 3) for j in range(-2, 3)])
    index = {tuple(r): k for k, r in enumerate(R)}
    H = rng.normal(size=(len(R), nw, nw)) + 1j * rng.normal(size=(len(R), nw, nw))
    minus = [index[tuple(-r)] for r in R]
    H = 0.5 * (H + H[minus].conj().transpose(0, 2, 1))  # Hermitian: H(-R) = H(R)^dagger
    nd = rng.integers(1, 4, size=len(R))
    for k, r in enumerate(R):  # degeneracies are symmetric under R -> -R
        nd[index[tuple(-r)]] = nd[k]
    nd[index[(0, 0, 0)]] = 1
    return WannierHR(R_Rc=R, H_Rmn=np.round(H, 4) / 1.0, ndegen_R=nd, cell_cv=np.diag([3.0, 3.1, 20.0]))


def test_hr_round_trip(tmp_path):
    hr = random_hr()
    hr.H_Rmn = np.round(hr.H_Rmn * hr.ndegen_R[:, None, None], 6) / hr.ndegen_R[:, None, None]
    write_hr(hr, tmp_path / "x_hr.dat")
    back = read_hr(tmp_path / "x_hr.dat")
    assert np.array_equal(back.R_Rc, hr.R_Rc)
    assert np.array_equal(back.ndegen_R, hr.ndegen_R)
    assert np.allclose(back.H_Rmn, hr.H_Rmn, atol=1e-6)
    assert back.hermiticity_error() < 1e-6


def test_hr_line_order_is_wannier90(tmp_path):
    hr = random_hr(nw=3)
    write_hr(hr, tmp_path / "y_hr.dat")
    lines = (tmp_path / "y_hr.dat").read_text().splitlines()
    nR = len(hr.R_Rc)
    first = 3 + (nR + 14) // 15
    cols = [ln.split()[3:5] for ln in lines[first:first + 4]]
    assert cols == [["1", "1"], ["2", "1"], ["3", "1"], ["1", "2"]]  # row index runs fastest
    # Fortran layout (5I5, 2F12.6): fixed-width columns
    assert len(lines[first]) == 5 * 5 + 2 * 12


def test_tb_round_trip(tmp_path):
    hr = random_hr(nw=4, seed=1)
    hr.r_Rmnc = np.random.default_rng(2).normal(size=hr.H_Rmn.shape + (3,)) * (1 + 0j)
    write_tb(hr, tmp_path / "x_tb.dat")
    back = read_tb(tmp_path / "x_tb.dat")
    assert np.allclose(back.cell_cv, hr.cell_cv)
    assert np.allclose(back.H_Rmn, hr.H_Rmn, atol=1e-7)
    assert np.allclose(back.r_Rmnc, hr.r_Rmnc, atol=1e-7)


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_hr(tmp_path / "missing_hr.dat")
    p = tmp_path / "bad_hr.dat"
    p.write_text("header\n2\n1\n1\n0 0 0 1 1 0.1 0.0\n")
    with pytest.raises(DataError, match="expected 4 lines"):
        read_hr(p)
    with pytest.raises(InputError, match="does not exist"):
        read_structure(tmp_path / "nothing.extxyz")
