"""A supercell must give the same Wannier functions as the primitive cell on the same k points.

Monolayer MoS2: the 1×1 cell on a 4×4 mesh and its 2×1 repeat on a 2×4 mesh sample the same
Bloch states (both Born–von Kármán cells are 4×4 primitive cells), so disentanglement with the
same windows and atomic projections must give the same spreads and the same H blocks. This
fails when the PAW part of M_mn(k, b) misses the phase e^{−i b·R_a} of atoms away from the
origin (see ``wander_gui.dft.wannier.paw_overlaps``).
"""
import numpy as np
import pytest

pytest.importorskip("gpaw", reason="the [dft] extra is installed by .ci/install")

from ase.build import mx2  # noqa: E402

from wander_gui.dft.run import make_gpaw, wannier_label  # noqa: E402
from wander_gui.dft.settings import DFTSettings  # noqa: E402

SETTINGS = DFTSettings(ecut=200.0, conv_energy=1e-4, conv_density=1e-3, conv_forces=1.0)


def _label(atoms, mesh, work):
    calc = make_gpaw(atoms, SETTINGS, kpts={"size": (*mesh, 1), "gamma": True}, txt=str(work / "scf.txt"))
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.get_potential_energy()
    lab = wannier_label(calc, atoms, vacuum=0.0, mesh=mesh, r_max=4.0, workdir=work, txt=str(work / "nscf.txt"))
    return lab.pairs, lab.spreads, lab.imag_max


def _block(pairs, i, j, vec_expected, atoms):
    """The block between atoms i and j whose bond vector equals ``vec_expected``."""
    pos, cell = atoms.positions, atoms.cell.array
    for (a, b), s, blk in zip(pairs.ij, pairs.shift, pairs.block):
        if a == i and b == j and np.allclose(pos[b] + s @ cell - pos[a], vec_expected, atol=1e-6):
            return blk
    raise AssertionError(f"no block for {i}-{j} at {vec_expected}")


def test_supercell_gives_same_wannier_functions(tmp_path):
    prim = mx2("MoS2", kind="2H", a=3.18, thickness=3.13, vacuum=8.0)
    prim.pbc = (True, True, False)
    sup = prim.repeat((2, 1, 1))
    # an atom given outside the cell (GPAW wraps it back): labels must refer to the positions as given
    sup.positions[4] -= sup.cell.array[1]
    (tmp_path / "p").mkdir()
    (tmp_path / "s").mkdir()
    p_pairs, p_spreads, p_imag = _label(prim, (4, 4), tmp_path / "p")
    s_pairs, s_spreads, s_imag = _label(sup, (2, 4), tmp_path / "s")
    assert p_imag < 0.02 and s_imag < 0.02
    # spreads: the supercell's functions are two copies of the primitive ones
    assert np.allclose(np.sort(s_spreads[:11]), np.sort(p_spreads), rtol=0.02, atol=0.02)
    assert np.allclose(np.sort(s_spreads[11:]), np.sort(p_spreads), rtol=0.02, atol=0.02)
    # the Mo atom of the second primitive cell (index 3 in the repeat) is away from the origin
    for i_sup in (0, 3):
        on_p = _block(p_pairs, 0, 0, np.zeros(3), prim)
        on_s = _block(s_pairs, i_sup, i_sup, np.zeros(3), sup)
        assert np.abs(on_p - on_s).max() < 0.002  # eV
        bond = prim.positions[1] - prim.positions[0]  # Mo -> S in the same cell
        hop_p = _block(p_pairs, 0, 1, bond, prim)
        hop_s = _block(s_pairs, i_sup, i_sup + 1, bond, sup)
        assert np.abs(hop_p).max() > 0.3  # a real d-p bond
        assert np.abs(hop_p - hop_s).max() < 0.002
