"""Is a heads ensemble's spread a usable error bar? For each twisted validation cell with a DFT
Wannier H: the near-gap band error of the ensemble mean against the DFT Wannier bands, the
members' band spread (standard deviation over members of each VBM-aligned eigenvalue, and of
the gap), their correlation over the near-gap states, and the force field's latent
out-of-distribution score. README, "Heads ensemble". Run from the repository root:
    python pretrained/experiments/analysis/ensemble_spread.py [MODEL]   (default mos2-preview-14;
~2 min on one core)."""
import sys

import numpy as np

from wander_gui import backend
from wander_gui.dft.validation import load_merged
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path
from wander_gui.ml.data import sample_from_arrays
from wander_gui.ml.hamiltonian import heads_members
from wander_gui.ml.parity import label_blocks
from wander_gui.ml.predict import predict_blocks
from wander_gui.ml.registry import load_model

name = sys.argv[1] if len(sys.argv) > 1 else "mos2-preview-14"
model = load_model(name)
members = heads_members(model.hm)
if len(members) < 2:
    sys.exit(f"{name} has a single set of Hamiltonian heads: no spread to measure")


def bands(atoms, p, k):
    return compute_bands(TBHamiltonian.from_pair_blocks(atoms, p.ij, p.shift, p.blocks, p.offsets, p.counts), k)


print(f"{name}: {len(members)} members; meV; window: states within 1 eV of the DFT gap edges")
print(f"{'cell':12s} {'band MAE':>9s} {'spread':>7s} {'corr':>6s} {'gap err':>8s} {'gap sd':>7s} {'OOD max':>8s}")
for cell in ("tw21.79-R", "tw21.79-H", "tw13.17-R", "het16.10-R"):
    r = load_merged([str(d) for d in backend.VALIDATION_DIRS], cell)
    if r is None or "pair_values" not in r:
        print(f"{cell:12s} (no DFT Wannier H yet)")
        continue
    s = sample_from_arrays(cell, r)
    a = s.atoms
    k, _, _ = band_path(a.cell.array, "GMKG", 30)
    offsets, counts, ij, shift, block = label_blocks(a.get_chemical_symbols(), s.chunk)
    ref = compute_bands(TBHamiltonian.from_pair_blocks(a, ij, shift, block, offsets, counts), k)
    mean = bands(a, predict_blocks(model.ff, model.hm, a), k)
    each = [bands(a, predict_blocks(model.ff, h, a), k) for h in members]
    window = np.abs(ref.e_kn - 0.5 * (ref.vbm + ref.cbm)) < 0.5 * (ref.cbm - ref.vbm) + 1.0
    err = np.abs((mean.e_kn - mean.vbm) - (ref.e_kn - ref.vbm))[window]
    sd = np.std([b.e_kn - b.vbm for b in each], axis=0)[window]
    gap_err = (mean.cbm - mean.vbm) - (ref.cbm - ref.vbm)
    gap_sd = np.std([b.cbm - b.vbm for b in each])
    ood = backend.out_of_distribution(a, model=name)
    print(f"{cell:12s} {1e3 * err.mean():9.1f} {1e3 * sd.mean():7.1f} {np.corrcoef(err, sd)[0, 1]:6.2f} "
          f"{1e3 * gap_err:+8.1f} {1e3 * gap_sd:7.1f} {ood.worst if ood else float('nan'):8.2f}")
