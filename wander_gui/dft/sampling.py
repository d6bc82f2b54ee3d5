"""Deterministic sampling plan of untwisted bilayer configurations for the DFT dataset.

Configuration ``i`` is drawn from ``numpy.random.default_rng([SEED, i])`` so the plan is
reproducible, grows without reshuffling, and several workers agree on it.

Design (paper-style sampling scaled to 2-core machines):
* 1×1 cells (6 atoms, cheap, dense k) span interlayer translation, distance and strain;
* 2×2 cells (24 atoms), and every 20th a 3×3 cell (54 atoms), add local distortions;
* R and H stackings; in-plane translation uniform over the whole primitive cell;
* metal–metal distance 5.8–7.5 Å, 70 % from N(6.35, 0.25) (near equilibrium), 30 % uniform;
* strain |s| ≤ 3 %: 60 % biaxial, 30 % uniaxial (random direction), 10 % shear, 15 % zero;
* Gaussian displacements with σ log-uniform in [0.02, 0.10] Å on 90 % of configurations;
* Wannier Hamiltonian labels on every 1×1 cell and every sixth 2×2 cell (a 2×2 label needs a
  5×5-mesh non-self-consistent run, ~4× the cost of its SCF).

A second plan (:func:`equilibrium_spec`, names ``e0000-…``) samples the same space with small
displacements, :func:`registry_spec` (``r0000-…``) pristine unstrained 1×1 cells at random
registries, :func:`finetune_spec` the perturbed twisted cells kept for fine-tuning and
:func:`finetune_equilibrium_spec` near-equilibrium twisted cells kept for fine-tuning.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SEED = 20261123
WANNIER_2X2 = True
D_RANGE = (5.8, 7.5)
STRAIN_MAX = 3.0


@dataclass(frozen=True)
class ConfigSpec:
    index: int
    name: str
    supercell: int
    stacking: str
    shift_frac: tuple
    d_interlayer: float
    strain_percent: float
    strain_mode: str
    strain_direction_deg: float
    sigma: float
    seed: int
    wannier: bool
    twist_mn: tuple | None = None  # twisted (m, n) cell instead of an untwisted supercell

    def asdict(self) -> dict:
        return asdict(self)


def supercell_of(i: int) -> int:
    if i % 20 == 19:
        return 3
    return 1 if i % 5 in (0, 3) else 2


def _bilayer_draw(rng) -> tuple:
    """Stacking, fractional interlayer translation, metal–metal distance, strain mode, strain (%)
    and its direction (°) of one untwisted bilayer, drawn in this order (the plans depend on it)."""
    stacking = "R" if rng.random() < 0.5 else "H"
    shift = tuple(float(x) for x in rng.random(2))
    if rng.random() < 0.7:
        d = float(np.clip(rng.normal(6.35, 0.25), *D_RANGE))
    else:
        d = float(rng.uniform(*D_RANGE))
    u = rng.random()
    mode = "biaxial" if u < 0.6 else ("uniaxial" if u < 0.9 else "shear")
    strain = 0.0 if rng.random() < 0.15 else float(rng.uniform(-STRAIN_MAX, STRAIN_MAX))
    direction = float(rng.uniform(0, 180))
    return stacking, shift, d, mode, strain, direction


def config_spec(i: int, *, seed: int = SEED) -> ConfigSpec:
    """The i-th configuration of the plan."""
    rng = np.random.default_rng([seed, i])
    n = supercell_of(i)
    stacking, shift, d, mode, strain, direction = _bilayer_draw(rng)
    u_sigma = rng.random()  # log-uniform in [0.02, 0.10]: more small distortions
    sigma = float(0.02 * 5.0 ** u_sigma) if rng.random() < 0.9 else 0.0
    n2x2 = sum(1 for j in range(i) if supercell_of(j) == 2)
    # WANNIER_2X2 was off while the PAW overlaps had a phase error for atoms off the origin
    # (Wannier version 1); every 6th 2×2 cell carries a label again since version 2.
    wannier = n == 1 or (n == 2 and n2x2 % 6 == 0 and WANNIER_2X2)
    name = f"c{i:04d}-{n}x{n}-{stacking}"
    return ConfigSpec(i, name, n, stacking, shift, round(d, 4), round(strain, 4), mode,
                      round(direction, 3), round(sigma, 4), int(rng.integers(2**31)), wannier)


#: near-equilibrium plan: displacement σ range (Å) and the share of undisplaced cells
EQUILIBRIUM_SIGMA = (0.003, 0.02)
EQUILIBRIUM_UNDISPLACED = 0.3


def _equilibrium_sigma(rng) -> float:
    """Displacement σ (Å) of a near-equilibrium cell: log-uniform in EQUILIBRIUM_SIGMA, or 0 for a
    share EQUILIBRIUM_UNDISPLACED of the cells (two draws, in this order)."""
    lo, hi = EQUILIBRIUM_SIGMA
    u_sigma = rng.random()
    return float(lo * (hi / lo) ** u_sigma) if rng.random() >= EQUILIBRIUM_UNDISPLACED else 0.0


def equilibrium_spec(i: int, *, seed: int = SEED) -> ConfigSpec:
    """The i-th configuration of the near-equilibrium plan (added 2026-11-24): the main plan's
    translation, distance and strain sampling, but small displacements — σ log-uniform in
    [0.003, 0.02] Å on 70 %, none on 30 % — in 1×1 cells (two of three) and 2×2 cells. The main
    plan's displacements (σ 0.02–0.10 Å) give forces of 1.4 eV/Å rms (median over
    configurations) while relaxed and twisted cells have 0.1–0.2 eV/Å; this plan fills that
    range (README 'DFT data'). Its 1×1 cells also get Wannier labels (since 2026-11-24, second
    day): the main plan's labelled cells are all distorted, while the layers of relaxed and
    twisted cells are nearly pristine."""
    rng = np.random.default_rng([seed, 200_000 + i])
    n = 2 if i % 3 == 2 else 1
    stacking, shift, d, mode, strain, direction = _bilayer_draw(rng)
    sigma = _equilibrium_sigma(rng)
    return ConfigSpec(i, f"e{i:04d}-{n}x{n}-{stacking}", n, stacking, shift, round(d, 4), round(strain, 4), mode,
                      round(direction, 3), round(sigma, 4), int(rng.integers(2**31)), n == 1)


#: registry plan: metal–metal distance N(mean, std) in Å (near equilibrium)
REGISTRY_D = (6.35, 0.15)


def registry_spec(i: int, *, seed: int = SEED) -> ConfigSpec:
    """The i-th cell of the registry plan (added 2026-12-07): pristine, unstrained 1×1
    bilayers (no displacements), R and H alternating, the top layer at a uniform random translation
    over the cell and a metal–metal distance from N(6.35, 0.15) Å, each with a Wannier H. In these
    cells only the interlayer registry and distance vary, so their labels isolate the other layer's
    effect on the intra-layer hoppings (1–2 meV in DFT on the nearest-neighbour Mo–S bonds of the
    rigid 21.79° cells), which the heads learn wrongly from the strained, displaced cells of the
    other plans (README, "Heads ensemble")."""
    rng = np.random.default_rng([seed, 400_000 + i])
    stacking = "R" if i % 2 == 0 else "H"
    shift = tuple(float(x) for x in rng.random(2))
    d = float(np.clip(rng.normal(*REGISTRY_D), *D_RANGE))
    return ConfigSpec(i, f"r{i:04d}-1x1-{stacking}", 1, stacking, shift, round(d, 4), 0.0, "biaxial", 0.0, 0.0,
                      int(rng.integers(2**31)), True)


#: first letter of the configuration names of each sampling plan
PLAN_PREFIX = {"bilayers": "c", "equilibrium": "e", "registry": "r", "finetune": "t", "finetune-equilibrium": "q"}
#: plans whose cells are kept apart from the training set, for fine-tuning
FINETUNE_PLANS = frozenset({"finetune", "finetune-equilibrium"})


def plan_of(name: str) -> str | None:
    """The sampling plan a configuration name belongs to (None for other names, e.g. imports)."""
    import re
    m = re.match(r"([a-z])\d+-", name)
    return next((plan for plan, p in PLAN_PREFIX.items() if m and m.group(1) == p), None)


#: twisted cell of the fine-tuning set: 21.79° (m, n) = (1, 2), 42 atoms
FINETUNE_MN = (1, 2)
FINETUNE_STRAIN_MAX = 1.5


def finetune_spec(i: int, *, seed: int = SEED) -> ConfigSpec:
    """The i-th perturbed twisted cell reserved for fine-tuning (never trained on by default,
    never a validation cell): 21.79° R and H alternating, metal–metal distance from
    N(6.35, 0.2) Å, biaxial strain within ±1.5 %, Gaussian displacements σ log-uniform in
    [0.02, 0.10] Å on every cell."""
    rng = np.random.default_rng([seed, 100_000 + i])
    stacking = "R" if i % 2 == 0 else "H"
    d = float(np.clip(rng.normal(6.35, 0.2), *D_RANGE))
    strain = float(rng.uniform(-FINETUNE_STRAIN_MAX, FINETUNE_STRAIN_MAX))
    sigma = float(0.02 * 5.0 ** rng.random())
    m, n = FINETUNE_MN
    return ConfigSpec(i, f"t{i:03d}-tw{m}{n}-{stacking}", 0, stacking, (0.0, 0.0), round(d, 4), round(strain, 4),
                      "biaxial", 0.0, round(sigma, 4), int(rng.integers(2**31)), False, FINETUNE_MN)


def finetune_equilibrium_spec(i: int, *, seed: int = SEED) -> ConfigSpec:
    """The i-th near-equilibrium twisted cell reserved for fine-tuning (added 2026-12-07): 21.79°
    R and H alternating, the top layer translated by a uniform random fraction of the moiré cell
    (the rigid validation cells have none, so no fine-tuning cell repeats one), metal–metal distance
    from N(6.35, 0.15) Å, biaxial strain within ±1.5 %, and the equilibrium plan's displacements
    (σ log-uniform in [0.003, 0.02] Å on 70 %, none on 30 %). The perturbed cells of
    :func:`finetune_spec` (σ 0.02–0.10 Å) have forces of 0.7–1.1 eV/Å rms, the twisted cells the
    app relaxes 0.13–0.19 eV/Å; the first of these cells 0.16–0.18 eV/Å."""
    rng = np.random.default_rng([seed, 300_000 + i])
    stacking = "R" if i % 2 == 0 else "H"
    shift = tuple(float(x) for x in rng.random(2))
    d = float(np.clip(rng.normal(6.35, 0.15), *D_RANGE))
    strain = float(rng.uniform(-FINETUNE_STRAIN_MAX, FINETUNE_STRAIN_MAX))
    sigma = _equilibrium_sigma(rng)
    m, n = FINETUNE_MN
    return ConfigSpec(i, f"q{i:03d}-tw{m}{n}-{stacking}", 0, stacking, shift, round(d, 4), round(strain, 4),
                      "biaxial", 0.0, round(sigma, 4), int(rng.integers(2**31)), False, FINETUNE_MN)


def build_config(spec: ConfigSpec, material: str = "MoS2"):
    """Atoms of a plan entry (builder geometry + Gaussian displacements)."""
    from wander_gui.core.builder import build_aligned, build_twisted
    if spec.twist_mn is not None:  # both layers strained alike: scale the in-plane cell
        atoms = build_twisted(material, spec.stacking, mn=tuple(spec.twist_mn), d_interlayer=spec.d_interlayer)
        eps = spec.strain_percent / 100
        cell = atoms.cell.array.copy()
        cell[:2, :2] *= 1 + eps
        atoms.set_cell(cell, scale_atoms=True)
        atoms.info["strain_top"] = atoms.info["strain_bottom"] = [eps, 0.0, 0.0, eps]
        top = atoms.arrays["layer"] == 1  # interlayer translation: a fraction of the moiré cell
        atoms.positions[top, :2] += np.asarray(spec.shift_frac) @ cell[:2, :2]
    else:
        atoms = build_aligned(material, spec.stacking, supercell=spec.supercell, shift_frac=spec.shift_frac,
                              d_interlayer=spec.d_interlayer, strain_percent=spec.strain_percent,
                              strain_mode=spec.strain_mode, strain_direction_deg=spec.strain_direction_deg)
    if spec.sigma > 0:
        rng = np.random.default_rng(spec.seed)
        atoms.positions += rng.normal(0.0, spec.sigma, size=atoms.positions.shape)
    atoms.info["config"] = spec.name
    return atoms
