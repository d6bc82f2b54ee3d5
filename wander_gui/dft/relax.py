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


def dft_relax(atoms, out_dir, *, settings=None, fmax: float = 0.02, steps: int = 200,
              make_calculator=None, log_dir=None) -> dict:
    """BFGS relaxation; each step appended to ``out_dir/relax.traj``; a rerun continues from
    the last written structure with the BFGS Hessian saved after every step
    (``bfgs_hessian.json``), so an interrupted run loses one SCF, not its curvature history.
    Wall time per step is recorded in ``steps.json``. ``make_calculator(atoms, out_dir)``
    replaces GPAW PBE + D3(BJ) (tests use a cheap one). The DFT settings of a trajectory are
    kept in ``settings.json`` and a resumed run uses them, whatever the current default, so
    one relaxation never mixes levels of theory (trajectories started before the file
    existed ran with the legacy k-mesh rule). ``log_dir``: where the GPAW and BFGS text logs go
    (default ``out_dir``), so that ``out_dir`` can hold only the small resumable state."""
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
    if traj_path.exists() and traj_path.stat().st_size > 0:
        a.positions = read(traj_path, index=-1).positions
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
    log_path = out / "steps.json"
    times = json.loads(log_path.read_text()) if log_path.exists() else []
    traj = Trajectory(traj_path, "a", a)
    opt = BFGS(a, logfile=str(logs / "bfgs.log"), restart=str(out / "bfgs_hessian.json"))
    t_last = [time.perf_counter()]

    def record():
        now = time.perf_counter()
        f = a.get_forces()
        times.append({"seconds": now - t_last[0], "fmax": float(np.sqrt((f ** 2).sum(1)).max())})
        t_last[0] = now
        log_path.write_text(json.dumps(times))
    opt.attach(traj.write, interval=1)
    opt.attach(record, interval=1)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    traj.close()
    return {"converged": converged, "steps": len(times), "fmax": times[-1]["fmax"] if times else float("nan"),
            "atoms": a}
