"""Which predicted blocks make a cell's near-gap band and gap errors: the errors (VBM-aligned, vs the
DFT Wannier H on the cell's Γ–M–K–Γ path) with everything predicted, and with one category of blocks
replaced by its DFT values — on-site, intra- and inter-layer hoppings split at 6 Å (inter-layer also
at 10 Å). A finer version of `wander parity --attribution` that also reports the gap error.
README, "Pristine registry cells". Run from the repository root:
    python pretrained/experiments/analysis/gap_attribution.py MODEL CHUNK.npz ...
    python pretrained/experiments/analysis/gap_attribution.py MODEL --training-1x1
(MODEL: a published name or a run folder with ff.pt and h.pt; --training-1x1: every Wannier-labelled
1×1 cell of the 18 Å rule in pretrained/dataset, one line each, then the mean |gap error| per split
part; ~10 s per 1×1 cell, ~1 min per 42-atom cell on one core)."""
import sys
from pathlib import Path

import numpy as np
import torch

from wander_gui.backend import band_errors
from wander_gui.dft.dataset import chunk_k_density, has_current_label
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.kpoints import band_path
from wander_gui.ml.data import sample_from_arrays, split
from wander_gui.ml.parity import label_blocks, predicted_on_label_pairs
from wander_gui.ml.registry import load_model


def attribution(model, chunk, npoints=30) -> dict:
    """{variant: (band MAE meV, gap error meV)}."""
    a = sample_from_arrays("cell", chunk).atoms
    offsets, counts, ij, shift, dft = label_blocks(a.get_chemical_symbols(), chunk)
    pred = predicted_on_label_pairs(model.ff, model.hm, a, ij, shift)
    layer = a.arrays["layer"]
    d = np.linalg.norm(a.positions[ij[:, 1]] + shift @ a.cell.array - a.positions[ij[:, 0]], axis=1)
    onsite = (ij[:, 0] == ij[:, 1]) & ~shift.any(axis=1)
    intra = (layer[ij[:, 0]] == layer[ij[:, 1]]) & ~onsite
    inter = ~onsite & ~intra
    k, _, _ = band_path(a.cell.array, "GMKG", npoints)

    def bands(blocks):
        return compute_bands(TBHamiltonian.from_pair_blocks(a, ij, shift, blocks, offsets, counts), k)
    ref = bands(dft)
    out = {}
    for name, take in (("predicted", None), ("DFT on-site", onsite), ("DFT intra < 6 Å", intra & (d < 6)),
                       ("DFT intra ≥ 6 Å", intra & (d >= 6)), ("DFT inter < 6 Å", inter & (d < 6)),
                       ("DFT inter 6–10 Å", inter & (d >= 6) & (d < 10)), ("DFT inter ≥ 10 Å", inter & (d >= 10))):
        e = band_errors(bands(pred if take is None else np.where(take[:, None, None], dft, pred)), ref)
        out[name] = (e["mae_meV"], e["gap_error_meV"])
    return out


def main(argv):
    torch.set_num_threads(1)
    model = load_model(None, directory=argv[0]) if "/" in argv[0] else load_model(argv[0])
    if argv[1:] == ["--training-1x1"]:
        paths = sorted(Path("pretrained/dataset/chunks").glob("*-1x1-*.npz"))
        parts = split([p.stem for p in paths])
        rows = {}
        for path in paths:
            chunk = dict(np.load(path))
            if has_current_label(chunk) and chunk_k_density(chunk["meta"]) == 18.0:
                rows[path.stem] = row = attribution(model, chunk, npoints=20)
                print(path.stem, parts[path.stem], "  ".join(f"{k}: {g:+.1f}" for k, (_, g) in row.items()), flush=True)
        for part in ("train", "val", "test"):
            sel = [r for n, r in rows.items() if parts[n] == part]
            if sel:
                print(f"{part} ({len(sel)} cells) mean |gap error| meV: " + ", ".join(
                    f"{k} {np.mean([abs(r[k][1]) for r in sel]):.1f}" for k in sel[0]) +
                    f"; band MAE {np.mean([r['predicted'][0] for r in sel]):.1f}")
        return
    for path in argv[1:]:
        print(Path(path).stem)
        for k, (mae, gap) in attribution(model, dict(np.load(path))).items():
            print(f"  {k:18s} bands {mae:6.1f} meV  gap error {gap:+6.1f} meV")


if __name__ == "__main__":
    main(sys.argv[1:])
