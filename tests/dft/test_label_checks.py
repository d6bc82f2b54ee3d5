"""The lattice-assignment check of Wannier labels, on a real label from the dataset."""
from pathlib import Path

import numpy as np

from wander_gui.dft.dataset import load_chunks, pack_pairs, unpack_pairs
from wander_gui.dft.validate import validate_chunk
from wander_gui.dft.wannier import PairBlocks

DATA = Path(__file__).parents[2] / "pretrained" / "dataset"


def labelled_chunk():
    for c in load_chunks(DATA):
        if "pair_values" in c:
            return c
    raise AssertionError("the shipped dataset has no Wannier-labelled configuration")


def test_real_label_passes_and_an_atom_one_cell_off_is_caught():
    c = labelled_chunk()
    assert validate_chunk(c) == []
    counts = np.where(c["numbers"] == 42, 5, 3)
    ij, shift, block = unpack_pairs(c, counts)
    bad = shift.copy()
    # atom 0's functions one cell along a1: its outgoing hoppings gain −a1, incoming +a1
    bad[ij[:, 0] == 0] -= (1, 0, 0)
    bad[ij[:, 1] == 0] += (1, 0, 0)
    broken = dict(c)
    broken.update(pack_pairs(PairBlocks(ij, bad, block), counts))
    problems = validate_chunk(broken)
    assert len(problems) == 1 and "lattice assignment" in problems[0]
    # the bands cannot see it: H(k) differs by a diagonal phase only
    from wander_gui.core.orbitals import orbital_offsets
    offsets, cnt = orbital_offsets(["Mo" if z == 42 else "S" for z in c["numbers"]], "Mo")
    n = int(cnt.sum())
    k = np.array([0.1, 0.27, 0.0])
    e_good = np.linalg.eigvalsh(PairBlocks(ij, shift, block).dense_hk(k, offsets, cnt, n))
    e_bad = np.linalg.eigvalsh(PairBlocks(ij, bad, block).dense_hk(k, offsets, cnt, n))
    assert np.allclose(e_good, e_bad, atol=1e-6)
