"""Fixed-cell DFT relaxation (GPAW PBE+D3) with a resumable trajectory."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _pinned_settings(out: Path, settings, *, resumed: bool):
    """The settings this relaxation runs with: those stored in ``out/settings.json``, else (a
    trajectory from before the file) the legacy k-mesh rule, else ``settings`` or the default,
    which are then stored."""
    import json
    from dataclasses import asdict

    from wander_gui.dft.settings import LEGACY_K_DENSITY, DFTSettings
    path = out / "settings.json"
    if path.exists():
        stored = DFTSettings(**json.loads(path.read_text()))
        if settings is not None and settings != stored:
            from wander_gui.errors import InputError
            raise InputError(f"{out} holds a relaxation with other DFT settings ({path}); "
                             "continue it with those or start in another folder")
        return stored
    chosen = DFTSettings(k_density=LEGACY_K_DENSITY) if resumed else (settings or DFTSettings())
    path.write_text(json.dumps(asdict(chosen)))
    return chosen


def model_hessian(atoms, calc, *, delta: float = 0.005, floor: float = 0.1) -> np.ndarray:
    """Curvature d²E/dx² (3N × 3N, eV/Å²) of ``calc``'s energy surface at ``atoms`` (e.g. the
    pretrained force field), by central differences of its forces (step ``delta`` Å),
    symmetrised, with eigenvalues raised to at least ``floor`` so that it is a positive-definite
    BFGS start (the three rigid translations have none)."""
    a = atoms.copy()
    a.calc = calc
    x0 = a.positions.copy()
    n = 3 * len(a)
    H = np.empty((n, n))
    for k in range(n):
        f = []
        for sign in (1, -1):
            x = x0.copy()
            x.flat[k] += sign * delta
            a.positions = x
            f.append(a.get_forces().ravel())
        H[k] = -(f[0] - f[1]) / (2 * delta)
    w, v = np.linalg.eigh(0.5 * (H + H.T))
    return (v * np.maximum(w, floor)) @ v.T


def model_calculator(model: str | None = None):
    """The pretrained force field (default model, or ``model``) as an ASE calculator that
    carries its name (``model_name``), for :func:`dft_relax`'s ``hessian_from``."""
    from wander_gui.backend import calculator, get_model
    calc = calculator(model=model)
    calc.model_name = get_model(model).name
    return calc


def dft_relax(atoms, out_dir, *, settings=None, fmax: float = 0.02, steps: int = 200,
              make_calculator=None, log_dir=None, hessian_from=None) -> dict:
    """BFGS relaxation; each step appended to ``out_dir/relax.traj``; a rerun continues from
    the last written structure with the BFGS Hessian saved after every step
    (``bfgs_hessian.json``) and that structure's stored energy and forces (not recomputed), so
    an interrupted run loses only the SCF it was in, not its curvature history.
    Wall time per step is recorded in ``steps.json``. ``make_calculator(atoms, out_dir)``
    replaces GPAW PBE + D3(BJ) (tests use a cheap one). The DFT settings of a trajectory are
    kept in ``settings.json`` and a resumed run uses them, whatever the current default, so
    one relaxation never mixes levels of theory (trajectories started before the file
    existed ran with the legacy k-mesh rule). ``log_dir``: where the GPAW and BFGS text logs go
    (default ``out_dir``), so that ``out_dir`` can hold only the small resumable state.

    ``hessian_from``: a cheap calculator (the force field) whose curvature at the starting
    structure (:func:`model_hessian`) replaces BFGS's isotropic 70 eV/Å² guess and any stored
    history. Interlayer modes of a bilayer are ~50× softer than bonds: from the isotropic
    guess BFGS creeps along them for many steps (the 21.79° H relaxation: the layers pushed
    apart by ±0.43 eV/Å per layer, fmax stuck at 0.06–0.09 eV/Å over steps 3–8, curvature
    23 eV/Å² along the separation mode after 8 updates). The restart is recorded in
    ``preconditioned.json`` (model, step)."""
    import json

    from ase.io import read
    from ase.io.trajectory import Trajectory
    from ase.optimize import BFGS

    from wander_gui.core.layers import ensure_layers
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(log_dir) if log_dir is not None else out
    logs.mkdir(parents=True, exist_ok=True)
    traj_path = out / "relax.traj"
    a = atoms.copy()
    layer = ensure_layers(atoms)
    last = read(traj_path, index=-1) if traj_path.exists() and traj_path.stat().st_size > 0 else None
    if last is not None:
        a.positions = last.positions
    a.set_array("layer", layer)
    if make_calculator is None:
        from ase.calculators.mixing import SumCalculator
        from dftd3.ase import DFTD3

        from wander_gui.dft.run import make_gpaw
        settings = _pinned_settings(out, settings, resumed=traj_path.exists() and traj_path.stat().st_size > 0)
        a.calc = SumCalculator([make_gpaw(a, settings, txt=str(logs / "gpaw.txt")),
                                DFTD3(method="PBE", damping="d3bj")])
    else:
        a.calc = make_calculator(a, out)
    stored = last.calc.results if last is not None and last.calc is not None else {}
    cached = "forces" in stored and "energy" in stored
    if cached:  # the calculator holds the last structure's results: ASE asks it for no new SCF
        a.calc.atoms = a.copy()
        a.calc.results = {k: np.array(v) if k == "forces" else v for k, v in stored.items()
                          if k in ("energy", "free_energy", "forces")}
    log_path = out / "steps.json"
    times = json.loads(log_path.read_text()) if log_path.exists() else []
    traj = Trajectory(traj_path, "a", a)
    opt = BFGS(a, logfile=str(logs / "bfgs.log"), restart=str(out / "bfgs_hessian.json"))
    if hessian_from is not None:
        opt.H0, opt.state, opt.pos0, opt.forces0 = model_hessian(a, hessian_from), None, None, None
        marks = out / "preconditioned.json"
        seen = json.loads(marks.read_text()) if marks.exists() else []
        seen.append({"model": getattr(hessian_from, "model_name", type(hessian_from).__name__), "at_step": len(times)})
        marks.write_text(json.dumps(seen))
    t_last = [time.perf_counter()]

    skip = [cached]  # the resumed structure is in the trajectory and steps.json already

    def record():
        now = time.perf_counter()
        if skip[0]:
            skip[0] = False
        else:
            traj.write()
            f = a.get_forces()
            times.append({"seconds": now - t_last[0], "fmax": float(np.sqrt((f ** 2).sum(1)).max())})
            log_path.write_text(json.dumps(times))
        t_last[0] = now
    opt.attach(record, interval=1)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    traj.close()
    return {"converged": converged, "steps": len(times), "fmax": times[-1]["fmax"] if times else float("nan"),
            "atoms": a}
