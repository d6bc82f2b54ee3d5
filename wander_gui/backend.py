"""The one facade the GUI and CLI call. Returns plain dataclasses, ase.Atoms and numpy.

The GUI never imports torch or GPAW: everything heavy goes through here and is loaded
lazily the first time it is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wander_gui.core.builder import build_bilayer, build_twisted
from wander_gui.core.coincidence import search_cells
from wander_gui.core.materials import MATERIALS
from wander_gui.core.moire import nearest_cells, snap_angle
from wander_gui.core.relax import displacement_map, relax
from wander_gui.dft.settings import VALIDATION_FOLDERS
from wander_gui.errors import InputError, ModelError, RelaxationError, WanderError

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: twisted validation results: the current k-mesh rule's folder first, then the former's
VALIDATION_DIRS = tuple(PRETRAINED_DIR / f for f in VALIDATION_FOLDERS)


@dataclass(frozen=True)
class ModelStatus:
    available: bool
    message: str


def model_status(material: str = "MoS2") -> ModelStatus:  # noqa: D401
    """Whether a pretrained model for ``material`` is installed (the app shows this)."""
    manifest = PRETRAINED_DIR / "manifest.json"
    if not manifest.exists():
        return ModelStatus(False, "No trained model yet: the MoS2 force field and Hamiltonian model are "
                                  "being trained on the project's DFT data. Relaxation and bands are disabled.")
    import json
    models = json.loads(manifest.read_text()).get("models", [])
    if not any(m.get("material") == material for m in models):
        return ModelStatus(False, f"No trained model for {material} yet.")
    return ModelStatus(True, "pretrained model available")


_MODELS: dict = {}


def get_model(name: str | None = None, directory=None):
    """Load (once per process, then shared read-only) a model by name or directory."""
    key = (name, str(directory) if directory else None)
    if key not in _MODELS:
        from wander_gui.ml.registry import load_model
        _MODELS[key] = load_model(name, directory=directory)
    return _MODELS[key]


def calculator(*, model: str | None = None, model_dir=None):
    """ASE calculator of the force field (float64, float32 from 2000 atoms: see WanderCalculator)."""
    from wander_gui.ml.calculator import WanderCalculator
    return WanderCalculator(get_model(model, model_dir).ff, dtype="auto")


def predict_tb(atoms, *, model: str | None = None, model_dir=None, with_spread: bool = False):
    """Predicted Wannier Hamiltonian of ``atoms`` as a TBHamiltonian (needs a trained model).

    ``with_spread``: return ``(tb, spread)``, ``spread`` the members' standard deviation of every
    element in the same layout (a TBHamiltonian of non-negative entries, eV); models with a heads
    ensemble only (ModelError otherwise)."""
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.errors import ModelError
    from wander_gui.ml.hamiltonian import HeadsEnsemble
    from wander_gui.ml.predict import predict_blocks
    m = get_model(model, model_dir)
    if m.hm is None:
        raise ModelError(f"model {m.name!r} has no Hamiltonian heads")
    if with_spread and not isinstance(m.hm, HeadsEnsemble):
        raise ModelError(f"model {m.name!r} has a single set of Hamiltonian heads: the spread needs a heads "
                         "ensemble (a model assembled with `wander train --ensemble`)")
    p = predict_blocks(m.ff, m.hm, atoms)
    tb = TBHamiltonian.from_pair_blocks(atoms, p.ij, p.shift, p.blocks, p.offsets, p.counts)
    if not with_spread:
        return tb
    return tb, TBHamiltonian.from_pair_blocks(atoms, p.ij, p.shift, p.spread, p.offsets, p.counts)


@dataclass(frozen=True)
class OutOfDistribution:
    """Per-atom distance of the force field's latent description (RAER) from its training
    atoms, in units of the training set's 99.5th percentile: > 1 flags an environment the
    model has not seen (its forces and Hamiltonian there are extrapolations)."""
    score: "object"  # (N,) numpy array
    flagged: int
    worst: float

    def message(self) -> str:
        if not self.flagged:
            return f"all atoms within the training distribution (max score {self.worst:.2f})"
        return (f"{self.flagged} atom(s) outside the training distribution (max score {self.worst:.1f}; "
                "1 = the training set's 99.5th percentile): treat results there as extrapolation")


def out_of_distribution(atoms, *, model: str | None = None, model_dir=None) -> OutOfDistribution | None:
    """Latent-space distance of every atom from the model's training data (None when the model
    carries no statistics)."""
    import torch

    from wander_gui.ml.graph import atoms_to_graph
    ff = get_model(model, model_dir).ff
    if not ff.has_ood:
        return None
    dev = next(ff.parameters()).device
    with torch.no_grad():
        g = atoms_to_graph(atoms, ff.config["r_c"], dtype=ff.ood_mean.dtype).to(dev)
        _, Z, _ = ff.atomic(g)
        score = ff.ood_score(Z, g.species).cpu().numpy()
    return OutOfDistribution(score, int((score > 1).sum()), float(score.max()))


def _manifest_models(material: str) -> list[dict]:
    import json
    manifest = PRETRAINED_DIR / "manifest.json"
    if not manifest.exists():
        return []
    return [m for m in json.loads(manifest.read_text()).get("models", []) if m.get("material") == material]


def model_names(material: str = "MoS2") -> list[str]:
    """Names of the installed pretrained models for ``material``, the default first."""
    return [m["name"] for m in _manifest_models(material)]


def model_info(material: str = "MoS2", name: str | None = None) -> dict | None:
    """The manifest entry (name, data, metrics) of model ``name``, by default of the default model
    for ``material``; None when there is none."""
    models = _manifest_models(material)
    if name is None:
        return models[0] if models else None
    return next((m for m in models if m["name"] == name), None)


@dataclass(frozen=True)
class BandAccuracy:
    """Measured near-gap band MAE of a published model (meV; VBM-aligned, states within 1 eV
    of the gap, against the DFT Wannier bands), from its manifest entry."""
    twisted: dict  # validation cell -> MAE: rigid, unstrained twisted cells never trained on
    untwisted_test: float | None  # mean over held-out untwisted configurations (strained, distorted)
    n_untwisted_test: int

    def summary(self) -> str:
        bits = []
        if self.twisted:
            lo, hi = min(self.twisted.values()), max(self.twisted.values())
            span = f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}"
            bits.append(f"band MAE {span} meV on the unstrained twisted DFT cells")
        if self.untwisted_test is not None:
            bits.append(f"{self.untwisted_test:.0f} meV on strained / distorted untwisted test cells "
                        f"(mean of {self.n_untwisted_test})")
        return ", ".join(bits)


def band_accuracy(info: dict | None) -> BandAccuracy | None:
    """The band errors measured for the model whose manifest entry is ``info`` (None when it
    records none): the app quotes them next to every prediction it shows."""
    if not info:
        return None
    metrics = info.get("metrics") or {}
    twisted = {name: v["bands"]["mae_meV"] for name, v in (metrics.get("validation") or {}).items()
               if isinstance(v, dict) and isinstance(v.get("bands"), dict) and "mae_meV" in v["bands"]}
    per_config = ((metrics.get("h") or {}).get("bands") or {}).get("test") or {}
    test = [v["mae_meV"] for name, v in per_config.items()  # "mean" is the summary row, not a configuration
            if name != "mean" and isinstance(v, dict) and "mae_meV" in v]
    if not twisted and not test:
        return None
    return BandAccuracy(twisted, sum(test) / len(test) if test else None, len(test))


def validation_reference(atoms) -> dict | None:
    """DFT results of the project's validation cell that ``atoms`` is (same species, cell and
    positions), with its name; None when there is none. Energies vacuum-referenced. Results of
    the current k-mesh rule come first, completed from the former (``result["sources"]``)."""
    from wander_gui.dft.validation import load_merged, matching_cell
    name = matching_cell(atoms)
    res = None if name is None else load_merged(VALIDATION_DIRS, name)
    return None if res is None else dict(res, name=name)


def reference_bands(ref: dict, npoints: int = 40):
    """DFT bands of a validation result as a BandResult of the d–p manifold (or None).

    A direct DFT band path (``bands_eV``) is used when the result has one; otherwise the
    bands of the cell's DFT Wannier Hamiltonian on Γ–M–K–Γ (``source`` says which: the
    Wannier bands reproduce the DFT eigenvalues to ``fidelity_near_gap_eV``, checked at
    off-mesh k-points when the label was made).
    """
    if ref is None:
        return None
    if "bands_eV" in ref:
        e, m0 = _dft_manifold(ref, ref["bands_eV"])
        return _dft_band_result(ref["bands_kpts"], e, int(ref["n_occupied"]) - m0, x_k=ref.get("bands_x"),
                                source="DFT band path")
    tb = reference_tb(ref)
    if tb is None:
        return None
    from wander_gui.electronic.bands import compute_bands
    from wander_gui.electronic.kpoints import band_path
    atoms = _result_atoms(ref)
    k, x, labels = band_path(atoms.cell.array, "GMKG", npoints)
    res = compute_bands(tb, k)
    res.x_k, res.labels = x, labels
    res.source = (f"DFT Wannier Hamiltonian (max error {1000 * float(ref['fidelity_near_gap_eV']):.0f} meV "
                  "vs DFT near the gap)")
    return res


def band_plan(n_orb: int) -> dict:
    """How the app computes a band structure for an H(k) of ``n_orb`` orbitals: every band with
    fat-band layer weights (dense) for small cells; for large ones 16 bands around the gap, on a
    GPU with layer weights, on a CPU with the subspace solver (eigenvalues only: ~8× faster than
    shift-invert at every k-point, bench/bench_band_path.py)."""
    from wander_gui.electronic.solvers import DENSE_LIMIT, gpu_available
    if n_orb <= DENSE_LIMIT:
        return {"nbands": None, "solver": "auto", "fat_bands": True}
    if gpu_available():
        return {"nbands": 16, "solver": "torch", "fat_bands": True}
    return {"nbands": 16, "solver": "subspace", "fat_bands": False}


def _dft_manifold(ref: dict, eps):
    """The d–p manifold columns of DFT eigenvalues (k, all bands) and the index of its first band."""
    import numpy as np

    from wander_gui.dft.settings import EXCLUDED_PER_FU, WANNIER_PER_FU
    nfu = len(ref["numbers"]) // 3
    m0 = nfu * EXCLUDED_PER_FU
    return np.asarray(eps, float)[:, m0:m0 + nfu * WANNIER_PER_FU], m0


def _dft_band_result(kpts, e, n_valence: int, **kw):
    from wander_gui.electronic.bands import BandResult
    return BandResult(kpts, e, n_valence, float(e[:, n_valence - 1].max()), float(e[:, n_valence].min()), **kw)


def _result_atoms(ref: dict):
    from wander_gui.ml.data import sample_from_arrays
    return sample_from_arrays("reference", ref).atoms


def reference_tb(ref: dict):
    """The DFT Wannier Hamiltonian stored with a dataset chunk or validation result (or None)."""
    from wander_gui.dft.dataset import has_current_label, label_blocks
    if ref is None or not has_current_label(ref):
        return None
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    a = _result_atoms(ref)
    offsets, counts, ij, shift, block = label_blocks(a.get_chemical_symbols(), ref)
    return TBHamiltonian.from_pair_blocks(a, ij, shift, block, offsets, counts)


def dft_point_bands(ref: dict, *, scf_first: bool = False):
    """The DFT eigenvalues themselves (no interpolation), d–p manifold only, as a BandResult:
    at the k-points of the Wannier step (its mesh and off-mesh check points) or, for a result
    without one (or with ``scf_first``), at the SCF's k-mesh, with each state's layer weights
    where the SCF stored them; None when the result stores neither."""
    import numpy as np
    if ref is not None and "dft_eps_eV" in ref and not (scf_first and "scf_eps_eV" in ref):
        e, _ = _dft_manifold(ref, ref["dft_eps_eV"])
        nv = int((e[0] <= float(ref["vbm"]) + 1e-4).sum())
        return _dft_band_result(np.asarray(ref["dft_kpts"], float), e, nv,
                                source="DFT eigenvalues at the Wannier mesh and check k-points")
    if ref is not None and "scf_eps_eV" in ref:
        e, m0 = _dft_manifold(ref, ref["scf_eps_eV"])
        w = None
        if "scf_layer0_weight" in ref:  # each state's share on the bottom layer (PAW projections)
            w, _ = _dft_manifold(ref, ref["scf_layer0_weight"])
        return _dft_band_result(np.asarray(ref["scf_kpts"], float), e, int(ref["n_occupied"]) - m0,
                                source="DFT eigenvalues at the SCF k-mesh", layer0_weight_kn=w)
    return None


def band_errors(pred, ref, window: float = 1.0) -> dict:
    """Near-gap band error of ``pred`` vs ``ref`` on the same k-points, both aligned at their
    valence maximum: MAE and max over states within ``window`` eV of the gap, and the gap error."""
    import numpy as np
    n = min(pred.n_valence, ref.n_valence)
    nc = min(pred.e_kn.shape[1] - pred.n_valence, ref.e_kn.shape[1] - ref.n_valence)
    p = pred.e_kn[:, pred.n_valence - n:pred.n_valence + nc] - pred.vbm
    r = ref.e_kn[:, ref.n_valence - n:ref.n_valence + nc] - ref.vbm
    gap = ref.cbm - ref.vbm
    sel = (r >= -window) & (r <= gap + window)
    d = np.abs(p - r)[sel]
    out = {"mae_meV": 1000 * float(d.mean()), "max_meV": 1000 * float(d.max()),
           "gap_error_meV": 1000 * float((pred.cbm - pred.vbm) - gap),
           # unaligned: both vacuum-referenced, so these test the absolute (per-layer) alignment
           "vbm_error_meV": 1000 * float(pred.vbm - ref.vbm), "cbm_error_meV": 1000 * float(pred.cbm - ref.cbm)}
    if ref.layer0_weight_kn is not None:
        out["layer_offset_meV"] = layer_offsets(p + pred.vbm, r + ref.vbm, ref.layer0_weight_kn[
            :, ref.n_valence - n:ref.n_valence + nc], sel, n)
    return out


def layer_offsets(pred_e, ref_e, ref_w0, sel, n_valence: int) -> dict:
    """Per-layer offset of the band errors (meV): the unaligned error of every state (same k,
    same band index) fitted as a + C·w_top with w_top its DFT weight on the top layer, separately
    for valence and conduction states in ``sel``; C is the error of a top-layer state relative to a
    bottom-layer one. A per-layer constant (the WANDER paper's C) gives the same C for both; a
    layer-dependent gap error does not. ``C_err``: its standard error (large when the states mix
    the layers evenly, as in a symmetric homobilayer)."""
    import numpy as np
    out = {}
    for part, cols in (("valence", slice(0, n_valence)), ("conduction", slice(n_valence, None))):
        m = sel[:, cols]
        x, y = 1.0 - np.asarray(ref_w0[:, cols], float)[m], 1000 * (pred_e[:, cols] - ref_e[:, cols])[m]
        if len(x) < 3 or np.ptp(x) < 0.2:  # no layer contrast to fit
            continue
        A = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        resid = y - A @ coef
        cov = np.linalg.inv(A.T @ A) * (resid @ resid) / max(len(x) - 2, 1)
        out[part] = {"C": float(coef[1]), "C_err": float(np.sqrt(cov[1, 1])), "n": int(len(x))}
    return out


def orbital_layers(atoms):
    """Layer index of every Wannier orbital of ``atoms`` (fat bands)."""
    import numpy as np

    from wander_gui.core.layers import ensure_layers
    from wander_gui.core.materials import material_from_elements
    from wander_gui.core.orbitals import orbital_offsets
    layer = ensure_layers(atoms)
    _, counts = orbital_offsets(atoms.get_chemical_symbols(), material_from_elements(atoms.get_chemical_symbols()).metal)
    return np.repeat(layer, counts), np.repeat(np.arange(len(atoms)), counts)


def parity_report(split: str = "test", *, model: str | None = None, model_dir=None, seed: int = 0):
    """Predicted vs DFT on a split of the shipped dataset (forces, H by category)."""
    from wander_gui.ml.data import load_samples, split as split_names
    from wander_gui.ml.parity import parity
    samples = load_samples(PRETRAINED_DIR / "dataset")
    if split != "all":
        parts = split_names([s.name for s in samples], seed=seed)
        samples = [s for s in samples if parts[s.name] == split]
    return parity(get_model(model, model_dir), samples)


def cell_parity(atoms, ref: dict, *, model: str | None = None, model_dir=None):
    """Predicted vs DFT for one cell with a DFT result (forces; H blocks if it has a label)."""
    from wander_gui.ml.data import sample_from_arrays
    from wander_gui.ml.parity import parity
    res = parity(get_model(model, model_dir), [sample_from_arrays(ref.get("name", "cell"), ref)])
    res.title = f"{ref.get('name', 'this cell')} ({len(atoms)} atoms)"
    return res


def band_width_ladder(*, stacking: str = "R", max_atoms: int = 600, n_top: int = 2, npoints: int = 24,
                      model: str | None = None, model_dir=None, on_step=None, cancel=None) -> list[dict]:
    """Width of the ``n_top`` topmost valence bands (Γ–M–K–Γ) for each exact commensurate cell
    up to ``max_atoms`` (predicted Hamiltonians, unrelaxed cells). Each cell's row is cached
    per process, so raising the atom budget only computes the new cells."""
    from wander_gui.core.moire import ladder_table
    from wander_gui.electronic.bands import compute_bands, valence_width
    from wander_gui.electronic.kpoints import band_path
    from wander_gui.errors import Cancelled
    rows = ladder_table(max_atoms)
    out = []
    for i, (m, n, theta, _) in enumerate(rows):
        if cancel is not None and cancel.is_set():
            raise Cancelled("band-width ladder cancelled")
        key = (stacking, int(m), int(n), n_top, npoints, model, str(model_dir) if model_dir else None)
        if key not in _LADDER_CACHE:  # shared by all sessions: the model is read-only
            atoms = build_twisted("MoS2", stacking, mn=(int(m), int(n)))
            tb = predict_tb(atoms, model=model, model_dir=model_dir)
            k, _, _ = band_path(atoms.cell.array, "GMKG", npoints)
            b = compute_bands(tb, k)
            _LADDER_CACHE[key] = {"theta_deg": float(theta), "n_atoms": len(atoms), "mn": (int(m), int(n)),
                                  "width_eV": valence_width(b, n_top), "gap_eV": b.cbm - b.vbm}
        out.append(dict(_LADDER_CACHE[key]))
        if on_step:
            on_step(i + 1, len(rows))
    return out


_LADDER_CACHE: dict = {}


def materials() -> list[str]:
    return list(MATERIALS)


__all__ = ["build_twisted", "build_bilayer", "search_cells", "nearest_cells", "snap_angle", "relax",
           "displacement_map", "model_status", "materials", "ModelStatus", "calculator", "predict_tb",
           "model_info", "validation_reference", "reference_bands", "reference_tb", "dft_point_bands",
           "band_errors", "orbital_layers",
           "parity_report", "cell_parity", "band_width_ladder",
           "InputError", "ModelError", "RelaxationError", "WanderError"]
