"""same_slab: one structure check for validation cells, SCF checkpoints and stored GPAW runs."""

from wander_gui.core.builder import build_twisted
from wander_gui.core.layers import same_slab


def test_same_slab_up_to_in_plane_lattice_vectors_and_not_beyond():
    a = build_twisted("MoS2", "R", mn=(1, 2))
    b = a.copy()
    b.positions[4] += 2 * a.cell[0] - a.cell[1]  # a wrapped copy of the same atom
    assert same_slab(a, b, 1e-6)
    c = a.copy()
    c.positions[4, 2] += 2e-3
    assert not same_slab(a, c, 1e-3) and same_slab(a, c, 3e-3)
    d = a.copy()
    d.positions[4] += a.cell[2]  # out of plane is not periodic: a different structure
    assert not same_slab(a, d, 1e-3)
    e = a.copy()
    e.cell[2, 2] += 1.0  # more vacuum
    assert not same_slab(a, e, 1e-6) and same_slab(a, e, 1e-6, same_vacuum=False)
    f = a.copy()
    f.numbers[[0, 7]] = f.numbers[[7, 0]]  # a Mo and an S swap species
    assert f.get_chemical_symbols() != a.get_chemical_symbols() and not same_slab(a, f, 1e-6)
    assert not same_slab(a, a[:-1], 1e-6)
