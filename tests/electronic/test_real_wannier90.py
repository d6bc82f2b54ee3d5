"""A real Wannier90 _hr.dat (monolayer MoS2, made by tests/data/make_reference_hr.py)."""
from pathlib import Path

import numpy as np
import pytest

from wander_gui.core.io import read_hr
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import special_points
from wander_gui.electronic.solvers import solve_bands

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(scope="module")
def ref():
    hr = read_hr(DATA / "mos2_monolayer_hr.dat.gz")
    z = np.load(DATA / "mos2_monolayer_ref.npz")
    return hr, z


def test_reads_real_wannier90_output(ref):
    hr, _ = ref
    assert hr.num_wann == 11
    assert hr.ndegen_R.min() >= 1 and (hr.ndegen_R > 1).any()  # Wigner-Seitz degeneracies present
    assert (0, 0, 0) in {tuple(r) for r in hr.R_Rc}
    assert hr.hermiticity_error() < 2e-6  # file has 6 decimals


def test_bands_reproduce_dft_at_mesh_points(ref):
    hr, z = ref
    tb = TBHamiltonian.from_wannier_hr(hr, cell_cv=z["cell"])
    e = solve_bands(tb, z["kpts"])
    inside = z["eps"] < z["frozen_max"] - 0.05
    assert np.abs(e[inside] - z["eps"][inside]).max() < 2e-3  # exact inside the frozen window


def test_monolayer_gap_is_direct_at_K(ref):
    hr, z = ref
    tb = TBHamiltonian.from_wannier_hr(hr, cell_cv=z["cell"])
    K = special_points(z["cell"])["K"]
    eK = solve_bands(tb, [K])[0]
    eG = solve_bands(tb, [[0, 0, 0]])[0]
    gap_K = eK[7] - eK[6]
    assert 1.5 < gap_K < 1.9  # PBE monolayer MoS2: ~1.7 eV direct gap at K
    assert eK[6] > eG[6]  # valence maximum at K, not Gamma (monolayer)
