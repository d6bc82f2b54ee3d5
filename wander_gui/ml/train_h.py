"""Training of the Hamiltonian heads on Wannier pair blocks, with the force field frozen."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from wander_gui.dft.dataset import has_current_label
from wander_gui.ml.checkpoints import TrainingState, resumed_samples
from wander_gui.ml.data import Sample, split, split_record
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.graph import atoms_to_graph
from wander_gui.ml.hamiltonian import RADIAL_STD_FLOOR, HamiltonianModel, crystal_frames, layer_normal

log = logging.getLogger(__name__)
CATEGORIES = ("onsite", "intra", "inter")
PAIR_NAMES = {(0, 0): "M-M", (0, 1): "M-X", (1, 0): "X-M", (1, 1): "X-X"}


@dataclass
class HTrainConfig:
    seed: int = 0
    epochs: int = 400
    lr: float = 3e-3
    lr_min: float = 1e-5
    patience: int = 60
    plateau_patience: int = 15
    max_minutes: float | None = None  # wall-clock budget: stop (keeping the best model) when exceeded
    #: weight of the band-structure term: mean squared error (eV²) of the near-gap eigenvalues of
    #: H(k) built from the predicted blocks vs the DFT Wannier H at ``band_kpoints`` path points
    #: of each training cell (0: element loss only)
    band_weight: float = 0.0
    band_kpoints: int = 12
    #: early stopping and model selection also score the validation cells' near-gap bands
    #: (MAE of the VBM-aligned eigenvalues at ``band_kpoints`` path points, vs the DFT Wannier H;
    #: always with ``band_weight`` > 0). Off by default: the distorted untwisted validation cells have band errors of 40–420 meV that
    #: swamp the block term and do not track the twisted cells' (measured 2026-11-24: it picked
    #: epoch 22 of 120, twisted bands 117 meV, where the last epoch gives 42)
    select_on_bands: bool = False
    #: exponential moving average of the weights (decay per optimiser step; 0: off), used for
    #: validation and kept as the model (see :class:`~wander_gui.ml.checkpoints.TrainingState`).
    #: Measured 2026-11-24 (heads on the 34 Wannier labels of the 12 Å rule, mos2-preview-6's force
    #: field, 120 epochs, seeds 0 / 1): twisted 21.79° R/H near-gap bands 20.9/19.2 and 20.7/21.6 meV
    #: with 0.99 against 21.8/20.6 and 27.8/34.3 without
    ema_decay: float = 0.99
    #: weight of the vacuum-step term (models with ``layer_dipole``): mean squared error (eV²) of
    #: the predicted dipole step between the two vacuum levels over every training-split
    #: configuration that stores it, energies-and-forces ones included
    dipole_weight: float = 1.0
    #: at most this many vacuum-step examples per optimiser step: when the steps outnumber the
    #: Wannier-labelled cells × step_batch, an epoch gets extra steps with the step term alone
    step_batch: int = 8
    #: each head network predicts in units of the RMS of its training targets
    #: (:func:`fit_output_scales`) instead of eV; off: the published recipes up to mos2-preview-10
    scale_outputs: bool = False
    #: with ``scale_outputs``: only networks whose targets' RMS is below this (eV) are scaled, the
    #: others keep 1 (None: all are scaled)
    scale_outputs_below: float | None = None
    #: hopping elements whose DFT value is at least ``strong_threshold`` (eV) in magnitude weigh
    #: ``strong_weight`` times as much in the element loss (1: all equal). The nearest-neighbour
    #: Mo–S elements (|H| ~ 0.65 eV, ~2 % of the elements) set the band gap: an error of 0.3 % on
    #: them moves the valence maximum by tens of meV (README, gap attribution)
    strong_weight: float = 1.0
    strong_threshold: float = 0.1
    #: Adam's ε. PyTorch's default 1e-8 (the published recipes up to mos2-preview-15) is above the
    #: gradients of the long-range and inter-layer networks (RMS 2e-10 … 1e-8 per weight on one
    #: cell, measured 2026-12-08 on mos2-preview-15: their targets are a few meV and their outputs
    #: scaled by ~0.002–0.02), so those networks stepped up to ~50× slower than ``lr`` says
    adam_eps: float = 1e-8
    model: dict = field(default_factory=lambda: dict(r_max=12.0, r_split=6.0, onsite_cut=5.2, n_rbf=24,
                                                     hidden_intra=[64, 32], hidden_inter=[32, 16],
                                                     use_raer=True, inter_uses_raer=False,
                                                     block_form="frame", intra_input="raer"))


def hop_loss(hop: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, strong_weight: float = 1.0,
             strong_threshold: float = 0.1) -> torch.Tensor:
    """Mean squared error of the hopping elements under ``mask``; elements with |target| ≥
    ``strong_threshold`` count ``strong_weight`` times (the mean is over the weights)."""
    err2 = (hop - target)[mask] ** 2
    if strong_weight == 1.0:
        return err2.mean()
    w = torch.where(target[mask].abs() >= strong_threshold, strong_weight, 1.0).to(err2.dtype)
    return (w * err2).sum() / w.sum()


@dataclass
class HExample:
    name: str
    species: torch.Tensor
    layer: torch.Tensor
    Dn: torch.Tensor
    Z: torch.Tensor
    nb: tuple
    pairs: tuple  # (pi, pj, vec) hoppings
    onsite_target: torch.Tensor  # (N, 5, 5)
    hop_target: torch.Tensor  # (P, 5, 5)
    mask_onsite: torch.Tensor
    mask_hop: torch.Tensor
    frames: torch.Tensor | None  # (N, 3, 3) local crystal frames (None for two-centre heads)
    bands: "BandTarget | None" = None
    electrostatics: tuple | None = None  # (heights, area, normal) for the layer-dipole potential


@dataclass
class StepExample:
    """What the layer-dipole term needs from a configuration with energies and forces only:
    its descriptors and neighbours and the DFT step between the two vacuum levels."""
    name: str
    species: torch.Tensor
    Dn: torch.Tensor
    nb: tuple
    electrostatics: tuple
    vacuum_step: float


def step_example(sample: Sample, ff: ForceField) -> StepExample:
    a = sample.atoms
    g = atoms_to_graph(a, ff.config["r_c"])
    with torch.no_grad():
        _, _, Dn = ff.atomic(g)
    return StepExample(sample.name, g.species, Dn, (g.edge_i, g.edge_j, g.vectors().detach()),
                       HamiltonianModel.electrostatics(a.positions, a.cell.array),
                       float(sample.chunk["vacuum_step"]))


def predicted_step(hm: HamiltonianModel, ex) -> torch.Tensor:
    return hm.layer_potential(ex.species, ex.Dn, *ex.nb, *ex.electrostatics)[1]


@dataclass
class BandTarget:
    """What the band-structure loss needs for one cell: where every block element goes in
    H(k) (lattice gauge, H_ab(k) = Σ_S H_ab(S) e^{2πi k·S}), the phases at the k-points, the
    near-gap band indices and the DFT Wannier eigenvalues there."""
    n_orb: int
    onsite_flat: torch.Tensor  # (E_on,) index into the flattened (n_orb·n_orb) matrix
    onsite_sel: tuple  # (atom, a, b) of those entries
    hop_flat: torch.Tensor  # (E_hop,)
    hop_sel: tuple  # (pair, a, b)
    hop_phase: torch.Tensor  # (nk, E_hop) complex
    band_index: torch.Tensor  # near-gap bands (sorted-eigenvalue indices)
    target: torch.Tensor  # (nk, n_bands) eV
    n_valence: int = 0  # how many of ``band_index`` are valence bands


def _band_target(atoms, counts, offsets, pi, pj, shift, onsite, hop, npoints: int) -> BandTarget:
    from wander_gui.dft.settings import n_formula_units
    from wander_gui.electronic.bands import n_valence_total
    from wander_gui.electronic.kpoints import band_path
    n = int(counts.sum())
    k, _, _ = band_path(atoms.cell.array, "GMKG", npoints)
    cnt = torch.as_tensor(counts)
    off = torch.as_tensor(offsets)
    ar = torch.arange(5)

    def entries(i, j):  # (item, a, b) of the existing orbital entries and their flat positions
        m = (ar[None, :, None] < cnt[i][:, None, None]) & (ar[None, None, :] < cnt[j][:, None, None])
        item, a, b = torch.nonzero(m, as_tuple=True)
        return (item, a, b), (off[i][item] + a) * n + off[j][item] + b
    N = len(counts)
    on_sel, on_flat = entries(torch.arange(N), torch.arange(N))
    hop_sel, hop_flat = entries(pi, pj)
    phase = torch.exp(2j * np.pi * torch.as_tensor(k @ np.asarray(shift, float).T))  # (nk, P)
    bt = BandTarget(n, on_flat, on_sel, hop_flat, hop_sel, phase[:, hop_sel[0]], torch.zeros(0, dtype=torch.long),
                    torch.zeros(0))
    with torch.no_grad():
        e = band_energies(bt, onsite, hop)
    from wander_gui.core.materials import material_from_elements
    nfu = n_formula_units(atoms, material_from_elements(atoms.get_chemical_symbols()).metal)
    nv = n_valence_total(n)  # filled d–p bands: 6 chalcogen p + metal d_z² per formula unit
    bt.band_index = torch.arange(nv - 4 * nfu, nv + 3 * nfu)  # top 4 valence, lowest 3 conduction per f.u.
    bt.n_valence = 4 * nfu
    bt.target = e[:, bt.band_index]
    return bt


def band_energies(bt: BandTarget, onsite: torch.Tensor, hop: torch.Tensor) -> torch.Tensor:
    """Sorted eigenvalues (nk, n_orb) of H(k) assembled from on-site and hopping blocks."""
    nk = bt.hop_phase.shape[0]
    flat = torch.zeros(nk, bt.n_orb * bt.n_orb, dtype=torch.complex128)
    flat = flat.index_add(1, bt.hop_flat, hop[bt.hop_sel].to(torch.complex128) * bt.hop_phase)
    flat = flat.index_add(1, bt.onsite_flat, onsite[bt.onsite_sel].to(torch.complex128).expand(nk, -1))
    H = flat.view(nk, bt.n_orb, bt.n_orb)
    return torch.linalg.eigvalsh(0.5 * (H + H.conj().transpose(1, 2)))


def band_loss(ex: HExample, on: torch.Tensor, hop: torch.Tensor) -> torch.Tensor:
    e = band_energies(ex.bands, on, hop)[:, ex.bands.band_index]
    return ((e - ex.bands.target) ** 2).mean()


def _mask(species_a, species_b):
    n = torch.tensor([5, 3])
    na, nb = n[species_a], n[species_b]
    ar = torch.arange(5)
    return (ar[None, :, None] < na[:, None, None]) & (ar[None, None, :] < nb[:, None, None])


def prepare(sample: Sample, ff: ForceField, r_max: float, *, band_kpoints: int = 0,
            heads: HamiltonianModel | None = None) -> HExample:
    """Frozen-FF inputs and targets of one labelled configuration (with the band-structure
    target on ``band_kpoints`` path points when > 0). ``heads``: the model the inputs are for —
    its latent graph (:meth:`HamiltonianModel.latent_graph`) and crystal frames
    (:meth:`HamiltonianModel.frames`); default: the whole bilayer's latent, one frame per layer."""
    from wander_gui.dft.dataset import label_blocks
    a = sample.atoms
    offsets, counts, ij, shift, block = label_blocks(a.get_chemical_symbols(), sample.chunk)
    g = atoms_to_graph(a, ff.config["r_c"])
    with torch.no_grad():
        _, Z, Dn = ff.atomic(g)
        if heads is not None:
            Z = heads.intra_latent(ff, g, Z)
    vec = a.positions[ij[:, 1]] + shift @ a.cell.array - a.positions[ij[:, 0]]
    d = np.linalg.norm(vec, axis=1)
    on = (ij[:, 0] == ij[:, 1]) & np.all(shift == 0, axis=1)
    keep = ~on & (d <= r_max)
    onsite = torch.zeros(len(a), 5, 5, dtype=torch.float64)
    onsite[torch.as_tensor(ij[on, 0])] = torch.as_tensor(block[on], dtype=torch.float64)
    sp = g.species
    pi, pj = torch.as_tensor(ij[keep, 0]), torch.as_tensor(ij[keep, 1])
    nb = (g.edge_i, g.edge_j, g.vectors().detach())
    normal = layer_normal(a.cell.array)
    frames = heads.frames(sp, g.layer, *nb, normal) if heads is not None else crystal_frames(sp, g.layer, *nb, normal)
    hop = torch.as_tensor(block[keep], dtype=torch.float64)
    bands = _band_target(a, counts, offsets, pi, pj, shift[keep], onsite, hop, band_kpoints) if band_kpoints else None
    return HExample(sample.name, sp, g.layer, Dn, Z, nb, (pi, pj, torch.as_tensor(vec[keep])), onsite, hop,
                    _mask(sp, sp), _mask(sp[pi], sp[pj]), frames, bands,
                    HamiltonianModel.electrostatics(a.positions, a.cell.array))


def forward(hm: HamiltonianModel, ex: HExample):
    on = hm.onsite(ex.species, ex.Dn, *ex.nb, frames=ex.frames, electrostatics=ex.electrostatics)
    hop = hm.hoppings(ex.species, ex.layer, hm.atom_features(ex.species, ex.Z, ex.Dn), *ex.pairs, frames=ex.frames,
                      inter_feats=hm.inter_features(ex.species, ex.Z))  # ex.Z: the whole bilayer's unless raer_layer
    return on, hop


def paired_values(hm: HamiltonianModel, examples: list[HExample]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(predicted, DFT) matrix elements (eV) per category (on-site / intra / inter), per
    ordered pair type ("intra M-X", ...) and over all of them ("all": the single Hamiltonian
    MAE the WANDER paper reports), over the orbital entries that exist."""
    buckets: dict[str, list] = {}
    with torch.no_grad():
        for ex in examples:
            on, hop = forward(hm, ex)
            buckets.setdefault("onsite", []).append((on[ex.mask_onsite], ex.onsite_target[ex.mask_onsite]))
            pi, pj, _ = ex.pairs
            intra = (ex.layer[pi] == ex.layer[pj])
            for name, sel in (("intra", intra), ("inter", ~intra)):
                for (ta, tb), pname in PAIR_NAMES.items():
                    m = sel & (ex.species[pi] == ta) & (ex.species[pj] == tb)
                    if m.any():
                        mk = ex.mask_hop[m]
                        item = (hop[m][mk], ex.hop_target[m][mk])
                        buckets.setdefault(name, []).append(item)
                        buckets.setdefault(f"{name} {pname}", []).append(item)
    buckets["all"] = [x for c in CATEGORIES for x in buckets.get(c, [])]
    if not buckets["all"]:
        del buckets["all"]
    return {k: (torch.cat([a for a, _ in v]).numpy(), torch.cat([b for _, b in v]).numpy())
            for k, v in buckets.items()}


def step_errors(hm: HamiltonianModel, examples: list) -> dict | None:
    """MAE (meV) and R² of the predicted step between the vacuum levels, with the spread of
    the DFT steps (mean |ΔV|, meV) for scale."""
    if not examples:
        return None
    with torch.no_grad():
        pred = np.array([float(predicted_step(hm, e)) for e in examples])
    dft = np.array([e.vacuum_step for e in examples])
    return {**metrics(pred, dft), "mean_abs_dft_meV": 1000 * float(np.abs(dft).mean())}


def metrics(pred: np.ndarray, target: np.ndarray, threshold: float = 0.0) -> dict | None:
    """MAE (meV), R² and count over entries with |target| > threshold (None if there are none)."""
    sel = np.abs(target) > threshold
    if sel.sum() == 0:
        return None
    err = pred[sel] - target[sel]
    var = ((target[sel] - target[sel].mean()) ** 2).sum()
    r2 = 1 - (err ** 2).sum() / var if var > 0 else float("nan")
    return {"mae_meV": 1000 * float(np.abs(err).mean()), "r2": float(r2), "n": int(sel.sum())}


def errors_by_category(hm: HamiltonianModel, examples: list[HExample], threshold: float = 1e-3) -> dict:
    """MAE (meV) and R² per category (on-site / intra / inter) and per pair type, over
    elements with |H_DFT| > ``threshold`` eV."""
    out = {}
    for k, (p, t) in paired_values(hm, examples).items():
        m = metrics(p, t, threshold)
        if m is not None:
            out[k] = m
    return out


def aligned_band_mae(ex: HExample, on: torch.Tensor, hop: torch.Tensor) -> torch.Tensor:
    """Near-gap band MAE (eV) with predicted and DFT eigenvalues each aligned at their valence maximum."""
    bt = ex.bands
    e = band_energies(bt, on, hop)[:, bt.band_index]
    return ((e - e[:, :bt.n_valence].max()) - (bt.target - bt.target[:, :bt.n_valence].max())).abs().mean()


def fit_output_scales(hm: HamiltonianModel, examples: list[HExample], floor: float = 1e-4,
                      below: float | None = None) -> None:
    """Set ``hm.onsite_scale`` and ``hm.hop_scale`` (eV) to the RMS of the training targets each
    network predicts: per species, the on-site elements less ``onsite_ref`` on the diagonal;
    per category (intra / inter), species pair (either order: the two ends of a block share
    it) and range (pairs shorter / not shorter than ``r_split``), the hopping elements.
    Buckets without examples keep scale 1, and so do those with an RMS of ``below`` eV or more
    (when given); none goes below ``floor``."""
    rs = hm.config["r_split"]
    for t in range(2):
        vals = torch.cat([(ex.onsite_target - hm.onsite_ref[t] * torch.eye(5, dtype=ex.onsite_target.dtype))
                          [ex.species == t][ex.mask_onsite[ex.species == t]] for ex in examples])
        rms = vals.pow(2).mean().sqrt() if len(vals) else None
        if rms is not None and (below is None or rms < below):
            hm.onsite_scale[t] = rms.clamp_min(floor)
    sums = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    counts = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    for ex in examples:
        pi, pj, vec = ex.pairs
        cat = (ex.layer[pi] != ex.layer[pj]).long()
        lo, hi = torch.minimum(ex.species[pi], ex.species[pj]), torch.maximum(ex.species[pi], ex.species[pj])
        rng = (vec.norm(dim=1) >= rs).long()
        sq = (ex.hop_target.double() ** 2 * ex.mask_hop).sum((1, 2))
        n = ex.mask_hop.sum((1, 2)).double()
        sums.index_put_((cat, lo, hi, rng), sq, accumulate=True)
        counts.index_put_((cat, lo, hi, rng), n, accumulate=True)
    rms = (sums / counts.clamp_min(1)).sqrt()
    use = (counts > 0) & (rms < below if below is not None else True)
    rms = torch.where(use, rms.clamp_min(floor), torch.ones_like(sums))
    rms[:, 1, 0] = rms[:, 0, 1]  # accumulated metal-first only
    hm.hop_scale[:] = rms.to(hm.hop_scale.dtype)


def _val_errors(hm: HamiltonianModel, ex: HExample) -> tuple[float, float | None]:
    """MAE of the hoppings plus MAE of the on-site blocks (eV), and the VBM-aligned near-gap
    band MAE (eV) where the example carries band targets (else None)."""
    on, hop = forward(hm, ex)
    err = (hop - ex.hop_target)[ex.mask_hop].abs().mean() + (on - ex.onsite_target)[ex.mask_onsite].abs().mean()
    return float(err), (float(aligned_band_mae(ex, on, hop)) if ex.bands is not None else None)


def train_hamiltonian(samples: list[Sample], ff: ForceField, cfg: HTrainConfig, *, out_dir,
                      progress: bool = True, resume: bool = True,
                      init_state: dict | None = None, always_train=(),
                      repeat_always: int = 1) -> tuple[HamiltonianModel, dict]:
    """Fit the heads on labelled configurations (split 80/10/10 by configuration).

    Labelled configurations named in ``always_train`` (twisted fine-tuning cells) are in the
    training split, ``repeat_always`` times each per epoch.

    Checkpoints ``{config, state_dict, optimizer, scheduler, epoch, best}`` go to
    ``out_dir/h_last.pt`` every epoch (training resumes from it) and ``h_best.pt`` on
    improvement. ``init_state`` (fine-tuning) starts from a trained model's weights and
    statistics instead of fitting the statistics on the new data.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    hm = HamiltonianModel(**{**cfg.model, "latent_dim": ff.latent_dim, "desc_dim": ff.descriptor.dim}).double()
    samples = resumed_samples(samples, out_dir, "h", hm.config, resume=resume)
    labelled = [s for s in samples if has_current_label(s.chunk)]
    if not labelled:
        from wander_gui.errors import DataError
        raise DataError("no configuration carries a current Wannier label: run `wander dataset generate` "
                        "(with Wannier) first")
    parts = split([s.name for s in labelled], seed=cfg.seed)
    parts.update({n: "train" for n in always_train if n in parts})
    # band targets: on training cells for the band loss, on the others for selection and reports
    nk_train = cfg.band_kpoints if cfg.band_weight > 0 else 0
    nk_held = cfg.band_kpoints if cfg.band_weight > 0 or cfg.select_on_bands else 0
    exs = {s.name: prepare(s, ff, hm.config["r_max"], band_kpoints=nk_train if parts[s.name] == "train" else nk_held,
                           heads=hm)
           for s in labelled}
    train = [exs[n] for n in exs if parts[n] == "train"] or list(exs.values())[:1]
    real_val = [exs[n] for n in exs if parts[n] == "val"]
    val = real_val or train  # early stopping needs something; reported only if it is a real split
    test = [exs[n] for n in exs if parts[n] == "test"]
    Z = torch.cat([e.Z for e in train])
    sp = torch.cat([e.species for e in train])
    D = torch.cat([e.Dn for e in train])
    hm.d_mean[:] = D.mean(0)
    hm.d_std[:] = D.std(0).clamp_min(1e-2) if len(D) > 1 else 1.0
    for t in range(2):
        hm.z_mean[t] = Z[sp == t].mean(0)
        hm.z_std[t] = Z[sp == t].std(0).clamp_min(1e-3)
        if hm.config["intra_input"] == "raer_layer_radial":
            hm.z_std[t, hm.config["latent_dim"]:] = hm.z_std[t, hm.config["latent_dim"]:].clamp_min(RADIAL_STD_FLOOR)
        diag = torch.cat([torch.diagonal(e.onsite_target[e.species == t], dim1=1, dim2=2) for e in train])
        n = 5 if t == 0 else 3
        hm.onsite_ref[t] = diag[:, :n].mean()
    if cfg.scale_outputs:
        fit_output_scales(hm, train, below=cfg.scale_outputs_below)
    dipole = bool(hm.config.get("layer_dipole"))
    steps = {"train": [], "val": [], "test": []}
    if dipole:
        with_step = [s for s in samples if "vacuum_step" in s.chunk]
        if not with_step:
            from wander_gui.errors import DataError
            raise DataError("layer_dipole needs the DFT vacuum steps: run `wander dataset vacuum-steps`")
        step_parts = split([s.name for s in with_step], seed=cfg.seed)
        for s in with_step:
            steps[step_parts[s.name]].append(step_example(s, ff))
    if init_state is not None:
        missing, unexpected = hm.load_state_dict(init_state, strict=False)
        new = [k for k in missing if not k.startswith("dipole.")]
        if new or unexpected:
            raise RuntimeError(f"init_state does not fit this model: missing {new}, unexpected {unexpected}")
    state = TrainingState(hm, out_dir, "h", lr=cfg.lr, lr_min=cfg.lr_min, plateau_patience=cfg.plateau_patience,
                          resume=resume, ema_decay=cfg.ema_decay or None,
                          data_names=[s.name for s in samples], adam_eps=cfg.adam_eps)
    opt = state.opt
    start = state.start
    it = range(start, cfg.epochs)
    t_start = time.perf_counter()
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="train Hamiltonian heads", unit="epoch")
    rng = np.random.default_rng(cfg.seed)
    epochs_run = start
    history = []  # (epoch, validation block MAE, validation band MAE) in meV
    train_epoch = train + [e for e in train if e.name in always_train] * (max(1, repeat_always) - 1)
    for epoch in it:
        epochs_run = epoch + 1
        # every labelled cell once per epoch; the vacuum-step examples are spread over the epoch's
        # steps, each seen once, with extra step-only steps if there are few labelled cells
        n_steps = max(len(train_epoch), -(-len(steps["train"]) // cfg.step_batch)) if dipole else len(train_epoch)
        step_batches = np.array_split(rng.permutation(len(steps["train"])), n_steps) if dipole else None
        order = list(rng.permutation(len(train_epoch)))
        if n_steps > len(train_epoch):  # (only then: the same seed keeps giving the same runs as before)
            order = list(rng.permutation(np.array(order + [None] * (n_steps - len(train_epoch)), dtype=object)))
        for n_step, k in enumerate(order):
            loss = torch.zeros((), dtype=torch.float64)
            if k is not None:
                ex = train_epoch[k]
                on, hop = forward(hm, ex)
                loss = ((on - ex.onsite_target)[ex.mask_onsite] ** 2).mean() + \
                    hop_loss(hop, ex.hop_target, ex.mask_hop, cfg.strong_weight, cfg.strong_threshold)
                if ex.bands is not None:
                    loss = loss + cfg.band_weight * band_loss(ex, on, hop)
            if dipole and len(step_batches[n_step]):
                err = torch.stack([predicted_step(hm, steps["train"][b]) - steps["train"][b].vacuum_step
                                   for b in step_batches[n_step]])
                loss = loss + cfg.dipole_weight * (err ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            state.update_ema()
        with torch.no_grad(), state.averaged():
            errs = [_val_errors(hm, e) for e in val]
        block = sum(b for b, _ in errs) / len(errs)
        band_errs = [g for _, g in errs if g is not None]
        band = sum(band_errs) / len(band_errs) if band_errs else None
        vl = block + (band or 0.0)
        history.append([epoch, 1000 * block, None if band is None else 1000 * band])
        state.end_epoch(epoch, vl)
        if hasattr(it, "set_postfix"):
            it.set_postfix(val_meV=f"{1000 * block:.1f}", **({} if band is None else {"bands_meV": f"{1000 * band:.1f}"}),
                           lr=f"{state.lr:.1e}")
        if epoch - state.best_epoch >= cfg.patience:
            break
        if cfg.max_minutes is not None and time.perf_counter() - t_start > 60 * cfg.max_minutes:
            log.info("time budget of %.1f min reached at epoch %d", cfg.max_minutes, epoch)
            break
    state.load_best()
    best_epoch = state.best_epoch
    from wander_gui.ml.parity import band_errors_on_labels
    by_name = {s.name: s for s in labelled}
    bands = {part: band_errors_on_labels(ff, hm, [by_name[e.name] for e in exs_part]) if exs_part else None
             for part, exs_part in (("train", train), ("val", real_val), ("test", test))}
    metrics = {"train": errors_by_category(hm, train), "val": errors_by_category(hm, val) if real_val else None,
               "test": errors_by_category(hm, test) if test else None, "bands": bands, "best_epoch": best_epoch,
               "epochs_run": epochs_run,
               "vacuum_step": {part: step_errors(hm, exs_part) for part, exs_part in steps.items()} if dipole else None,
               "n_train": len(train), "config": asdict(cfg), "val_history": history,
               "data": split_record(labelled, parts)}
    (out_dir / "h_metrics.json").write_text(json.dumps(metrics, indent=1))
    return hm, metrics
