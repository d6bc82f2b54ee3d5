"""Ablation of the Hamiltonian-head inputs (the paper's Fig. 4, on our data).

Each variant retrains the heads with the same force field, split, seed and training
settings, changing one input:

* intra-layer hoppings from RAER + relative position (WANDER), from the relative position
  only, or from the raw force-field descriptor + relative position;
* inter-layer hoppings from the relative position only (WANDER) or RAER + relative position;
* the two-centre block form instead of the local crystal frame (our addition);
* each S sheet in its own frame (``sublayer_frames``, our addition: with one frame per layer the
  two mirror-image S sheets of a layer give identical inputs), with RAER + r or r only within
  a layer.

Reported: MAE and R² over elements with |H_DFT| > 1 meV on the test configurations and, where
the twisted validation cells carry Wannier labels, on those, with the near-gap band error
(aligned at the VBM, vs the DFT bands of each cell) of the predicted H.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

VARIANTS = {
    "WANDER: intra RAER + r, inter r": {},
    "intra: r only": {"intra_input": "none"},
    "intra: descriptor + r": {"intra_input": "descriptor"},
    "inter: RAER + r": {"inter_uses_raer": True},
    "two-centre blocks (no crystal frame)": {"block_form": "sk"},
    "sublayer frames, intra RAER + r": {"sublayer_frames": True},
    "sublayer frames, intra r only": {"sublayer_frames": True, "intra_input": "none"},
}


def variant_dir(out_dir, name: str) -> Path:
    """Folder of one variant's training run inside ``out_dir``."""
    return Path(out_dir) / "".join(c if c.isalnum() else "_" for c in name.lower())[:40]


def twisted_results(validation_dir) -> dict:
    """DFT results of the twisted validation cells that carry a Wannier label, by name
    (``validation_dir``: one folder or several, as :func:`~wander_gui.dft.validation.load_merged`)."""
    from wander_gui.dft.dataset import has_current_label
    from wander_gui.dft.validation import CELLS, load_merged
    out = {}
    for name in CELLS:
        r = load_merged(validation_dir, name) if validation_dir else None
        if r is not None and has_current_label(r):
            out[name] = r
    return out


def run_ablation(samples, ff, base_cfg, out_dir, *, validation_dir=None, variants=None, progress=True) -> dict:
    """Train every variant; write ``ablation.json`` and ``ablation.md`` in ``out_dir``."""
    from wander_gui.ml.data import sample_from_arrays
    from wander_gui.ml.parity import parity
    from wander_gui.ml.publish import validation_band_errors
    from wander_gui.ml.train_h import train_hamiltonian
    out_dir = Path(out_dir)
    twisted_dft = twisted_results(validation_dir)
    twisted = [sample_from_arrays(name, r) for name, r in twisted_dft.items()]
    results = {}
    for name, change in (variants or VARIANTS).items():
        cfg = copy.deepcopy(base_cfg)
        cfg.model.update(change)
        hm, m = train_hamiltonian(samples, ff, cfg, out_dir=variant_dir(out_dir, name), progress=progress)
        row = {"change": change, "test": m["test"], "train": m["train"], "n_train": m["n_train"]}
        if twisted:
            model = SimpleNamespace(ff=ff, hm=hm)
            row["twisted"] = parity(model, twisted).summary()["hamiltonian"]
            bands = {cell: validation_band_errors(model, r).get("bands") for cell, r in twisted_dft.items()}
            row["twisted_bands"] = {cell: b for cell, b in bands.items() if b}
        results[name] = row
    (out_dir / "ablation.json").write_text(json.dumps(results, indent=1))
    (out_dir / "ablation.md").write_text(ablation_table(results))
    return results


def ablation_table(results: dict) -> str:
    """Markdown table: MAE (meV) / R² for intra- and inter-layer hoppings per variant and, on
    the twisted cells, the near-gap band MAE of each cell (meV, aligned at the VBM)."""
    def cell(block, key):
        v = (block or {}).get(key)
        return "–" if not v else f"{v['mae_meV']:.1f} / {v['r2']:.3f}"
    has_tw = any("twisted" in r for r in results.values())
    band_cells = sorted({c for r in results.values() for c in r.get("twisted_bands", {})})
    head = ["variant", "test intra", "test inter"] + (["twisted intra", "twisted inter"] if has_tw else []) + \
        [f"bands {c}" for c in band_cells]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        row = [name, cell(r["test"], "intra"), cell(r["test"], "inter")]
        if has_tw:
            row += [cell(r.get("twisted"), "intra"), cell(r.get("twisted"), "inter")]
        for c in band_cells:
            b = r.get("twisted_bands", {}).get(c)
            row.append("–" if not b else f"{b['mae_meV']:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
