"""A real (small) GPAW + D3 calculation through the project's pipeline."""
import numpy as np
import pytest

pytest.importorskip("gpaw", reason="the [dft] extra is installed by .ci/install")

from wander_gui.core.builder import build_aligned  # noqa: E402
from wander_gui.dft.run import d3_energy_forces, scf  # noqa: E402
from wander_gui.dft.settings import DFTSettings  # noqa: E402

TINY = DFTSettings(ecut=200.0, k_density=6.0, conv_energy=1e-4, conv_density=1e-3, conv_forces=1e-2)


@pytest.fixture(scope="module")
def tiny_scf(tmp_path_factory):
    atoms = build_aligned("MoS2", "H", supercell=1, d_interlayer=6.3)
    atoms.positions[0, 2] += 0.05  # break the mirror symmetry a little: non-zero forces
    res = scf(atoms, TINY, txt=str(tmp_path_factory.mktemp("gpaw") / "scf.txt"))
    return atoms, res


def test_scf_energy_forces(tiny_scf):
    atoms, res = tiny_scf
    assert np.isfinite(res.energy)
    assert res.forces.shape == (len(atoms), 3)
    assert np.abs(res.forces.sum(axis=0)).max() < 0.05  # translation invariance (no net force)
    # the displaced Mo is pushed back (restoring force along -z)
    assert res.forces[0, 2] < -0.1
    assert res.kmesh == (2, 2)
    # vacuum level above the Fermi level by a work-function-like amount
    assert 3.0 < res.vacuum - res.fermi < 8.0


def test_d3_is_included(tiny_scf):
    atoms, res = tiny_scf
    e3, f3 = d3_energy_forces(atoms)
    assert e3 < 0
    assert res.energy_d3 == pytest.approx(e3)
    assert np.allclose(res.forces_d3, f3)
