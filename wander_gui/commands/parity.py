"""Predicted vs DFT for a labelled dataset or extxyz: forces and H blocks by category."""
from __future__ import annotations

NAME = "parity"
HELP = "predicted vs DFT (forces, Hamiltonian by category): numbers and a plot"


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="dataset directory (default: the shipped DFT dataset)")
    src.add_argument("--structure", nargs="+", default=None,
                     help="extxyz file(s) with DFT `forces` (e.g. from `wander dft single-point`)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                   help="which configurations of the dataset (split by configuration, as in training)")
    p.add_argument("--seed", type=int, default=0, help="split seed used in training")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", default=None, help="pretrained model name (default: the shipped MoS2 model)")
    g.add_argument("--model-dir", default=None, help="directory with ff.pt [and h.pt] from `wander train`")
    p.add_argument("--plot", default=None, help="write parity plots (PNG/PDF)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--attribution", action="store_true",
                   help="near-gap band MAE with the on-site / intra / inter blocks replaced by DFT in turn "
                        "(which part of the predicted H makes the band error)")


def run(args) -> int:
    import json

    import numpy as np

    from wander_gui import backend
    from wander_gui.errors import InputError
    from wander_gui.ml.data import Sample, load_samples, split
    from wander_gui.ml.parity import parity, plot_parity
    model = backend.get_model(args.model, args.model_dir)
    if args.structure:
        from wander_gui.core.io import read_structure
        from wander_gui.core.layers import ensure_layers
        samples = []
        for f in args.structure:
            a = read_structure(f)
            if "forces" not in a.arrays and a.calc is None:
                raise InputError(f"{f} has no `forces` array: parity needs DFT forces")
            forces = a.arrays.get("forces") if "forces" in a.arrays else a.get_forces()
            ensure_layers(a)
            samples.append(Sample(str(f), a, float(a.info.get("energy", np.nan)), np.asarray(forces, float), None))
    else:
        from wander_gui.commands.dataset import DEFAULT_OUT
        samples = load_samples(args.data or DEFAULT_OUT)
        if args.split != "all":
            parts = split([s.name for s in samples], seed=args.seed)
            samples = [s for s in samples if parts[s.name] == args.split]
        if not samples:
            raise InputError(f"the {args.split} split is empty")
    res = parity(model, samples)
    summary = res.summary()
    att = None
    if args.attribution and model.hm is not None:
        from wander_gui.ml.parity import band_error_attribution
        att = summary["band_error_attribution_meV"] = band_error_attribution(model.ff, model.hm, samples)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{len(samples)} configurations ({model.name})")
        for k, m in summary["forces"].items():
            if m:
                print(f"  forces {k:16s}: MAE {m['mae_meV_per_A']:8.1f} meV/Å  mean error "
                      f"{m['mean_error_meV_per_A']:+7.1f}  R² {m['r2']:.4f}  (n={m['n']})")
        for k, m in summary["hamiltonian"].items():
            if m:
                print(f"  H {k:10s}: MAE {m['mae_meV']:8.2f} meV    R² {m['r2']:.4f}  (n={m['n']})")
    if att is not None and not args.json:
        print("  near-gap band MAE (meV): predicted | DFT on-site | DFT intra | DFT inter")
        for name, row in att.items():
            print(f"  {name:16s} " + " | ".join(f"{v:7.1f}" for v in row.values()))
    if args.plot:
        plot_parity(res, args.plot, title=model.name)
        print(f"plot -> {args.plot}")
    return 0
