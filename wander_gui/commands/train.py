"""Train the force field and the Hamiltonian heads on the DFT dataset."""
from __future__ import annotations

NAME = "train"
HELP = "train (or fine-tune) the force field and Hamiltonian heads"


def add_arguments(p) -> None:
    p.add_argument("--config", default=None, help="JSON with 'ff' and/or 'h' sections (see FFTrainConfig)")
    p.add_argument("--data", nargs="+", default=["pretrained/dataset"],
                   help="dataset folder(s); fine-tuning: the training set plus pretrained/finetune")
    p.add_argument("--out", default="runs/train", help="output directory (checkpoints, metrics)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--finetune", nargs="+", default=[], metavar="DIR",
                   help="fine-tuning folder(s) (e.g. pretrained/finetune): their cells are always in the "
                        "training split of the force field, and of the heads where they carry a Wannier label (they "
                        "are few; the twisted validation cells measure the effect), and are kept whatever "
                        "--k-density selects")
    p.add_argument("--finetune-repeat", type=int, default=1, metavar="W",
                   help="each fine-tuning cell counts W times per epoch (default 1)")
    p.add_argument("--k-density", type=float, default=None, metavar="A",
                   help="train only on chunks computed with this k-mesh rule (Å; the rule changed from 12 to 18 "
                        "on 2026-11-23); default: all, with a warning when levels are mixed")
    p.add_argument("--h-data", nargs="+", default=None, metavar="DIR",
                   help="train the Hamiltonian heads on these dataset folder(s) instead of --data (e.g. Wannier "
                        "labels of another k-mesh rule while the force field uses --data); recorded at --publish")
    p.add_argument("--init", default=None,
                   help="fine-tune: start from this model directory (ff.pt and, if present, h.pt)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--what", dest="what", default="both", choices=["ff", "h", "both", "none"],
                   help="what to train ('none' with --publish: publish an existing run)")
    p.add_argument("--publish", metavar="NAME", default=None,
                   help="copy the result to pretrained/NAME, register it in pretrained/manifest.json "
                        "(sha256, config, metrics) and update the model card")
    p.add_argument("--description", default="", help="one line for the manifest and model card")
    p.add_argument("--validation", nargs="+", default=None, metavar="DIR",
                   help="twisted validation results measured at publication (default: 'validation' beside the "
                        "dataset); several folders in order of precedence: each cell from the first that holds "
                        "it, completed from the others (e.g. pretrained/validation-k18 pretrained/validation: "
                        "forces of the current k-mesh rule, Wannier H of the former where only that has it)")
    p.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                   help="with --what none: make --out a run whose Hamiltonian heads are the mean of these runs' "
                        "heads (same force field, e.g. other --seed values); publish it with --publish")
    p.add_argument("--remeasure", metavar="NAME", default=None,
                   help="measure the published model NAME again on the twisted validation cells (--validation) "
                        "and update its manifest metrics and model-card section; trains nothing")


def run(args) -> int:
    import json
    import shutil
    import sys
    from pathlib import Path

    import torch

    from wander_gui.ml.data import check_unique_names, load_samples, select_k_density
    from wander_gui.ml.forcefield import ForceField
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    from wander_gui.ml.train_h import HTrainConfig, train_hamiltonian
    if args.remeasure:
        from wander_gui.ml.publish import remeasure
        from wander_gui.ml.registry import PRETRAINED
        entry = remeasure(args.remeasure, pretrained_dir=PRETRAINED,
                          validation_dir=args.validation or str(Path(args.data[0]).parent / "validation"))
        print(json.dumps({n: {k: v for k, v in x.items() if k in ("force_mae_meV_per_A", "relax", "bands")}
                          for n, x in entry["metrics"]["validation"].items()}, indent=1))
        return 0
    if args.ensemble:
        if args.what != "none":
            print("error: --ensemble combines finished runs: use it with --what none", file=sys.stderr)
            return 2
        from wander_gui.ml.publish import assemble_heads_ensemble
        m = assemble_heads_ensemble(args.ensemble, args.out)
        print(f"heads ensemble of {len(args.ensemble)} runs (seeds {m['config']['seed']}) written to {args.out}")
        if args.publish:
            from wander_gui.ml.publish import publish
            from wander_gui.ml.registry import PRETRAINED
            entry = publish(args.out, args.publish, pretrained_dir=PRETRAINED, dataset_dir=args.data[0],
                            description=args.description, validation_dir=args.validation,
                            k_density=args.k_density)
            print(f"published {entry['name']} to {PRETRAINED / entry['name']}")
        return 0
    cfg = json.loads(Path(args.config).read_text()) if args.config else {}
    fcfg, hcfg = FFTrainConfig(**cfg.get("ff", {})), HTrainConfig(**cfg.get("h", {}))
    if args.seed is not None:
        fcfg.seed = hcfg.seed = args.seed
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # --k-density selects among the training data; the fine-tuning cells (21.79°, 2×2 k under the
    # former rule: 16.8 Å of k-density, forces within 0.7 meV/Å of the 18 Å rule) are always kept
    tune = load_samples(args.finetune) if args.finetune else []
    samples, levels = select_k_density(load_samples(args.data), args.k_density)
    print(f"training data: {len(samples)} configurations"
          + (f" of the {args.k_density:g} Å k-mesh rule" if args.k_density is not None else "")
          + (f" + {len(tune)} fine-tuning cells" if tune else ""))
    samples += tune
    if args.k_density is None and len(levels) > 1:
        print(f"warning: the data mix k-mesh rules {', '.join(f'{k:g}' for k in sorted(levels))} Å; "
              "--k-density selects one", file=sys.stderr)
    check_unique_names(s.name for s in samples)
    always_train = {s.name for s in tune}
    init = None
    if args.init:
        init = torch.load(Path(args.init) / "ff.pt", weights_only=True)["state_dict"]
    if args.what in ("ff", "both"):
        ff, m = train_forcefield(samples, fcfg, out_dir=out, resume=not args.no_resume, init_state=init,
                                 always_train=always_train, repeat_always=args.finetune_repeat)
        shutil.copy(out / "ff_best.pt", out / "ff.pt")
        print("force field:", json.dumps({k: m[k] for k in ("train", "val", "test")}, indent=1))
    if args.what in ("h", "both"):
        ck = torch.load(out / "ff.pt", weights_only=True)
        ff = ForceField(**ck["config"]).double()
        ff.load_state_dict(ck["state_dict"])
        h_init = None
        if args.init and (Path(args.init) / "h.pt").exists():
            h_init = torch.load(Path(args.init) / "h.pt", weights_only=True)
            hcfg.model.update(h_init["config"])  # same architecture as the model being fine-tuned
            h_init = h_init["state_dict"]
        h_samples = samples
        if args.h_data:
            from wander_gui.dft.dataset import has_current_label
            h_samples = load_samples(args.h_data)
            print(f"Hamiltonian heads: {sum(has_current_label(s.chunk) for s in h_samples)} Wannier-labelled "
                  f"configurations of {', '.join(args.h_data)}")
        hm, m = train_hamiltonian(h_samples + (tune if args.h_data else []), ff, hcfg, out_dir=out,
                                  resume=not args.no_resume, init_state=h_init, always_train=always_train,
                                  repeat_always=args.finetune_repeat)
        shutil.copy(out / "h_best.pt", out / "h.pt")
        print("hamiltonian:", json.dumps(m["test"] or m["val"], indent=1))
    if args.publish:
        from wander_gui.ml.publish import publish
        from wander_gui.ml.registry import PRETRAINED
        entry = publish(out, args.publish, pretrained_dir=PRETRAINED, dataset_dir=args.data[0],
                        description=args.description, validation_dir=args.validation, k_density=args.k_density,
                        h_dataset_dir=args.h_data[0] if args.h_data else None)
        print(f"published {entry['name']} to {PRETRAINED / entry['name']}")
    return 0
