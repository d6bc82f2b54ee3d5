"""Fixed-cell relaxation of bilayers with any ASE calculator, streaming and cancellable.

Optimisers: ASE FIRE, BFGS, LBFGS, and the WANDER paper's quasi-Newton step
x_{n+1} = x_n + α f_n with α = 0.529 Å²/Ry = 0.0389 Å²/eV (Qi, Gong, Yan, npj Comput.
Mater. 2025, Methods). Every step reports energy, fmax and the out-of-plane displacement
field of each layer; ``cancel`` (a threading.Event) is checked every step, and the last
structure is always kept: returned on cancel, and carried by the :class:`RelaxationError`
raised when a step fails (calculator error, non-finite forces), at the last good step.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from ase.constraints import FixCartesian
from ase.units import Ry

from wander_gui.core.layers import ensure_layers, validate_structure
from wander_gui.errors import InputError, RelaxationError

log = logging.getLogger(__name__)
OPTIMIZERS = ("fire", "bfgs", "lbfgs", "paper")
PAPER_ALPHA = 0.529 / Ry  # Å²/eV
# ASE's BFGS keeps a dense 3N×3N Hessian and diagonalises it every step: 1500 atoms is 162 MB and
# ~1 s per step; 10⁴ atoms would be 7 GB and minutes per step. LBFGS and FIRE are O(N).
BFGS_MAX_ATOMS = 1500


@dataclass
class StepInfo:
    """What a relaxation reports every step. ``atoms`` is a snapshot of the structure at this
    step (no calculator), from which the interpolated maps are computed on demand."""
    step: int
    energy: float
    fmax: float
    dz_layers: list  # per layer: z − mean z of that layer's metal atoms, per atom (Å)
    seconds: float
    atoms: object = None

    def displacement_map(self, layer: int, *, n: int = 48, repeat: int = 1):
        """(x, y, dz) of one layer's metal plane on an n×n grid (see :func:`displacement_map`)."""
        return displacement_map(self.atoms, layer, n=n, repeat=repeat)

    def interlayer_distance_map(self, *, n: int = 48):
        """(x, y, d) local interlayer distance (see :func:`interlayer_distance_map`)."""
        return interlayer_distance_map(self.atoms, n=n)


@dataclass
class RelaxResult:
    atoms: object
    converged: bool
    cancelled: bool
    steps: int
    energies: list = field(default_factory=list)
    fmaxes: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        c = corrugation(self.atoms)
        out = {"converged": self.converged, "cancelled": self.cancelled, "steps": self.steps,
               "energy_eV": self.energies[-1] if self.energies else None,
               "fmax_eV_per_A": self.fmaxes[-1] if self.fmaxes else None,
               "corrugation_A": c, "seconds": round(self.seconds, 3)}
        if len(self.atoms) >= 42:  # a moiré cell: local interlayer distance at stacking points
            out["interlayer_distance_A"] = stacking_distances(self.atoms)
        return out


def out_of_plane_displacement(atoms, *, species: str | None = None) -> list[np.ndarray]:
    """Per layer: z − ⟨z⟩ of the layer's metal atoms (Å), for every atom of that layer
    (or only atoms of ``species``). Zero for a flat layer."""
    layer = ensure_layers(atoms)
    sym = np.array(atoms.get_chemical_symbols())
    metal = _metal(atoms)
    out = []
    for lay in (0, 1):
        m = layer == lay
        ref = atoms.positions[m & (sym == metal), 2].mean()
        sel = m if species is None else m & (sym == species)
        out.append(atoms.positions[sel, 2] - ref)
    return out


def corrugation(atoms) -> list[float]:
    """Peak-to-peak out-of-plane range of the metal plane of each layer (Å)."""
    dz = out_of_plane_displacement(atoms, species=_metal(atoms))
    return [float(d.max() - d.min()) for d in dz]


def displacement_map(atoms, layer: int, *, n: int = 48, repeat: int = 1):
    """Interpolated z − ⟨z⟩ of one layer's metal plane on an n × n grid of fractional
    coordinates of the moiré cell (periodic linear interpolation), tiled over ``repeat`` ×
    ``repeat`` cells. Returns (x, y, dz) in Å, each (repeat·n, repeat·n)."""
    metal = _metal(atoms)
    gx, gy, z = _plane_map(atoms, layer, n, metal)
    if repeat > 1:
        g = (np.arange(repeat * n) + 0.5) / n
        gx, gy = np.meshgrid(g, g, indexing="xy")
        z = np.tile(z, (repeat, repeat))
    sel = (ensure_layers(atoms) == layer) & (np.array(atoms.get_chemical_symbols()) == metal)
    cart = np.stack([gx, gy], -1) @ atoms.cell.array[:2, :2]
    return cart[..., 0], cart[..., 1], z - atoms.positions[sel, 2].mean()


def _plane_map(atoms, layer: int, n: int, metal: str):
    """Periodic linear interpolation of the metal-plane height z of one layer on an n×n grid."""
    from scipy.interpolate import griddata
    sym = np.array(atoms.get_chemical_symbols())
    sel = (ensure_layers(atoms) == layer) & (sym == metal)
    frac = atoms.get_scaled_positions(wrap=True)[sel, :2]
    z = atoms.positions[sel, 2]
    shifts = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)])
    pts = (frac[None] + shifts[:, None]).reshape(-1, 2)
    g = (np.arange(n) + 0.5) / n
    gx, gy = np.meshgrid(g, g, indexing="xy")
    return gx, gy, griddata(pts, np.tile(z, len(shifts)), (gx, gy), method="linear")


def interlayer_distance_map(atoms, *, n: int = 48):
    """Local metal–metal interlayer distance on an n×n grid of the cell: z_top(x, y) − z_bottom(x, y),
    each plane interpolated from its metal atoms. Returns (x, y, d) in Å."""
    metal = _metal(atoms)
    gx, gy, z0 = _plane_map(atoms, 0, n, metal)
    _, _, z1 = _plane_map(atoms, 1, n, metal)
    cart = np.stack([gx, gy], -1) @ atoms.cell.array[:2, :2]
    return cart[..., 0], cart[..., 1], z1 - z0


def stacking_distances(atoms) -> dict:
    """Interlayer metal–metal distance at the high-symmetry stacking points of a builder cell:
    the cell origin and (a+b)/3, 2(a+b)/3 (AA, AB, BA for R stacking; AA′, A′B, AB′ for H)."""
    from scipy.interpolate import RegularGridInterpolator
    n = 60
    gx, gy, z0 = _plane_map(atoms, 0, n, _metal(atoms))
    _, _, z1 = _plane_map(atoms, 1, n, _metal(atoms))
    g = (np.arange(n) + 0.5) / n
    pad = np.pad(z1 - z0, 1, mode="wrap")
    gp = np.concatenate([[g[0] - 1 / n], g, [g[-1] + 1 / n]])
    f = RegularGridInterpolator((gp, gp), pad.T)  # axes (f1, f2)
    names = ("AA", "AB", "BA") if atoms.info.get("stacking", "R") == "R" else ("AA'", "A'B", "AB'")
    pts = {names[0]: (0.0, 0.0), names[1]: (1 / 3, 1 / 3), names[2]: (2 / 3, 2 / 3)}
    return {k: float(f([[(u % 1), (v % 1)]])[0]) for k, (u, v) in pts.items()}


def _metal(atoms) -> str:
    from wander_gui.core.materials import material_from_elements
    return material_from_elements(atoms.get_chemical_symbols()).metal


def relax(atoms, calc, *, optimizer: str = "fire", fmax: float = 0.01, steps: int = 500,
          fix_layer_inplane: int | None = None, trajectory: str | None = None, on_step=None,
          cancel=None) -> RelaxResult:
    """Relax positions (fixed cell). Returns the last structure even if not converged."""
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer={optimizer!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
    if not 0 < float(fmax) <= 10:
        raise InputError(f"fmax={fmax} eV/Å is outside the allowed range (0, 10]")
    if not 0 <= int(steps) <= 1_000_000:
        raise InputError(f"steps={steps} is outside the allowed range [0, 1000000]")
    if optimizer == "bfgs" and len(atoms) > BFGS_MAX_ATOMS:
        raise InputError(f"optimizer='bfgs' stores a dense 3N×3N Hessian; allowed up to {BFGS_MAX_ATOMS} "
                         f"atoms, this cell has {len(atoms)}: use 'lbfgs' or 'fire'")
    validate_structure(atoms)
    layer = ensure_layers(atoms)
    a = atoms.copy()
    a.set_array("layer", layer)
    a.calc = calc
    if fix_layer_inplane is not None:
        if fix_layer_inplane not in (0, 1):
            raise InputError(f"fix_layer_inplane={fix_layer_inplane} must be 0, 1 or None")
        a.set_constraint(FixCartesian(np.flatnonzero(layer == fix_layer_inplane), mask=(True, True, False)))
    res = RelaxResult(atoms=a, converged=False, cancelled=False, steps=0)
    t0 = time.perf_counter()
    traj = None
    if trajectory:
        from ase.io.trajectory import Trajectory
        traj = Trajectory(trajectory, "w", a) if trajectory.endswith(".traj") else None
    xyz_traj = trajectory if trajectory and not trajectory.endswith(".traj") else None

    good = {"positions": a.positions.copy()}  # last step with finite energy and forces

    def report(step):
        f = a.get_forces()
        e = float(a.get_potential_energy())
        if not (np.isfinite(f).all() and np.isfinite(e)):
            raise RelaxationError(f"non-finite energy or forces at step {step}")
        good["positions"] = a.positions.copy()
        fm = float(np.sqrt((f ** 2).sum(axis=1)).max())
        res.energies.append(e)
        res.fmaxes.append(fm)
        res.steps = step
        if traj is not None:
            traj.write(a)
        if xyz_traj:
            from ase.io import write
            write(xyz_traj, a, format="extxyz", append=step > 0)
        if on_step:
            snapshot = a.copy()
            snapshot.calc = None
            on_step(StepInfo(step, e, fm, out_of_plane_displacement(a), time.perf_counter() - t0, snapshot))
        return fm

    try:
        if optimizer == "paper":
            for step in range(steps + 1):
                fm = report(step)
                if fm < fmax:
                    res.converged = True
                    break
                if cancel is not None and cancel.is_set():
                    res.cancelled = True
                    break
                if step == steps:
                    break
                a.set_positions(a.get_positions() + PAPER_ALPHA * a.get_forces())
        else:
            from ase.optimize import BFGS, FIRE, LBFGS
            cls = {"fire": FIRE, "bfgs": BFGS, "lbfgs": LBFGS}[optimizer]
            opt = cls(a, logfile=None)
            counter = {"n": 0}

            def observer():
                report(counter["n"])
                counter["n"] += 1
                if cancel is not None and cancel.is_set():
                    raise _Stop()
            opt.attach(observer, interval=1)
            try:
                res.converged = bool(opt.run(fmax=fmax, steps=steps))
            except _Stop:
                res.cancelled = True
    except (Exception, KeyboardInterrupt) as exc:
        a.calc = None  # its results belong to the failed positions
        a.positions = good["positions"]
        last = f"step {res.steps}" if res.energies else "the start (no step completed)"
        raise RelaxationError(f"relaxation failed after {len(res.energies)} good step(s) ({exc}); "
                              f"the structure at {last} is kept", res) from exc
    finally:
        if traj is not None:
            traj.close()
        res.seconds = time.perf_counter() - t0
    return res


class _Stop(Exception):
    pass
