"""Publish a trained model into ``pretrained/``: weights, manifest entry, model-card table.

``pretrained/manifest.json`` lists models with their files (path + sha256), configuration,
units, level of theory, training-data summary and measured metrics; the registry verifies
the sha256 before ``torch.load(weights_only=True)``. The model card (``pretrained/README.md``)
gets a generated section between ``<!-- model:NAME -->`` markers, so numbers in the card are
always the ones measured at publication.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from wander_gui.errors import DataError

UNITS = {"energy": "eV", "forces": "eV/Å", "hamiltonian": "eV (vacuum level = 0)", "length": "Å"}
ORBITALS = "Mo: d_z², d_xz, d_yz, d_x²−y², d_xy; S: p_x, p_y, p_z (real, global Cartesian axes)"


def validation_metrics(model, validation_dir) -> dict:
    """Errors on the twisted validation cells (never trained on): forces; H by category and
    near-gap bands (aligned at the VBM) where the DFT result has them. ``validation_dir``: one
    folder or several (each cell from the first that holds it, completed from the later ones:
    :func:`~wander_gui.dft.validation.load_merged`); every entry names its sources."""
    import numpy as np

    from wander_gui.dft.validation import CELLS, load_merged
    from wander_gui.ml.data import sample_from_arrays
    from wander_gui.ml.parity import layer_onsite_offsets, parity
    out = {}
    for name in CELLS:
        r = load_merged(validation_dir, name)
        if r is None or "forces" not in r:
            continue
        sample = sample_from_arrays(name, r)
        a = sample.atoms
        res = parity(model, [sample]).summary()
        entry = {"atoms": len(a), "force_mae_meV_per_A": res["forces"]["all"]["mae_meV_per_A"],
                 "dft_fmax_eV_per_A": float(np.abs(r["forces"]).max()),
                 "sources": {kind: r["sources"][key] for kind, key in
                             (("forces", "forces"), ("hamiltonian", "pair_values"), ("relaxation", "relaxed_positions"))
                             if key in r}}
        entry["force_sites"] = {k: {"mae_meV_per_A": v["mae_meV_per_A"], "mean_error_meV_per_A": v["mean_error_meV_per_A"]}
                                for k, v in res["forces"].items() if v and ("outward" in k or "in-plane" in k)}
        entry.update({f"h_{k}": v for k, v in res["hamiltonian"].items() if v and " " not in k})
        if model.hm is not None:
            entry.update(validation_band_errors(model, r))
            offsets = layer_onsite_offsets(model.ff, model.hm, sample)
            if offsets is not None:
                entry["onsite_layer_offset_meV"] = offsets
        if "vacuum_step" in r:  # the potential step across the bilayer (a dipole between the layers)
            entry["dft_vacuum_step_meV"] = 1000 * float(r["vacuum_step"])
        if "relaxed_positions" in r:
            entry["relax"] = relaxation_errors(model, a, r["relaxed_positions"])
        out[name] = entry
    return out


def relaxation_errors(model, rigid, dft_positions, *, fmax: float = 0.01) -> dict:
    """The force field's fixed-cell relaxation (FIRE to ``fmax``) of a rigid validation cell vs
    the DFT relaxation from the same start: position RMSD after removing a uniform
    translation (Å), the largest atomic deviation, the corrugation (peak-to-peak z of each
    layer's metal plane, Å) and the mean metal-plane separation of both."""
    import numpy as np

    from wander_gui.core.layers import ensure_layers
    from wander_gui.core.materials import material_from_elements
    from wander_gui.core.relax import corrugation, relax
    from wander_gui.ml.calculator import WanderCalculator
    res = relax(rigid.copy(), WanderCalculator(model.ff), fmax=fmax, steps=2000)
    dft = rigid.copy()
    dft.positions = np.asarray(dft_positions, float)

    def rmsd(a, b):
        d = a.positions - b.positions
        d -= d.mean(0)
        return float(np.sqrt((d ** 2).sum(1).mean())), float(np.linalg.norm(d, axis=1).max())

    def separation(a):
        layer = ensure_layers(a)
        symbols = a.get_chemical_symbols()
        metal = np.array(symbols) == material_from_elements(symbols).metal
        return float(abs(a.positions[metal & (layer == 1), 2].mean() - a.positions[metal & (layer == 0), 2].mean()))
    ml = res.atoms
    r_ml, dmax = rmsd(ml, dft)
    return {"rmsd_ml_vs_dft_A": r_ml, "max_dev_ml_vs_dft_A": dmax, "rmsd_dft_vs_rigid_A": rmsd(dft, rigid)[0],
            "corrugation_ml_A": corrugation(ml), "corrugation_dft_A": corrugation(dft),
            "separation_ml_A": separation(ml), "separation_dft_A": separation(dft),
            "separation_rigid_A": separation(rigid), "ml_converged": bool(res.converged), "ml_steps": int(res.steps)}


def validation_band_errors(model, r) -> dict:
    """Near-gap band errors of the predicted H on a DFT result (aligned at the VBM):
    ``bands`` on the moiré path vs the DFT path, or vs the DFT Wannier bands where no direct
    path was computed (``bands_source`` says which), and ``bands_dft_points`` vs the DFT
    eigenvalues themselves at the Wannier step's k-points."""
    from wander_gui import backend
    from wander_gui.electronic.bands import compute_bands
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.ml.data import sample_from_arrays
    from wander_gui.ml.predict import predict_blocks
    a = sample_from_arrays("cell", r).atoms
    ref = backend.reference_bands(r)
    pts = backend.dft_point_bands(r)
    if ref is None and pts is None:
        return {}
    p = predict_blocks(model.ff, model.hm, a)
    tb = TBHamiltonian.from_pair_blocks(a, p.ij, p.shift, p.blocks, p.offsets, p.counts)
    out = {}
    if ref is not None:
        out["bands"] = backend.band_errors(compute_bands(tb, ref.kpts_kc), ref)
        out["bands_source"] = ref.source
    if pts is not None:
        out["bands_dft_points"] = backend.band_errors(compute_bands(tb, pts.kpts_kc), pts)
    # band errors split by layer, at the SCF k-points with their layer weights (the same points as
    # above for a cell without a Wannier step)
    if pts is not None and pts.layer0_weight_kn is not None:
        out["layer_offset_meV"] = out["bands_dft_points"]["layer_offset_meV"]
    elif (layered := backend.dft_point_bands(r, scf_first=True)) is not None and layered.layer0_weight_kn is not None:
        out["layer_offset_meV"] = backend.band_errors(compute_bands(tb, layered.kpts_kc), layered)["layer_offset_meV"]
    return out


def held_out_attribution(model, dataset_dir, validation_dir, *, seed: int = 0, k_density: float | None = None,
                         held_names=None) -> dict:
    """Band-error attribution (ml.parity.band_error_attribution) on the labelled configurations
    the heads were not trained on (val and test split; of the k-mesh rule ``k_density`` when
    given; ``held_names``: those the run recorded, instead of the split of ``seed``) and on the
    labelled validation cells."""
    if model.hm is None:
        return {}
    from wander_gui.dft.validation import CELLS, load_merged
    from wander_gui.ml.data import load_samples, sample_from_arrays, select_k_density, split
    from wander_gui.ml.parity import band_error_attribution
    from wander_gui.dft.dataset import has_current_label
    samples, _ = select_k_density(load_samples(dataset_dir), k_density)
    samples = [s for s in samples if has_current_label(s.chunk)]
    if held_names is not None:
        held = [s for s in samples if s.name in set(held_names)]
    else:
        parts = split([s.name for s in samples], seed=seed)
        held = [s for s in samples if parts[s.name] != "train"]
    for name in CELLS:
        r = load_merged(validation_dir, name)
        if r is not None and has_current_label(r):
            held.append(sample_from_arrays(name, r))
    return band_error_attribution(model.ff, model.hm, held)


def _fmt(x, nd=1):
    return "–" if x is None else f"{x:.{nd}f}"


def _band_layer_offsets(v: dict) -> str:
    off = v.get("layer_offset_meV") or {}
    parts = [f"{off[k]['C']:+.1f} ± {off[k]['C_err']:.1f}" if k in off else "–" for k in ("valence", "conduction")]
    return "–" if not off else " / ".join(parts)


def _onsite_layer_offsets(v: dict) -> str:
    off = v.get("onsite_layer_offset_meV")
    if not off or "top_minus_bottom" not in off:
        return "–"
    lay = off["layers"]
    return f"{lay['bottom']['mean']:+.1f} / {lay['top']['mean']:+.1f} ({off['top_minus_bottom']:+.1f})"


def _data_sentence(entry: dict) -> str:
    td = entry["training_data"]
    head = ("Dataset at publication" if "counted_from" not in td else
            f"Trained on (counted from {td['counted_from']})")
    finetune = f" plus {td['n_finetune_configs']} fine-tuning cells" if td.get("n_finetune_configs") else ""
    return (f"{head}: {td['n_configs']} configurations with energies and forces{finetune}, "
            f"{td['n_hamiltonian_configs']} with Wannier Hamiltonians ({entry['level_of_theory']}). "
            f"Split 80/10/10 by configuration (seed {entry['seed']}).")


def model_card_section(entry: dict) -> str:
    """Markdown tables of the metrics stored in a manifest entry."""
    m = entry["metrics"]
    lines = [f"<!-- model:{entry['name']} -->", f"### `{entry['name']}` ({entry['created']})", "",
             entry.get("description", ""), "",
             _data_sentence(entry), "",
             *([f"Hamiltonian heads trained on another dataset: {hd['n_hamiltonian_configs']} Wannier-labelled "
                f"configurations of `{hd['folder']}` ({hd['level_of_theory']}).", ""]
               if (hd := entry.get("hamiltonian_data")) else []),
             "| force field | n configs | energy MAE (meV/atom) | force MAE (meV/Å) | force RMSE (meV/Å) |",
             "|---|---|---|---|---|"]
    for part in ("train", "val", "test"):
        r = m["ff"].get(part)
        if r:
            lines.append(f"| {part} | {r['n']} | {_fmt(r['energy_mae_meV_per_atom'], 2)} | "
                         f"{_fmt(r['force_mae_meV_per_A'])} | {_fmt(r['force_rmse_meV_per_A'])} |")
    if any((m.get("h") or {}).get(part) for part in ("train", "val", "test")):  # (an ensemble: per member)
        lines += ["", "| Hamiltonian (elements with \\|H\\| > 1 meV) | split | MAE (meV) | R² | n elements |",
                  "|---|---|---|---|---|"]
        for part in ("train", "val", "test"):
            r = m["h"].get(part)
            if not r:
                continue
            for cat, v in r.items():
                if isinstance(v, dict) and "mae_meV" in v:
                    lines.append(f"| {cat} | {part} | {_fmt(v['mae_meV'], 2)} | {_fmt(v.get('r2'), 3)} | "
                                 f"{v.get('n', '–')} |")
    members = (m.get("h") or {}).get("members") or []
    if members:
        lines += ["", f"Hamiltonian heads: the mean of {len(members)} independently trained heads on this force "
                  "field (a heads ensemble; the members' spread is the uncertainty of each element). Each member "
                  "has its own 80/10/10 split, so every labelled configuration trained at least one member: the "
                  "untwisted held-out errors below are each member's on its own test split; the twisted "
                  "validation cells further down are held out from all of them.", "",
                  "| member (run, seed) | best / last epoch | training configs | test H MAE on-site / intra / inter / all (meV) | "
                  "test bands MAE / mean \\|gap error\\| (meV) |", "|---|---|---|---|---|"]
        for mb in members:
            t = mb.get("test") or {}
            h = " / ".join(_fmt((t.get(c) or {}).get("mae_meV"), 2) for c in ("onsite", "intra", "inter", "all"))
            b = ((mb.get("bands") or {}).get("test") or {}).get("mean") or {}
            lines.append(f"| {mb['run']}, {mb['seed']} | {mb.get('best_epoch', '–')} / {mb.get('epochs_run', '–')} | "
                         f"{mb.get('n_train', '–')} | {h} | "
                         f"{_fmt(b.get('mae_meV'))} / {_fmt(b.get('gap_error_meV'))} |")
    bands = (m.get("h") or {}).get("bands") or {}
    if any(bands.get(p) for p in ("train", "val", "test")):
        lines += ["", "| bands from predicted H vs DFT Wannier H (Γ–M–K–Γ, aligned at the VBM, "
                  "states within 1 eV of the gap) | split | configs | MAE (meV) | max (meV) | mean \\|gap error\\| (meV) |",
                  "|---|---|---|---|---|---|"]
        for part in ("train", "val", "test"):
            r = bands.get(part)
            if r and "mean" in r:
                lines.append(f"| untwisted configurations | {part} | {len(r) - 1} | {_fmt(r['mean']['mae_meV'])} | "
                             f"{_fmt(r['mean']['max_meV'])} | {_fmt(r['mean']['gap_error_meV'])} |")
    steps = (m.get("h") or {}).get("vacuum_step") or {}
    if any(steps.get(p) for p in ("train", "val", "test")):
        lines += ["", "| layer dipole: step between the two vacuum levels, predicted vs DFT (every configuration "
                  "that stores it, energies-and-forces ones included) | split | configs | MAE (meV) | R² | "
                  "mean \\|ΔV_DFT\\| (meV) |", "|---|---|---|---|---|---|"]
        for part in ("train", "val", "test"):
            r = steps.get(part)
            if r:
                lines.append(f"| untwisted configurations | {part} | {r['n']} | {_fmt(r['mae_meV'])} | "
                             f"{_fmt(r['r2'], 3)} | {_fmt(r['mean_abs_dft_meV'])} |")
    abl = m.get("ablation")
    if abl:
        from wander_gui.ml.ablation import ablation_table
        n_train = "/".join(str(n) for n in sorted({r.get("n_train") for r in abl.values()}))
        lines += ["", "Ablation of the Hamiltonian-head inputs (`wander ablation`; MAE meV / R², elements with "
                  f"\\|H\\| > 1 meV; heads retrained on {n_train} labelled configurations with the same "
                  "force field, seed and time budget):", "", ablation_table(abl).rstrip()]
    val = m.get("validation") or {}
    if val and entry.get("validation_measured"):
        lines += ["", f"Twisted validation cells measured again on {entry['validation_measured']} (DFT results "
                  "completed after publication; the model is unchanged)."]
    if val:
        lines += ["", "| twisted validation cell (never trained on) | atoms | force MAE (meV/Å) | DFT fmax (eV/Å) | "
                  "H MAE all (meV) | H MAE on-site / intra / inter (meV) | H R² on-site / intra / inter | "
                  "near-gap band MAE, path (meV) | near-gap band MAE at DFT k-points (meV) | gap error (meV) | "
                  "VBM / CBM error, vacuum-referenced (meV) | on-site error per layer, bottom / top (top − bottom) "
                  "(meV) | per-layer offset C of the band errors, valence / conduction (meV) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        sources = set()
        for name, v in val.items():
            h = " / ".join(_fmt((v.get(f"h_{c}") or {}).get("mae_meV")) for c in ("onsite", "intra", "inter"))
            r2 = " / ".join(_fmt((v.get(f"h_{c}") or {}).get("r2"), 3) for c in ("onsite", "intra", "inter"))
            h_all = _fmt((v.get("h_all") or {}).get("mae_meV"), 2)
            b, bp = v.get("bands") or {}, v.get("bands_dft_points") or {}
            if v.get("bands_source"):
                sources.add(v["bands_source"].split(" (")[0])
            lines.append(f"| {name} | {v['atoms']} | {_fmt(v['force_mae_meV_per_A'])} | "
                         f"{_fmt(v['dft_fmax_eV_per_A'], 3)} | {h_all} | {h} | {r2} | {_fmt(b.get('mae_meV'))} | "
                         f"{_fmt(bp.get('mae_meV'))} | {_fmt(bp.get('gap_error_meV', b.get('gap_error_meV')))} | "
                         f"{_fmt(bp.get('vbm_error_meV'))} / {_fmt(bp.get('cbm_error_meV'))} | "
                         f"{_onsite_layer_offsets(v)} | {_band_layer_offsets(v)} |")
        if sources:
            lines += ["", "Band errors: states within 1 eV of the gap, both band sets aligned at their valence "
                      f"maximum; the path reference is the {' / '.join(sorted(sources))}; the DFT k-points are the "
                      "Wannier mesh and off-mesh check points of the DFT run (plain DFT eigenvalues, no "
                      "interpolation; for a cell without a Wannier step, the SCF's own k-mesh); the gap error "
                      "is taken at those points, and the VBM / CBM errors there compare the band edges without "
                      "any alignment (both vacuum-referenced: a per-layer offset such as the WANDER paper's "
                      "constant C for layers of unequal atom counts would show here). The per-layer columns "
                      "measure that constant directly: the mean error of each layer's on-site energies (Wannier "
                      "H), and, where the SCF stored each state's layer weights (PAW projections), a fit of the "
                      "unaligned error of every state within 1 eV of the gap at the SCF k-points as a + C·w_top "
                      "(w_top: its DFT weight on the top layer), for valence and conduction states apart, with its "
                      "standard error: a per-layer constant gives the same C for both, a layer-dependent gap error "
                      "does not."]
        folders = {x for v in val.values() for x in (v.get("sources") or {}).values()}
        if len(folders) > 1:
            lines += ["", "DFT results from several folders: " + "; ".join(
                f"{name}: " + ", ".join(f"{kind} from `{d}`" for kind, d in v["sources"].items())
                for name, v in val.items() if v.get("sources")) + "."]
    sites = {n: v["force_sites"] for n, v in (val or {}).items() if v.get("force_sites")}
    if sites:
        keys = sorted({k for v in sites.values() for k in v}, key=lambda k: (k.split()[0], k))
        lines += ["", "Force errors on the twisted cells by site (meV/Å): MAE of the in-plane components, and MAE "
                  "(mean error) of the component along the layer's outward normal — a mean error far from 0 is "
                  "a systematic bias, e.g. of the layer thickness:", "",
                  "| cell | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for name, v in sites.items():
            cells = []
            for k in keys:
                x = v.get(k)
                cells.append("–" if x is None else _fmt(x["mae_meV_per_A"]) + (
                    f" ({x['mean_error_meV_per_A']:+.1f})" if "outward" in k else ""))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    relaxed = {n: v["relax"] for n, v in (val or {}).items() if v.get("relax")}
    if relaxed:
        lines += ["", "| relaxed structure vs the DFT relaxation (fixed cell, same rigid start; DFT fmax 0.02, "
                  "model 0.01 eV/Å) | position RMSD (Å) | max deviation (Å) | DFT displacement RMSD from rigid (Å) | "
                  "corrugation per layer, model / DFT (Å) | metal-plane separation, model / DFT / rigid (Å) |",
                  "|---|---|---|---|---|---|"]
        for name, x in relaxed.items():
            corr = " / ".join(f"{a:.3f}, {b:.3f}" for a, b in
                              [(x["corrugation_ml_A"][0], x["corrugation_ml_A"][1]),
                               (x["corrugation_dft_A"][0], x["corrugation_dft_A"][1])])
            lines.append(f"| {name} | {x['rmsd_ml_vs_dft_A']:.4f} | {x['max_dev_ml_vs_dft_A']:.4f} | "
                         f"{x['rmsd_dft_vs_rigid_A']:.4f} | {corr} | {x['separation_ml_A']:.3f} / "
                         f"{x['separation_dft_A']:.3f} / {x['separation_rigid_A']:.3f} |")
    att = m.get("band_error_attribution") or {}
    if att:
        lines += ["", "Which part of the predicted H makes the band error (`wander parity --attribution`): near-gap "
                  "band MAE (meV) vs the DFT Wannier bands with all blocks predicted, then with one category "
                  "replaced by its DFT blocks; configurations the heads were not trained on:", "",
                  "| configuration | predicted | DFT on-site | DFT intra | DFT inter |", "|---|---|---|---|---|"]
        for name, row in att.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in
                                                    ("predicted", "DFT on-site", "DFT intra", "DFT inter")) + " |")
    lines += ["", f"<!-- /model:{entry['name']} -->"]
    return "\n".join(lines)


def update_model_card(readme: Path, entry: dict) -> None:
    text = readme.read_text() if readme.exists() else "# pretrained/\n"
    section = model_card_section(entry)
    start, end = f"<!-- model:{entry['name']} -->", f"<!-- /model:{entry['name']} -->"
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    readme.write_text(text)


def _trained_on_summary(trained_on: dict) -> dict:
    """Counts of the configurations a run recorded as its data (``split_record``): these replace
    the dataset folder's counts at publication, which may have grown since training."""
    from wander_gui.dft.sampling import FINETUNE_PLANS, plan_of
    out = {}
    if "ff" in trained_on:
        names = [n for p in ("train", "val", "test") for n in trained_on["ff"][p]]
        finetune = [n for n in names if plan_of(n) in FINETUNE_PLANS]
        out.update(n_configs=len(names) - len(finetune), n_finetune_configs=len(finetune),
                   n_atoms_total=trained_on["ff"]["n_atoms_total"])
    if "h" in trained_on:
        out["n_hamiltonian_configs"] = sum(len(trained_on["h"][p]) for p in ("train", "val", "test"))
    if out:
        out["counted_from"] = "the run's recorded splits" if len(trained_on) == 2 else \
            f"the run's recorded splits ({', '.join(trained_on)}) and the dataset at publication"
    return out


def _h_data_summary(h_dataset_dir) -> dict:
    from wander_gui.dft.dataset import dataset_info
    info = dataset_info(h_dataset_dir)
    return {"folder": str(h_dataset_dir), "n_hamiltonian_configs": info["n_hamiltonian_configs"],
            "level_of_theory": info["level_of_theory"]}


def assemble_heads_ensemble(run_dirs, out_dir) -> dict:
    """Write ``out_dir`` as a run whose heads are the mean of the heads in ``run_dirs`` (each a
    ``wander train`` output with ``ff.pt``, ``h.pt`` and ``h_metrics.json``, all on the same
    force field): ``ff.pt``, ``h.pt`` (:class:`~wander_gui.ml.hamiltonian.HeadsEnsemble`) and
    ``h_metrics.json`` with each member's own held-out errors under ``members``. The recorded
    split is the union: ``train`` = every configuration some member trained on, ``val`` /
    ``test`` = those no member trained on."""
    import torch

    from wander_gui.ml.hamiltonian import HeadsEnsemble, heads_checkpoint, heads_from_checkpoint
    from wander_gui.ml.registry import sha256
    runs = [Path(d) for d in run_dirs]
    if len(runs) < 2:
        raise DataError("a heads ensemble needs at least two runs")
    for r in runs:
        for f in ("ff.pt", "h.pt", "h_metrics.json"):
            if not (r / f).exists():
                raise DataError(f"{r / f} not found: each ensemble member must be a finished `wander train` run")
    if len({sha256(r / "ff.pt") for r in runs}) != 1:
        raise DataError("the ensemble members' heads were trained on different force fields (ff.pt differ): "
                        "heads only fit the force field whose latent features they read")
    members = [heads_from_checkpoint(torch.load(r / "h.pt", weights_only=True)) for r in runs]
    ens = HeadsEnsemble(members)  # raises if the architectures differ
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(runs[0] / "ff.pt", out / "ff.pt")
    torch.save(heads_checkpoint(ens), out / "h.pt")
    ms = [json.loads((r / "h_metrics.json").read_text()) for r in runs]
    data = [m["data"] for m in ms]
    trained = sorted({n for d in data for n in d["train"]})
    val = sorted({n for d in data for n in d["val"]} - set(trained))
    test = sorted({n for d in data for n in d["test"]} - set(trained) - set(val))
    metrics = {"config": {**ms[0]["config"], "seed": [m["config"]["seed"] for m in ms]},
               "members": [{"run": str(r), "seed": m["config"]["seed"], "best_epoch": m.get("best_epoch"),
                            "epochs_run": m.get("epochs_run"), "n_train": m.get("n_train"), "test": m.get("test"), "val": m.get("val"),
                            "bands": {p: (m.get("bands") or {}).get(p) for p in ("val", "test")}}
                           for r, m in zip(runs, ms)],
               "data": {"n_atoms_total": max(d["n_atoms_total"] for d in data),
                        "train": trained, "val": val, "test": test}}
    (out / "h_metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def publish(run_dir, name: str, *, pretrained_dir, dataset_dir, material: str = "MoS2",
            description: str = "", validation_dir=None, k_density: float | None = None,
            h_dataset_dir=None) -> dict:
    """Copy ``run_dir/ff.pt`` (+ ``h.pt``) to ``pretrained_dir/name/`` and register them.

    ``validation_dir``: the twisted validation results to measure on, one folder or several in
    order of precedence (default: ``validation`` beside the dataset); ``k_density``: the k-mesh
    rule the model was trained on — the training data summary and the held-out band attribution
    then count only chunks of that rule (the validation forces should be of a converged rule;
    the card names each array's folder); ``h_dataset_dir``: where the heads' Wannier labels came
    from when not from ``dataset_dir`` (counted and named in the training data summary)."""
    from wander_gui.dft.dataset import dataset_info
    from wander_gui.ml.registry import sha256
    run_dir, pre = Path(run_dir), Path(pretrained_dir)
    if not (run_dir / "ff.pt").exists():
        raise DataError(f"{run_dir}/ff.pt not found: run `wander train` first")
    dest = pre / name
    dest.mkdir(parents=True, exist_ok=True)
    files, metrics = {}, {}
    for key in ("ff", "h"):
        src = run_dir / f"{key}.pt"
        if not src.exists():
            continue
        shutil.copy(src, dest / f"{key}.pt")
        files[key] = {"path": f"{name}/{key}.pt", "sha256": sha256(dest / f"{key}.pt")}
        mfile = run_dir / f"{key}_metrics.json"
        if mfile.exists():
            metrics[key] = json.loads(mfile.read_text())
    manifest = pre / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.exists() else {"models": []}
    published = data["models"]
    same = None
    if "ff" not in metrics:  # heads trained on a published force field: its metrics as published
        same = next((m for m in published if m.get("files", {}).get("ff", {}).get("sha256") == files["ff"]["sha256"]
                     and "ff" in m.get("metrics", {})), None)
        if same is not None:
            metrics["ff"] = {"config": (same.get("config") or {}).get("ff"), **same["metrics"]["ff"]}
    info = dataset_info(dataset_dir)
    if k_density is not None:
        from wander_gui.dft.settings import level_of_theory
        info.update(info["by_k_density"].get(f"{k_density:g}", {"n_configs": 0, "n_hamiltonian_configs": 0,
                                                                "n_atoms_total": 0}),
                    level_of_theory=level_of_theory(k_density))
    if validation_dir is None:
        validation_dir = Path(dataset_dir).parent / "validation"
    from wander_gui.ml.registry import load_model
    model = load_model(directory=run_dir)
    val = validation_metrics(model, validation_dir)
    h_data = metrics.get("h", {}).get("data")
    attribution = held_out_attribution(model, dataset_dir, validation_dir, k_density=k_density,
                                       seed=(metrics.get("h", {}).get("config") or {}).get("seed", 0),
                                       held_names=None if h_data is None else h_data["val"] + h_data["test"])
    training_data = {k: info[k] for k in ("n_configs", "n_hamiltonian_configs", "n_atoms_total")}
    trained_on = {k: metrics[k]["data"] for k in ("ff", "h") if "data" in metrics.get(k, {})}
    if same is not None and "ff" in same.get("trained_on", {}):  # the published force field's recorded data
        trained_on["ff"] = {**same["trained_on"]["ff"], "n_atoms_total": same["training_data"]["n_atoms_total"]}
    training_data.update(_trained_on_summary(trained_on))
    if same is not None:  # the force field's data as recorded or stated at that publication
        if "ff" not in trained_on:
            training_data.update({k: same["training_data"][k] for k in ("n_configs", "n_atoms_total")})
        training_data["counted_from"] = (("the run's recorded splits (h); " if "h" in trained_on else "")
                                         + f"the force field's data as published with {same['name']}")
    cfg = metrics.get("ff", {}).get("config", {})
    entry = {"name": name, "material": material, "created": time.strftime("%Y-%m-%d"),
             "description": description, "files": files, "units": UNITS, "orbitals": ORBITALS,
             "level_of_theory": info["level_of_theory"], "seed": cfg.get("seed"),
             "config": {k: v.get("config") for k, v in metrics.items()},
             "training_data": training_data,
             **({"trained_on": {k: {p: v[p] for p in ("train", "val", "test")} for k, v in trained_on.items()}}
                if trained_on else {}),
             **({"hamiltonian_data": _h_data_summary(h_dataset_dir)} if h_dataset_dir is not None else {}),
             "metrics": {**{k: {p: v.get(p) for p in ("train", "val", "test", "bands", "vacuum_step", "members")
                                if v.get(p) is not None}
                            for k, v in metrics.items()},
                         "validation": val, "band_error_attribution": attribution}}
    if (run_dir / "ablation" / "ablation.json").exists():
        entry["metrics"]["ablation"] = json.loads((run_dir / "ablation" / "ablation.json").read_text())
    data["models"] = [entry] + [m for m in published if m["name"] != name]
    manifest.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    update_model_card(pre / "README.md", entry)
    return entry


def remeasure(name: str, *, pretrained_dir, validation_dir) -> dict:
    """Measure a published model again on the twisted validation cells — their DFT results grow
    after publication (a relaxation converges, a Wannier label is added) — replacing only the
    manifest entry's validation metrics (the date goes to ``validation_measured``; weights,
    training data and held-out metrics stay as published) and its model-card section."""
    from wander_gui.ml.registry import load_model
    pre = Path(pretrained_dir)
    manifest = pre / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.exists() else {"models": []}
    entry = next((m for m in data["models"] if m["name"] == name), None)
    if entry is None:
        raise DataError(f"no published model {name!r} in {manifest}; published: "
                        f"{', '.join(m['name'] for m in data['models']) or 'none'}")
    entry["metrics"]["validation"] = validation_metrics(load_model(name), validation_dir)
    entry["validation_measured"] = time.strftime("%Y-%m-%d")
    manifest.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    update_model_card(pre / "README.md", entry)
    return entry
