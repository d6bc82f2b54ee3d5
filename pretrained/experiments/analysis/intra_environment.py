"""Where the intra-layer hoppings err on the rigid 21.79° cells: band MAE with the DFT intra-layer
blocks of one layer only, the intra-layer MAE by distance, and for the nearest-neighbour Mo–S
bonds (inner S: facing the other layer; outer S: the vacuum side) the rotation-invariant block
norm ‖H_ij‖_F — its mean and its variation over the moiré cell, DFT against predicted (in a
rigid cell every such bond has the same geometry: only the other layer makes them differ).
README, "Heads ensemble". Run from the repository root:
    python pretrained/experiments/analysis/intra_environment.py [MODEL or RUN_DIR/]   (default mos2-preview-14;
~2 min on one core)."""
import sys

import numpy as np

from wander_gui import backend
from wander_gui.backend import band_errors
from wander_gui.dft.validation import load_merged
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path
from wander_gui.ml.data import sample_from_arrays
from wander_gui.ml.parity import label_blocks, predicted_on_label_pairs
from wander_gui.ml.registry import load_model

arg = sys.argv[1] if len(sys.argv) > 1 else "mos2-preview-14"
model = load_model(None, directory=arg) if "/" in arg else load_model(arg)  # a name or a run folder
print(f"{arg}; meV")
for cell in ("tw21.79-R", "tw21.79-H"):
    s = sample_from_arrays(cell, load_merged([str(d) for d in backend.VALIDATION_DIRS], cell))
    a = s.atoms
    offsets, counts, ij, shift, dft = label_blocks(a.get_chemical_symbols(), s.chunk)
    pred = predicted_on_label_pairs(model.ff, model.hm, a, ij, shift)
    layer, symbols, z = a.arrays["layer"], np.array(a.get_chemical_symbols()), a.positions[:, 2]
    onsite = (ij[:, 0] == ij[:, 1]) & ~shift.any(axis=1)
    intra = (layer[ij[:, 0]] == layer[ij[:, 1]]) & ~onsite
    dist = np.linalg.norm(a.positions[ij[:, 1]] + shift @ a.cell.array - a.positions[ij[:, 0]], axis=1)
    k, _, _ = band_path(a.cell.array, "GMKG", 30)

    def bands(blocks):
        return compute_bands(TBHamiltonian.from_pair_blocks(a, ij, shift, blocks, offsets, counts), k)
    ref = bands(dft)
    row = [f"bands {band_errors(bands(pred), ref)['mae_meV']:.1f}"]
    for L in (0, 1):
        take = intra & (layer[ij[:, 0]] == L)
        mixed = np.where(take[:, None, None], dft, pred)
        row.append(f"DFT intra of layer {L} only {band_errors(bands(mixed), ref)['mae_meV']:.1f}")
    for lo, hi in ((0, 3.5), (3.5, 6), (6, 9), (9, 12.1)):
        take = intra & (dist >= lo) & (dist < hi)
        err, big = np.abs(pred[take] - dft[take]), np.abs(dft[take]) > 1e-3
        row.append(f"intra {lo}–{hi} Å {1e3 * err[big].mean():.2f}")
    print(cell + ": " + "; ".join(row))
    zmid = 0.5 * (z[layer == 0].mean() + z[layer == 1].mean())
    sulfur = symbols == "S"
    inner = sulfur & (np.abs(z - zmid) < np.median(np.abs(z[sulfur] - zmid)))
    for side, mask in (("inner", inner), ("outer", sulfur & ~inner)):
        take = intra & (dist < 3.5) & (symbols[ij[:, 0]] == "Mo") & mask[ij[:, 1]]
        fd, fp = np.linalg.norm(dft[take], axis=(1, 2)), np.linalg.norm(pred[take], axis=(1, 2))
        print(f"  Mo–{side} S bonds ({take.sum()}): ‖H‖_F mean error {1e3 * (fp - fd).mean():+.1f}, variation over "
              f"the cell DFT {1e3 * fd.std():.1f} / predicted {1e3 * fp.std():.1f}, "
              f"correlation {np.corrcoef(fd, fp)[0, 1]:+.2f}")
