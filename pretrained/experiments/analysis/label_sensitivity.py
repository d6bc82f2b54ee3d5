"""How the Wannier labels of one 1x1 configuration move with the Wannier mesh, the disentanglement
windows, the configuration's random displacements and a rigid 0.05 A shift of the top layer.
Model card, "What holds the Hamiltonian MAE". Run from the repository root:
    python pretrained/experiments/analysis/label_sensitivity.py c0085-1x1-H OUT_DIR
(~1 h on one core; uses work_dft/gpw/NAME.gpw when present, else redoes the SCF)."""
import dataclasses
import sys
from pathlib import Path

import numpy as np

import wander_gui.dft.run as run
from wander_gui.core.layers import ensure_layers
from wander_gui.dft.dataset import structure_from_arrays
from wander_gui.dft.sampling import build_config, config_spec
from wander_gui.dft.settings import DFTSettings

name, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
chunk = dict(np.load(f"pretrained/dataset/chunks/{name}.npz"))
atoms = structure_from_arrays(chunk)
layer = ensure_layers(atoms)
counts = np.array([5 if s == "Mo" else 3 for s in atoms.get_chemical_symbols()])
settings = DFTSettings(k_density=18.0)


def density(structure, tag):
    gpw = Path(f"work_dft/gpw/{name}.gpw")
    if tag == "stored" and gpw.exists():
        from gpaw import GPAW
        return GPAW(str(gpw), txt=None), float(chunk["vacuum_level"])
    r = run.scf(structure, settings, txt=str(out / f"{tag}-scf.txt"))
    return r.calc, r.vacuum


def label(calc, vacuum, structure, tag, mesh=(10, 10), outer=4.0, frozen=1.0):
    run.OUTER_ABOVE_CBM, run.FROZEN_ABOVE_CBM = outer, frozen
    lab = run.wannier_label(calc, structure, vacuum=vacuum, mesh=mesh, workdir=out / f"w-{tag}",
                            txt=str(out / f"{tag}.txt"), store=out / f"store-{mesh[0]}-{tag[:6]}")
    p = lab.pairs
    return {(int(i), int(j), *map(int, s)): b for (i, j), s, b in zip(p.ij, p.shift, p.block)}


def compare(a, b, title):
    print(f"{title}: mean |dH| meV (mean |H| meV, n) over elements with |H| > 1 meV in either")
    rows = []
    for key, x in a.items():
        if key not in b:
            continue
        i, j, s = key[0], key[1], np.array(key[2:])
        r = np.linalg.norm(atoms.positions[j] + s @ atoms.cell.array - atoms.positions[i])
        cat = "onsite" if i == j and not s.any() else ("intra" if layer[i] == layer[j] else "inter")
        u, v = x[:counts[i], :counts[j]].ravel(), b[key][:counts[i], :counts[j]].ravel()
        rows += [(cat, r, p, q) for p, q in zip(u, v)]
    cat = np.array([c for c, *_ in rows])
    r, u, v = (np.array([row[k] for row in rows]) for k in (1, 2, 3))
    for c in ("onsite", "intra", "inter"):
        for lo, hi in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12.01)):
            m = (cat == c) & (r >= lo) & (r < hi) & ((abs(u) > 1e-3) | (abs(v) > 1e-3))
            if m.sum():
                print(f"  {c:6s} {lo:4.0f}-{hi:<5.0f} {1000 * abs(u - v)[m].mean():7.2f} ({1000 * abs(u)[m].mean():7.2f}, {m.sum()})")


calc, vac = density(atoms, "stored")
ref = label(calc, vac, atoms, "m10")
compare(ref, label(calc, vac, atoms, "m15", mesh=(15, 15)), "Wannier mesh 10x10 vs 15x15")
for outer, frozen in ((3.0, 1.0), (5.0, 1.0), (4.0, 2.0)):
    compare(ref, label(calc, vac, atoms, f"m10-o{outer:g}f{frozen:g}", outer=outer, frozen=frozen),
            f"windows outer CBM+4 / frozen CBM+1 vs CBM+{outer:g} / CBM+{frozen:g} eV")
undisplaced = build_config(dataclasses.replace(config_spec(int(name[1:5])), sigma=0.0))
calc0, vac0 = density(undisplaced, "undisplaced")
lab0 = label(calc0, vac0, undisplaced, "undisplaced")
compare(ref, lab0, "random displacements removed")
shifted = undisplaced.copy()
shifted.positions[ensure_layers(shifted) == 1, 0] += 0.05
calc1, vac1 = density(shifted, "shifted")
compare(lab0, label(calc1, vac1, shifted, "shifted"), "undisplaced vs top layer moved by 0.05 A in x")
