"""End-to-end speed of the ML path against the project's DFT on the same twisted cells.

For every validation cell with a recorded DFT wall time (pretrained/validation-k18/*/result.npz
and pretrained/validation/*/result.npz, a row per folder — the k-mesh rules ceil(18 Å / L) and
ceil(12 Å / L): SCF, plus the band-structure run when it exists), time the ML path on the same cell: load
nothing (model already in memory), predict forces, predict H, and compute the bands on the
same k-points (30 along Γ–M–K–Γ). Goal (issue: band engine): >= 1e3x at 114 atoms and
>= 1e4x at 222 atoms; the paper reports 1e3–1e4x against GGA. DFT times were measured on
this kind of machine with one core per run and other runs sharing the two cores (upper bounds).

    python bench/bench_ml_vs_dft.py [--model-dir DIR]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wander_gui import backend
from wander_gui.dft.dataset import chunk_k_density
from wander_gui.dft.validation import CELLS, cell_atoms, load_result
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.kpoints import band_path

sys.path.insert(0, str(Path(__file__).parent))
from _report import report  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=None)
    args = ap.parse_args()
    model = backend.get_model(None, args.model_dir)
    calc = backend.calculator(model_dir=args.model_dir)
    rows = []
    warm = cell_atoms(next(iter(CELLS)))
    warm.calc = calc
    warm.get_forces()  # first torch call pays one-off set-up; not part of the per-cell time
    backend.predict_tb(warm, model_dir=args.model_dir)
    for name, folder in [(n, d) for n in CELLS for d in backend.VALIDATION_DIRS]:
        ref = load_result(folder, name)
        if ref is None or "scf_seconds" not in ref:
            continue
        rule = chunk_k_density(ref["meta"]) if "meta" in ref else None
        atoms = cell_atoms(name)
        k, _, _ = band_path(atoms.cell.array, "GMKG", 30)
        t0 = time.perf_counter()
        a = atoms.copy()
        a.calc = calc
        a.get_forces()
        tb = backend.predict_tb(atoms, model_dir=args.model_dir)
        compute_bands(tb, k)
        t_ml = time.perf_counter() - t0
        t_dft = float(ref["scf_seconds"]) + float(ref.get("bands_seconds", 0.0))
        what = "SCF + bands" if "bands_seconds" in ref else "SCF only"
        rows.append([name, str(len(atoms)), f"{folder.name} (ceil({rule:.0f} Å / L))" if rule else folder.name, f"{t_dft:.0f} ({what})", f"{t_ml:.2f}",
                     f"{t_dft / t_ml:.0f}"])
    report("bench_ml_vs_dft.py", ["cell", "atoms", "DFT folder (k-mesh rule)", "DFT wall time (s)", "ML forces + H + 30-k bands (s)",
                                  "speed-up"], rows, f"model {model.name}")


if __name__ == "__main__":
    main()
