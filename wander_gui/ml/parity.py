"""Predicted vs DFT: forces and Hamiltonian matrix elements, with MAE and R² (parity plots)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from wander_gui.core.layers import bilayer_sites
from wander_gui.dft.dataset import has_current_label, label_blocks
from wander_gui.ml.data import Sample
from wander_gui.ml.graph import atoms_to_graph
from wander_gui.ml.hamiltonian import heads_members
from wander_gui.ml.train_h import metrics, paired_values, prepare

H_THRESHOLD = 1e-3  # eV: Hamiltonian metrics over elements with |H_DFT| > 1 meV


@dataclass
class ParityResult:
    """Paired (predicted, reference) values by category, and their metrics."""

    forces: dict = field(default_factory=dict)  # "Mo", "S", "all" -> (pred, ref) eV/Å
    hamiltonian: dict = field(default_factory=dict)  # "onsite", "intra", "inter", "intra M-X", ... -> eV
    names: list = field(default_factory=list)
    title: str = ""  # what was compared (shown above the plots)

    def summary(self) -> dict:
        out = {"configs": self.names, "forces": {}, "hamiltonian": {}}
        for k, (p, t) in self.forces.items():
            m = metrics(p, t)
            out["forces"][k] = None if m is None else {"mae_meV_per_A": m["mae_meV"], "r2": m["r2"], "n": m["n"],
                                                       "mean_error_meV_per_A": 1000 * float(np.mean(p - t))}
        for k, (p, t) in self.hamiltonian.items():
            out["hamiltonian"][k] = metrics(p, t, H_THRESHOLD)
        return out


def parity(model, samples: list[Sample], *, hamiltonian: bool = True) -> ParityResult:
    """Forces of every sample; H elements of those with a current Wannier label.

    Force keys: ``all`` and each element (Cartesian components); for bilayers also each site
    (:func:`bilayer_sites`) split into in-plane components and the out-of-plane component along
    the layer's outward normal, whose mean error shows a systematic bias (e.g. the layer thickness
    the labels' k mesh favours), which the MAE alone would not."""
    ff, hm = model.ff, model.hm
    res = ParityResult(names=[s.name for s in samples])
    fp, ft, sym = [], [], []
    site_pairs = {}
    for s in samples:
        g = atoms_to_graph(s.atoms, ff.config["r_c"])
        _, F, _ = ff(g)
        F = F.detach().numpy()
        fp.append(F)
        ft.append(s.forces)
        sym.append(np.array(s.atoms.get_chemical_symbols()))
        sites = bilayer_sites(s.atoms)
        if sites is not None:
            labels, outward = sites
            for lab in np.unique(labels):
                sel = labels == lab
                for key, p, t in ((f"{lab} in-plane", F[sel, :2].ravel(), s.forces[sel, :2].ravel()),
                                  (f"{lab} outward", F[sel, 2] * outward[sel], s.forces[sel, 2] * outward[sel])):
                    site_pairs.setdefault(key, []).append((p, t))
    if fp:
        fp, ft, sym = np.concatenate(fp), np.concatenate(ft), np.concatenate(sym)
        res.forces["all"] = (fp.ravel(), ft.ravel())
        for el in np.unique(sym):
            res.forces[str(el)] = (fp[sym == el].ravel(), ft[sym == el].ravel())
        for key in sorted(site_pairs):
            res.forces[key] = tuple(np.concatenate(v) for v in zip(*site_pairs[key]))
    labelled = _labelled(samples)
    if hamiltonian and hm is not None and labelled:
        res.hamiltonian = predicted_label_pairs(ff, hm, labelled)
    return res


def predicted_label_pairs(ff, hm, labelled: list[Sample]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(predicted, DFT) H elements by category (:func:`~wander_gui.ml.train_h.paired_values`);
    for a heads ensemble the prediction is the members' mean."""
    per_member = []
    for m in heads_members(hm):
        with torch.no_grad():
            exs = [prepare(s, ff, m.config["r_max"], heads=m) for s in labelled]
        per_member.append(paired_values(m, exs))
    return {k: (np.mean([pv[k][0] for pv in per_member], axis=0), per_member[0][k][1]) for k in per_member[0]}


def plot_parity(res: ParityResult, path, *, title: str = "") -> None:
    """Matplotlib parity plots (forces; H by category) with MAE and R² in each panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("forces", "all", "force (eV/Å)", None)] + \
        [("hamiltonian", c, f"H {c} (eV)", H_THRESHOLD) for c in ("onsite", "intra", "inter") if c in res.hamiltonian]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (kind, key, label, thr) in zip(axes[0], panels):
        p, t = getattr(res, kind)[key]
        lim = [min(p.min(), t.min()), max(p.max(), t.max())]
        ax.plot(lim, lim, color="0.6", lw=0.8)
        ax.scatter(t, p, s=3, alpha=0.5)
        m = metrics(p, t, thr or 0.0)
        unit = "meV/Å" if kind == "forces" else "meV"
        ax.set_title(f"{label.split(' (')[0]}\nMAE {m['mae_meV']:.1f} {unit}, R² {m['r2']:.3f}", fontsize=9)
        ax.set_xlabel(f"DFT {label}")
        ax.set_ylabel(f"predicted {label}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _labelled(samples: list[Sample]) -> list[Sample]:
    """The samples that carry a current Wannier label."""
    return [s for s in samples if s.chunk is not None and has_current_label(s.chunk)]


def band_errors_on_labels(ff, hm, samples: list[Sample], *, npoints: int = 30) -> dict:
    """Near-gap band error of the predicted H vs the DFT Wannier H of each labelled sample,
    on the Γ–M–K–Γ path of its cell (both aligned at their valence maximum; the Wannier H
    itself reproduces the DFT bands to a few meV, see ``fidelity_near_gap_eV``).
    Returns {name: {"mae_meV", "max_meV", "gap_error_meV"}} and their mean under "mean"."""
    from wander_gui.backend import band_errors
    from wander_gui.electronic.bands import compute_bands
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.electronic.kpoints import band_path
    from wander_gui.ml.predict import predict_blocks
    out = {}
    for s in _labelled(samples):
        a = s.atoms
        offsets, counts, ij, shift, block = label_blocks(a.get_chemical_symbols(), s.chunk)
        ref_tb = TBHamiltonian.from_pair_blocks(a, ij, shift, block, offsets, counts)
        p = predict_blocks(ff, hm, a)
        tb = TBHamiltonian.from_pair_blocks(a, p.ij, p.shift, p.blocks, p.offsets, p.counts)
        k, _, _ = band_path(a.cell.array, "GMKG", npoints)
        out[s.name] = band_errors(compute_bands(tb, k), compute_bands(ref_tb, k))
    if out:
        out["mean"] = {key: float(np.mean([v[key] for v in out.values()])) for key in ("mae_meV", "max_meV")}
        out["mean"]["gap_error_meV"] = float(np.mean([abs(v["gap_error_meV"]) for n, v in out.items() if n != "mean"]))
    return out


def predicted_on_label_pairs(ff, hm, atoms, ij, shift) -> np.ndarray:
    """The predicted orbital blocks (float64) of the label's pairs ``ij`` / ``shift`` (from
    :func:`label_blocks`), in the label's order; zero for pairs beyond the heads' r_max."""
    from wander_gui.ml.predict import predict_blocks
    p = predict_blocks(ff, hm, atoms, dtype=torch.float64)
    index = {(int(i), int(j), *map(int, S)): n for n, ((i, j), S) in enumerate(zip(p.ij, p.shift))}
    at = np.array([index.get((int(i), int(j), *map(int, S)), -1) for (i, j), S in zip(ij, shift)])
    return np.where((at >= 0)[:, None, None], p.blocks[np.maximum(at, 0)], 0.0)


def band_error_attribution(ff, hm, samples: list[Sample], *, npoints: int = 30) -> dict:
    """Which part of the predicted H makes the band error: near-gap band MAE (meV, VBM-aligned,
    vs the DFT Wannier H) with everything predicted, and with the on-site, intra-layer or
    inter-layer blocks replaced by their DFT values. {name: {variant: MAE}}."""
    from wander_gui.backend import band_errors
    from wander_gui.electronic.bands import compute_bands
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.electronic.kpoints import band_path
    out = {}
    for s in _labelled(samples):
        a = s.atoms
        offsets, counts, ij, shift, dft = label_blocks(a.get_chemical_symbols(), s.chunk)
        pred = predicted_on_label_pairs(ff, hm, a, ij, shift)
        layer = a.arrays["layer"]
        onsite = (ij[:, 0] == ij[:, 1]) & ~shift.any(axis=1)
        intra = (layer[ij[:, 0]] == layer[ij[:, 1]]) & ~onsite
        k, _, _ = band_path(a.cell.array, "GMKG", npoints)

        def bands(blocks):
            return compute_bands(TBHamiltonian.from_pair_blocks(a, ij, shift, blocks, offsets, counts), k)
        ref = bands(dft)
        row = {}
        for variant, take in (("predicted", None), ("DFT on-site", onsite), ("DFT intra", intra),
                              ("DFT inter", ~onsite & ~intra)):
            blocks = pred if take is None else np.where(take[:, None, None], dft, pred)
            row[variant] = band_errors(bands(blocks), ref)["mae_meV"]
        out[s.name] = row
    return out


def layer_onsite_offsets(ff, hm, sample: Sample) -> dict | None:
    """Mean error (predicted − DFT, meV) of the on-site energies (diagonal of the on-site
    blocks) of each layer (``bottom``, ``top`` by height) and species, and their difference
    ``top_minus_bottom``: the per-layer constant (the WANDER paper's C for layers of unequal atom
    counts) a model would still need. Both are vacuum-referenced, so for a model that needs no C
    it is ~0 within the spread of the per-orbital errors (``spread``: their standard deviation).
    None without a current Wannier label."""
    if not _labelled([sample]):
        return None
    from wander_gui.ml.predict import predict_blocks
    a = sample.atoms
    symbols = np.array(a.get_chemical_symbols())
    _, counts, ij, shift, dft = label_blocks(list(symbols), sample.chunk)
    onsite = (ij[:, 0] == ij[:, 1]) & ~shift.any(axis=1)
    p = predict_blocks(ff, hm, a, dtype=torch.float64)
    pred_at = {int(i): b for (i, j), S, b in zip(p.ij, p.shift, p.blocks) if i == j and not np.any(S)}
    layer = a.arrays["layer"]
    rows = []  # (layer, symbol, error per orbital)
    for n in np.flatnonzero(onsite):
        i = int(ij[n, 0])
        c = int(counts[i])
        err = 1000 * (np.diag(pred_at[i])[:c] - np.diag(dft[n])[:c])
        rows.extend((int(layer[i]), str(symbols[i]), e) for e in err)
    lay = np.array([r[0] for r in rows])
    sym = np.array([r[1] for r in rows])
    err = np.array([r[2] for r in rows])
    out = {"layers": {}, "spread": float(err.std())}
    z = {lv: a.positions[layer == lv, 2].mean() for lv in np.unique(layer)}
    for lv, side in zip(sorted(z, key=z.get), ("bottom", "top")):
        sel = lay == lv
        out["layers"][side] = {"mean": float(err[sel].mean()), "atoms": int((layer == lv).sum()),
                               **{str(el): float(err[sel & (sym == el)].mean()) for el in np.unique(sym[sel])}}
    if len(out["layers"]) == 2:
        out["top_minus_bottom"] = out["layers"]["top"]["mean"] - out["layers"]["bottom"]["mean"]
    return out
