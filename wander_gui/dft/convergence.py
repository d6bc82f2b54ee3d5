"""Convergence of the reference level of theory: forces at 450 eV and on a denser k mesh.

For a few dataset configurations the SCF is repeated (a) at 450 eV instead of 350 eV and
(b) with twice (three times) the k-point density of the rule the chunk was computed with; the
force differences against the stored reference (PBE+D3 both, so D3 cancels; every other
setting as the chunk's own) tell how converged the training labels are. Results accumulate
in ``<dataset>/convergence.json`` (one entry per configuration and variant; finished entries
are skipped).
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from wander_gui.dft.settings import DFTSettings

log = logging.getLogger(__name__)
#: how each variant changes the reference chunk's own settings
VARIANTS = {"ecut450": lambda s: replace(s, ecut=450.0), "k2x": lambda s: replace(s, k_density=2 * s.k_density),
            "k3x": lambda s: replace(s, k_density=3 * s.k_density)}
DEFAULT_VARIANTS = ("ecut450", "k2x")


def check_convergence(names, dataset="pretrained/dataset", work="work_dft/convergence",
                      variants=DEFAULT_VARIANTS) -> dict:
    from wander_gui.dft.dataset import load_chunks
    from wander_gui.dft.run import scf
    from wander_gui.dft.sampling import build_config, config_spec
    dataset, work = Path(dataset), Path(work)
    out_path = dataset / "convergence.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    rows = {r["name"]: r for r in load_chunks(dataset)}
    for name in names:
        if name not in rows:
            raise KeyError(f"{name} is not in {dataset}")
        ref = rows[name]
        spec = config_spec(int(name[1:5]))
        atoms = build_config(spec)
        if not np.allclose(atoms.positions, ref["positions"], atol=1e-4):
            raise ValueError(f"{name}: rebuilt structure differs from the stored one")
        from wander_gui.dft.dataset import chunk_k_density
        stored = {k: v for k, v in (ref["meta"].get("settings") or {}).items() if k in DFTSettings.__dataclass_fields__}
        base = replace(DFTSettings(**stored), k_density=chunk_k_density(ref["meta"]))
        for variant in variants:
            key = f"{name}:{variant}"
            if key in results:
                continue
            settings = VARIANTS[variant](base)
            (work / name).mkdir(parents=True, exist_ok=True)
            r = scf(atoms, settings, txt=str(work / name / f"{variant}.txt"))
            dF = r.forces - ref["forces"].astype(float)
            results[key] = {"name": name, "variant": variant, "atoms": len(atoms), "kmesh": list(r.kmesh),
                            "ecut": settings.ecut, "force_max_diff_meV_per_A": 1000 * float(np.abs(dF).max()),
                            "force_mae_diff_meV_per_A": 1000 * float(np.abs(dF).mean()),
                            "energy_diff_meV_per_atom": 1000 * (r.energy - float(ref["energy"])) / len(atoms),
                            "reference_fmax_eV_per_A": float(np.abs(ref["forces"]).max()),
                            "seconds": r.seconds}
            log.info("%s: %s", key, results[key])
            out_path.write_text(json.dumps(results, indent=1) + "\n")
    return results
