"""A DFT reference for the user's own small cell, computed in a background process.

The app never imports GPAW: it starts ``wander dft single-point`` as a subprocess (its own
process group, so Cancel stops GPAW at once), follows the GPAW log for progress and reads
``result.npz`` when it is done. The command itself is resumable, so a cancelled or failed
run keeps whatever step finished.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

#: largest cell offered (the 21.79° cell: about an hour of SCF on one core; Wannier H and a
#: DFT band path add a few hours)
DFT_MAX_ATOMS = 42
#: typical SCF iteration count, for the progress estimate
TYPICAL_SCF_ITERATIONS = 25


def dft_unavailable_reason(n_atoms: int | None = None, *, wannier: bool = False) -> str | None:
    """Why a background DFT run cannot start here (None when it can)."""
    if importlib.util.find_spec("gpaw") is None or importlib.util.find_spec("dftd3") is None:
        return ("DFT needs the [dft] extra (GPAW and simple-dftd3): see README, 'DFT reference data'. "
                "The ML results do not need it.")
    if wannier and shutil.which("wannier90.x") is None:
        return "the Wannier step needs Wannier90 (Debian package 'wannier90', command wannier90.x)"
    if n_atoms is not None and n_atoms > DFT_MAX_ATOMS:
        return (f"the cell has {n_atoms} atoms; background DFT is offered for cells of at most {DFT_MAX_ATOMS} atoms "
                "(plane-wave DFT cost grows as N³: larger cells take many hours)")
    return None


class BackgroundDFT:
    """One ``wander dft single-point`` run of ``atoms`` writing into ``out_dir``."""

    def __init__(self, atoms, out_dir, *, quick: bool = True, wannier: bool = False):
        from wander_gui.core.io import write_structure
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.wannier = wannier
        structure = self.out / "cell.extxyz"
        write_structure(atoms, structure)
        cmd = [sys.executable, "-m", "wander_gui.cli", "dft", "single-point", str(structure), "--out", str(self.out)]
        cmd += ["--quick"] if quick else []
        cmd += ["--wannier"] if wannier else []
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.log = open(self.out / "run.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def poll(self) -> int | None:
        """Exit code, or None while running."""
        rc = self.proc.poll()
        if rc is not None and not self.log.closed:
            self.log.close()
        return rc

    def progress(self) -> tuple[str, float]:
        """(phase, fraction done) estimated from the GPAW logs."""
        work = self.out / "work"

        def iterations(name):
            p = work / name
            return p.read_text(errors="replace").count("iter:") if p.exists() else 0
        scf_share = 0.35 if self.wannier else 0.95
        if self.wannier and (work / "nscf.txt").exists():
            if (work / "bands.txt").exists():
                return "DFT band path", 0.85
            return "Wannier step (non-self-consistent run)", scf_share + 0.4 * min(1.0, iterations("nscf.txt") / 30)
        return "SCF", scf_share * min(1.0, iterations("scf.txt") / TYPICAL_SCF_ITERATIONS)

    def cancel(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.poll()

    def error_tail(self, n: int = 600) -> str:
        p = self.out / "run.log"
        text = p.read_text(errors="replace") if p.exists() else ""
        return text[-n:].strip()

    def result(self) -> dict:
        import numpy as np
        with np.load(self.out / "result.npz") as z:
            return {k: z[k] for k in z.files}
