"""Intra-layer nearest-neighbour hoppings by group, and what each group does to the bands. Groups:
in-plane S–S pairs of the inner or the outer S sheets (inner: the sheet facing the other layer),
Mo–S bonds to inner or outer S, and Mo–Mo pairs. For each cell: the near-gap band MAE and gap error
against the DFT Wannier H (VBM-aligned, Γ–M–K–Γ), the H MAE over elements above 1 meV, the MAE of the
strong intra-layer elements (|H| > 0.1 eV), and per group its strong-element MAE and maximum and the
band MAE / gap error with that group's blocks taken from DFT.
README, "Intra-layer inputs that see the other layer". Run from the repository root:
    python pretrained/experiments/analysis/nearest_neighbour_groups.py MODEL CELL.npz ...
(MODEL: a published name or a run folder with ff.pt and h.pt; CELL: a Wannier-labelled dataset
chunk or a validation result.npz; ~1 min per 42-atom cell on one core)."""
import sys
from pathlib import Path

import numpy as np
import torch

from wander_gui.backend import band_errors
from wander_gui.core.layers import bilayer_sites
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path
from wander_gui.ml.data import sample_from_arrays
from wander_gui.ml.parity import label_blocks, predicted_on_label_pairs
from wander_gui.ml.registry import load_model

STRONG = 0.1  # eV


def groups(atoms, ij, shift) -> dict[str, np.ndarray]:
    """Boolean masks over the label's pair list."""
    sym = np.array(atoms.get_chemical_symbols())
    v = atoms.positions[ij[:, 1]] + shift @ atoms.cell.array - atoms.positions[ij[:, 0]]
    d = np.linalg.norm(v, axis=1)
    layer = atoms.arrays["layer"]
    inner = bilayer_sites(atoms)[0] == "S inner"
    onsite = (ij[:, 0] == ij[:, 1]) & ~shift.any(axis=1)
    intra = (layer[ij[:, 0]] == layer[ij[:, 1]]) & ~onsite
    si, sj = sym[ij[:, 0]], sym[ij[:, 1]]
    ss = intra & (si == "S") & (sj == "S") & (d < 3.4) & (np.abs(v[:, 2]) < 0.5)
    mos = intra & (d < 2.6) & (si != sj)
    s_end = np.where(si == "S", ij[:, 0], ij[:, 1])
    return {"intra": intra,
            "S-S inner sheet": ss & inner[ij[:, 0]], "S-S outer sheet": ss & ~inner[ij[:, 0]],
            "Mo-S inner": mos & inner[s_end], "Mo-S outer": mos & ~inner[s_end],
            "Mo-Mo": intra & (si == "Mo") & (sj == "Mo") & (d < 3.4)}


def report(model, chunk, npoints=30) -> None:
    a = sample_from_arrays("cell", chunk).atoms
    offsets, counts, ij, shift, dft = label_blocks(a.get_chemical_symbols(), chunk)
    pred = predicted_on_label_pairs(model.ff, model.hm, a, ij, shift)
    k, _, _ = band_path(a.cell.array, "GMKG", npoints)

    def bands(blocks):
        return compute_bands(TBHamiltonian.from_pair_blocks(a, ij, shift, blocks, offsets, counts), k)
    ref = bands(dft)
    err = np.abs(pred - dft)
    g = groups(a, ij, shift)
    e = band_errors(bands(pred), ref)
    strong = err[g["intra"]][np.abs(dft[g["intra"]]) > STRONG]
    print(f"  bands {e['mae_meV']:.1f} meV, gap error {e['gap_error_meV']:+.1f} meV, H MAE "
          f"{1000 * err[np.abs(dft) > 1e-3].mean():.2f} meV, strong intra-layer elements {1000 * strong.mean():.2f} meV")
    for name, sel in g.items():
        if name == "intra":
            continue
        s = err[sel][np.abs(dft[sel]) > STRONG]
        e = band_errors(bands(np.where(sel[:, None, None], dft, pred)), ref)
        print(f"  {name:16s} {sel.sum():4d} pairs, strong elements MAE {1000 * s.mean():5.1f} max {1000 * s.max():6.1f} meV;"
              f" with DFT blocks: bands {e['mae_meV']:5.1f}, gap {e['gap_error_meV']:+6.1f} meV", flush=True)


def main(argv):
    torch.set_num_threads(1)
    model = load_model(None, directory=argv[0]) if "/" in argv[0] else load_model(argv[0])
    for path in argv[1:]:
        print(Path(path).parent.name if Path(path).name == "result.npz" else Path(path).stem)
        report(model, dict(np.load(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
