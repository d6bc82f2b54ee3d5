"""Predicted energy and forces of a bilayer with the force field."""
from __future__ import annotations

NAME = "forces"
HELP = "predicted energy (info['energy']) and forces (arrays['forces'])"


def add_arguments(p) -> None:
    from wander_gui.commands._model import add_model
    p.add_argument("structure")
    p.add_argument("-o", "--output", required=True)
    add_model(p)


def run(args) -> int:
    import numpy as np
    from ase import Atoms

    from wander_gui import backend
    from wander_gui.core.io import read_structure, write_structure
    from wander_gui.core.layers import validate_structure
    atoms = read_structure(args.structure)
    validate_structure(atoms)
    calc = backend.calculator(model=args.model, model_dir=args.model_dir)
    a = atoms.copy()
    a.calc = calc
    e, f = a.get_potential_energy(), a.get_forces()
    out = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.set_array("layer", atoms.arrays["layer"])
    out.set_array("forces", f)
    out.info["energy"] = float(e)
    ood = backend.out_of_distribution(atoms, model=args.model, model_dir=args.model_dir)
    if ood is not None:
        out.set_array("ood_score", ood.score)
    write_structure(out, args.output)
    print(f"E = {e:.6f} eV, max |F| = {np.abs(f).max():.4f} eV/Å -> {args.output}")
    if ood is not None:
        print(f"uncertainty: {ood.message()} (per-atom 'ood_score' in the output)")
    return 0
