"""Fixed-cell DFT relaxation (GPAW PBE+D3) with a resumable trajectory."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def dft_relax(atoms, out_dir, *, settings=None, fmax: float = 0.02, steps: int = 200) -> dict:
    """BFGS relaxation; each step appended to ``out_dir/relax.traj``; a rerun continues from
    the last written structure. Wall time per step is recorded in ``steps.json``."""
    import json

    from ase.calculators.mixing import SumCalculator
    from ase.io import read
    from ase.io.trajectory import Trajectory
    from ase.optimize import BFGS
    from dftd3.ase import DFTD3

    from wander_gui.core.layers import ensure_layers
    from wander_gui.dft.run import make_gpaw
    from wander_gui.dft.settings import DFTSettings
    settings = settings or DFTSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    traj_path = out / "relax.traj"
    a = atoms.copy()
    layer = ensure_layers(atoms)
    if traj_path.exists() and traj_path.stat().st_size > 0:
        a.positions = read(traj_path, index=-1).positions
    a.set_array("layer", layer)
    a.calc = SumCalculator([make_gpaw(a, settings, txt=str(out / "gpaw.txt")),
                            DFTD3(method="PBE", damping="d3bj")])
    log_path = out / "steps.json"
    times = json.loads(log_path.read_text()) if log_path.exists() else []
    traj = Trajectory(traj_path, "a", a)
    opt = BFGS(a, logfile=str(out / "bfgs.log"))
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
