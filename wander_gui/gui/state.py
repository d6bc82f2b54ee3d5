"""Per-browser-session state of the app (one instance per session, nothing shared).

Long work (relaxation, bands) runs in this session's :class:`JobRunner` thread, checks a
cancel event every step and hands results back to the UI; errors become messages.
"""
from __future__ import annotations

import logging

import param

from wander_gui import backend
from wander_gui.errors import WanderError
from wander_gui.gui.jobs import JobRunner

log = logging.getLogger(__name__)


class MoireState(param.Parameterized):
    """Inputs and results of one session."""

    material = param.Selector(default="MoS2", objects=backend.materials(), doc="TMD material")
    stacking = param.Selector(default="R", objects=["R", "H"],
                              doc="R: AA-like at 0° (near-0° twists); H: 2H-like at 0° (near-60°)")
    angle = param.Number(default=21.79, bounds=(0.1, 59.9), step=0.01, doc="requested twist angle (degrees)")
    strain = param.Number(default=0.0, bounds=(-5.0, 5.0), step=0.05, doc="strain on the top layer (%)")
    strain_mode = param.Selector(default="biaxial", objects=["biaxial", "uniaxial", "shear", "heterostrain"],
                                 doc="kind of strain")
    strain_direction = param.Number(default=0.0, bounds=(0.0, 180.0), doc="uniaxial/shear direction (deg from x)")
    max_residual_strain = param.Number(default=0.5, bounds=(0.0, 10.0), doc="accepted residual strain (%)")
    max_atoms = param.Integer(default=2000, bounds=(42, 100_000), doc="atom budget of the cell")
    optimizer = param.Selector(default="fire", objects=["fire", "bfgs", "lbfgs", "paper"], doc="relaxation optimiser")
    fmax = param.Number(default=0.01, bounds=(1e-4, 1.0), doc="force threshold (eV/Å)")
    steps = param.Integer(default=300, bounds=(1, 100_000), doc="maximum relaxation steps")
    model_dir = param.String(default="", doc="model directory (empty: the shipped pretrained model)")

    snapped = param.Dict(default={}, doc="commensurate cell for the current inputs")
    atoms = param.Parameter(default=None, doc="current structure (ase.Atoms)")
    relax_trace = param.List(default=[], doc="(step, energy, fmax) of the running/last relaxation")
    dz = param.Parameter(default=None, doc="latest per-layer out-of-plane displacements")
    bands = param.Parameter(default=None, doc="latest BandResult")
    running = param.String(default="", doc="name of the running job, empty when idle")
    progress = param.Integer(default=0, bounds=(0, 100))
    message = param.String(default="", doc="last status or error message")

    build = param.Event(doc="build the cell")
    relax = param.Event(doc="relax with the ML force field")
    compute_bands = param.Event(doc="predict the Hamiltonian and compute bands")
    cancel = param.Event(doc="cancel the running job")

    def __init__(self, **params):
        super().__init__(**params)
        self.jobs = JobRunner()
        self._update_snap()

    # -- inputs -> candidate cell ---------------------------------------------------
    @param.depends("angle", "max_atoms", "strain", "strain_mode", "strain_direction", "max_residual_strain",
                   "material", watch=True)
    def _update_snap(self):
        try:
            self.message = ""
            if self.strain == 0.0:
                s = backend.snap_angle(self.angle, max_atoms=self.max_atoms, strict=True)
                self.snapped = dict(s, kind="exact", n_fu=[s["n_atoms"] // 6] * 2, residual_percent=0.0)
            else:
                cells = backend.search_cells(self.angle, material=self.material, strain_percent=self.strain,
                                             strain_mode=self.strain_mode, strain_direction_deg=self.strain_direction,
                                             max_atoms=self.max_atoms,
                                             max_residual_strain=self.max_residual_strain / 100, k=1)
                if not cells:
                    self.snapped = {}
                    self.message = ("No cell within the atom budget matches this angle and strain: raise the "
                                    "budget or the accepted residual strain.")
                    return
                c = cells[0]
                self.snapped = dict(kind="coincidence", theta_deg=c.theta_eff_deg, n_atoms=c.n_atoms,
                                    n_fu=list(c.n_fu), residual_percent=100 * c.max_residual_strain, spec=c)
        except WanderError as exc:
            self.snapped = {}
            self.message = f"Error: {exc}"

    @param.depends("build", watch=True)
    def _build(self):
        try:
            s = self.snapped
            if not s:
                raise backend.InputError("no commensurate cell for the current inputs")
            if s["kind"] == "exact":
                atoms = backend.build_twisted(self.material, self.stacking, mn=(s["m"], s["n"]),
                                              max_atoms=self.max_atoms)
            else:
                atoms = backend.build_bilayer(s["spec"], material=self.material, stacking=self.stacking)
            self.relax_trace, self.dz, self.bands = [], None, None
            self.atoms = atoms
            self.message = (f"Built {len(atoms)} atoms ({s['n_fu'][0] * 3} + {s['n_fu'][1] * 3}) at "
                            f"θ = {s['theta_deg']:.3f}°, residual strain {s['residual_percent']:.3f} %")
        except WanderError as exc:
            self.message = f"Error: {exc}"

    # -- long jobs --------------------------------------------------------------------
    def _model_kwargs(self):
        return {"model_dir": self.model_dir} if self.model_dir else {}

    def _fail(self, exc):
        self.message = f"Error: {exc}"

    def _done(self):
        self.running = ""

    def _ready_for_model(self) -> bool:
        """A cell exists and a model is available; otherwise say why."""
        if self.atoms is None:
            self.message = "Build a cell first."
            return False
        status = backend.model_status(self.material)
        if not self.model_dir and not status.available:
            self.message = status.message
            return False
        return True

    @param.depends("relax", watch=True)
    def _relax(self):
        if not self._ready_for_model():
            return
        atoms, steps = self.atoms.copy(), self.steps
        self.relax_trace = []
        self.running = "relax"

        def work(cancel):
            calc = backend.calculator(**self._model_kwargs())

            def on_step(info):
                def update():
                    self.relax_trace = self.relax_trace + [(info.step, info.energy, info.fmax)]
                    self.dz = info.dz_layers
                    self.progress = min(100, int(100 * info.step / max(steps, 1)))
                self.jobs.ui(update)
            res = backend.relax(atoms, calc, optimizer=self.optimizer, fmax=self.fmax, steps=steps,
                                on_step=on_step, cancel=cancel)
            final = res.atoms.copy()
            final.calc = None

            def finish():
                self.atoms = final
                state = "cancelled" if res.cancelled else ("converged" if res.converged else "not converged")
                self.message = (f"Relaxation {state} after {res.steps} steps: fmax {res.fmaxes[-1]:.4f} eV/Å, "
                                f"corrugation {', '.join(f'{c:.3f}' for c in res.summary()['corrugation_A'])} Å")
            self.jobs.ui(finish)
        if not self.jobs.start(work, on_error=self._fail, on_done=self._done):
            self.message = "A job is already running; cancel it first."

    @param.depends("compute_bands", watch=True)
    def _bands(self):
        if not self._ready_for_model():
            return
        atoms = self.atoms.copy()
        self.running = "bands"

        def work(cancel):
            tb = backend.predict_tb(atoms, **self._model_kwargs())
            from wander_gui.electronic.bands import compute_bands
            from wander_gui.electronic.kpoints import band_path
            k, x, labels = band_path(atoms.cell.array, "GMKG", 40)
            res = compute_bands(tb, k, nbands=None if tb.n_orb <= 3000 else 16, cancel=cancel,
                                on_step=lambda i, n: self.jobs.ui(lambda: setattr(self, "progress", int(100 * i / n))))
            res.x_k, res.labels = x, labels

            def finish():
                self.bands = res
                self.message = f"Bands: gap {res.cbm - res.vbm:.3f} eV (VBM {res.vbm:.3f}, CBM {res.cbm:.3f} eV)"
            self.jobs.ui(finish)
        if not self.jobs.start(work, on_error=self._fail, on_done=self._done):
            self.message = "A job is already running; cancel it first."

    @param.depends("cancel", watch=True)
    def _cancel(self):
        if self.jobs.busy:
            self.jobs.cancel()
            self.message = "Cancelling… the last structure is kept."

    def wait(self, timeout=None):
        """Block until the running job ends (tests and notebooks)."""
        self.jobs.join(timeout)

