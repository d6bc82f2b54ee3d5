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
    model = param.Selector(default=None, objects=[], allow_None=True,
                           doc="pretrained model (the installed ones for the material, the default first)")
    model_dir = param.String(default="", doc="model directory (empty: the pretrained model chosen in `model`)")
    tile_maps = param.Boolean(default=False, doc="show the relaxation maps over 2×2 moiré cells")
    band_colour = param.Selector(default="gap", objects=["gap", "layer"],
                                 doc="colour bands by distance to the gap or by layer weight (fat bands)")
    psi_k = param.Selector(default="K", objects=["G", "M", "K"], label="|ψ|² at k", doc="k-point of the |ψ|² map")
    psi_band = param.Integer(default=-1, bounds=(-8, 7), label="|ψ|² of band", doc="band from the gap: −1 top valence, 0 bottom conduction")
    ladder_max_atoms = param.Integer(default=400, bounds=(42, 3000), doc="largest cell of the band-width ladder")
    dft_quick = param.Boolean(default=True, label="quick DFT preview (250 eV, sparse k; labelled)",
                              doc="cheap setting for a preview; off: the project's reference level of theory")
    dft_wannier = param.Boolean(default=False, label="DFT Wannier H and bands too (hours)",
                                doc="also the Wannier Hamiltonian and a DFT band path (needs Wannier90)")

    snapped = param.Dict(default={}, doc="commensurate cell for the current inputs")
    atoms = param.Parameter(default=None, doc="current structure (ase.Atoms)")
    relax_trace = param.List(default=[], doc="(step, energy, fmax) of the running/last relaxation")
    trajectory = param.String(default="", doc="extxyz trajectory file of the last relaxation (empty: none kept)")
    dz = param.Parameter(default=None, doc="latest per-layer out-of-plane displacements")
    relax_atoms = param.Parameter(default=None, doc="structure at the latest reported step of the running "
                                  "relaxation (None when idle: the maps then show `atoms`)")
    bands = param.Parameter(default=None, doc="latest BandResult")
    reference = param.Parameter(default=None, doc="DFT results when the cell is a validation cell")
    ref_bands = param.Parameter(default=None, doc="DFT BandResult of the validation cell (d–p manifold)")
    band_error = param.Dict(default={}, doc="near-gap band error vs DFT (meV)")
    psi = param.Parameter(default=None, doc="per-atom |ψ|² of the chosen state")
    parity = param.Parameter(default=None, doc="ParityResult of the model on its test split")
    ladder = param.List(default=[], doc="band width vs twist angle rows")
    running = param.String(default="", doc="name of the running job, empty when idle")
    progress = param.Integer(default=0, bounds=(0, 100))
    message = param.String(default="", doc="last status or error message")

    build = param.Event(doc="build the cell")
    relax = param.Event(doc="relax with the ML force field")
    compute_bands = param.Event(doc="predict the Hamiltonian and compute bands")
    cancel = param.Event(doc="cancel the running job")
    compute_psi = param.Event(doc="map |ψ|² of the chosen state")
    compute_parity = param.Event(doc="parity of the model vs DFT on its test split")
    compute_ladder = param.Event(doc="band width vs twist angle over the commensurate ladder")
    compute_dft = param.Event(doc="DFT reference of the current (small) cell in a background process")

    #: the relaxation trajectory is kept (for export) up to this many atom-steps
    TRAJECTORY_LIMIT = 2_000_000
    # s between live updates of the relaxation view, per 1000 atoms + 1 (each redraw interpolates the
    # maps in the server: every step would flood the page, and large cells take longer to draw)
    LIVE_INTERVAL = 0.5

    def __init__(self, **params):
        super().__init__(**params)
        import tempfile
        self.jobs = JobRunner()
        self._scratch = tempfile.TemporaryDirectory(prefix="wander-session-")  # removed with the session
        self._update_models()
        self._update_snap()

    @param.depends("material", watch=True)
    def _update_models(self):
        names = backend.model_names(self.material)
        self.param.model.objects = names
        if self.model not in names:
            self.model = names[0] if names else None

    @param.depends("model", "model_dir", watch=True)
    def _model_changed(self):
        """Results of the previous model are cleared (the structure stays): nothing on screen mixes two models."""
        self.param.update(bands=None, band_error={}, psi=None, parity=None, ladder=[])
        self.message = (f"Model {self.model_dir or self.model} selected: relax or compute bands again to use it."
                        if (self.model_dir or self.model) else "")

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
            self.relax_trace, self.dz, self.bands, self.psi, self.band_error = [], None, None, None, {}
            self.relax_atoms = None
            self.reference = backend.validation_reference(atoms)
            self.ref_bands = backend.reference_bands(self.reference)
            self.atoms = atoms
            self.message = (f"Built {len(atoms)} atoms ({s['n_fu'][0] * 3} + {s['n_fu'][1] * 3}) at "
                            f"θ = {s['theta_deg']:.3f}°, residual strain {s['residual_percent']:.3f} %")
        except WanderError as exc:
            self.message = f"Error: {exc}"

    # -- long jobs --------------------------------------------------------------------
    def _model_kwargs(self):
        if self.model_dir:
            return {"model_dir": self.model_dir}
        return {"model": self.model} if self.model else {}

    def _fail(self, exc):
        self.message = f"Error: {exc}"

    def _done(self):
        self.running = ""

    def _ready_for_model(self, *, need_cell: bool = True) -> bool:
        """A model is available (and a cell exists, if ``need_cell``); otherwise say why."""
        if need_cell and self.atoms is None:
            self.message = "Build a cell first."
            return False
        if not self._model_ok():
            self.message = backend.model_status(self.material).message
            return False
        return True

    @param.depends("relax", watch=True)
    def _relax(self):
        if not self._ready_for_model():
            return
        atoms, steps = self.atoms.copy(), self.steps
        self.relax_trace, self.trajectory = [], ""
        self.running = "relax"
        from pathlib import Path
        traj = str(Path(self._scratch.name) / "relax.extxyz") if len(atoms) * steps <= self.TRAJECTORY_LIMIT else None
        if traj and Path(traj).exists():
            Path(traj).unlink()

        def work(cancel):
            import time
            calc = backend.calculator(**self._model_kwargs())
            trace, last = [], [-1e9]
            interval = self.LIVE_INTERVAL * (1 + len(atoms) / 1000)

            def on_step(info):
                trace.append((info.step, info.energy, info.fmax))
                if time.monotonic() - last[0] < interval:
                    return
                last[0] = time.monotonic()
                update = dict(relax_trace=list(trace), dz=info.dz_layers, relax_atoms=info.atoms,
                              progress=min(100, int(100 * info.step / max(steps, 1))))
                self.jobs.ui(lambda: self.param.update(**update))  # one redraw per update
            try:
                res = backend.relax(atoms, calc, optimizer=self.optimizer, fmax=self.fmax, steps=steps,
                                    on_step=on_step, cancel=cancel, trajectory=traj)
            except backend.RelaxationError as exc:  # show the last good structure, then the error
                if exc.result is not None and exc.result.energies:
                    kept = exc.result.atoms.copy()
                    self.jobs.ui(lambda: self.param.update(atoms=kept, relax_atoms=None, relax_trace=list(trace)))
                raise
            final = res.atoms.copy()
            final.calc = None
            ood = backend.out_of_distribution(final, **self._model_kwargs())

            def finish():
                self.param.update(atoms=final, relax_atoms=None, relax_trace=list(trace))
                self.trajectory = traj or ""
                state = "cancelled" if res.cancelled else ("converged" if res.converged else "not converged")
                self.message = (f"Relaxation {state} after {res.steps} steps: fmax {res.fmaxes[-1]:.4f} eV/Å, "
                                f"corrugation {', '.join(f'{c:.3f}' for c in res.summary()['corrugation_A'])} Å"
                                + (f"; {ood.message()}" if ood is not None else ""))
            self.jobs.ui(finish)
        self._start(work)

    @param.depends("compute_bands", watch=True)
    def _bands(self):
        if not self._ready_for_model():
            return
        atoms = self.atoms.copy()
        ref = self.ref_bands if self._reference_matches(atoms) else None  # the DFT is for those positions only
        self.running = "bands"

        def work(cancel):
            tb = backend.predict_tb(atoms, **self._model_kwargs())
            from wander_gui.electronic.bands import compute_bands
            from wander_gui.electronic.kpoints import band_path
            layers, _ = backend.orbital_layers(atoms)
            if ref is not None:
                k, x = ref.kpts_kc, ref.x_k
                _, _, labels = band_path(atoms.cell.array, "GMKG", len(k))
            else:
                k, x, labels = band_path(atoms.cell.array, "GMKG", 40)
            plan = backend.band_plan(tb.n_orb)
            res = compute_bands(tb, k, nbands=plan["nbands"], solver=plan["solver"],
                                orbital_layer=layers if plan["fat_bands"] else None, cancel=cancel,
                                on_step=lambda i, n: self.jobs.ui(lambda: setattr(self, "progress", int(100 * i / n))))
            res.x_k, res.labels = x, labels
            err = backend.band_errors(res, ref) if ref is not None else {}
            acc = backend.band_accuracy(backend.model_info(self.material, self.model)) if not self.model_dir else None

            def finish():
                self.bands, self.band_error = res, err
                gap = res.cbm - res.vbm
                msg = (f"Bands: gap {gap:.3f} eV (VBM {res.vbm:.3f}, CBM {res.cbm:.3f} eV)" if gap > 0 else
                       f"Bands: no gap — the model's valence and conduction bands overlap by {-gap:.3f} eV")
                if not plan["fat_bands"]:
                    msg += (f" — {tb.n_orb} orbitals on a CPU: 16 bands by the subspace solver, each within "
                            f"{1000 * res.residual_kn.max():.2g} meV of an exact eigenvalue; no layer weights")
                if err:
                    msg += (f"; vs DFT: near-gap MAE {err['mae_meV']:.0f} meV, gap error "
                            f"{err['gap_error_meV']:+.0f} meV")
                elif acc is not None:  # no DFT for this cell: quote what was measured on similar ones
                    msg += f"; no DFT for this cell — the model's measured {acc.summary()}"
                self.message = msg
            self.jobs.ui(finish)
        self._start(work)

    def _reference_matches(self, atoms) -> bool:
        """The DFT reference was computed for exactly these positions (not e.g. before relaxing)."""
        import numpy as np
        ref = self.reference
        return (ref is not None and "positions" in ref and np.shape(ref["positions"]) == atoms.positions.shape
                and bool(np.allclose(ref["positions"], atoms.positions, atol=1e-4)))

    @param.depends("compute_dft", watch=True)
    def _dft(self):
        if self.atoms is None:
            self.message = "Build a cell first."
            return
        from wander_gui.dft.background import BackgroundDFT, dft_unavailable_reason
        why = dft_unavailable_reason(len(self.atoms), wannier=self.dft_wannier)
        if why:
            self.message = f"DFT not started: {why}"
            return
        import time
        from pathlib import Path
        atoms, quick, wannier = self.atoms.copy(), self.dft_quick, self.dft_wannier
        out = Path(self._scratch.name) / f"dft-{time.strftime('%H%M%S')}"
        self.running = "DFT (background process)"

        def work(cancel):
            run = BackgroundDFT(atoms, out, quick=quick, wannier=wannier)
            while run.poll() is None:
                if cancel.wait(0.5):
                    run.cancel()
                    self.jobs.ui(lambda: setattr(self, "message", "DFT cancelled (the GPAW process was stopped)."))
                    return
                phase, frac = run.progress()
                self.jobs.ui(lambda: (setattr(self, "progress", int(100 * frac)),
                                      setattr(self, "running", f"DFT: {phase}")))
            if run.poll() != 0:
                raise backend.WanderError(f"the DFT run failed: {run.error_tail()}")
            ref = dict(run.result(), name="this cell" + (" (quick DFT preview)" if quick else " (DFT)"))
            ref_bands = backend.reference_bands(ref)
            par = backend.cell_parity(atoms, ref, **self._model_kwargs()) if self._model_ok() else None

            def finish():
                self.reference, self.ref_bands = ref, ref_bands
                msg = f"DFT done for {ref['name']}: E = {float(ref['energy']):.4f} eV in {float(ref['scf_seconds']):.0f} s"
                if par is not None:
                    self.parity = par
                    f = par.summary()["forces"]["all"]
                    msg += f"; ML force MAE on this cell {f['mae_meV_per_A']:.1f} meV/Å (Parity tab)"
                self.message = msg
            self.jobs.ui(finish)
        self._start(work)

    def _model_ok(self) -> bool:
        return bool(self.model_dir) or backend.model_status(self.material).available

    def _start(self, work):
        if not self.jobs.start(work, on_error=self._fail, on_done=self._done):
            self.message = "A job is already running; cancel it first."

    @param.depends("compute_psi", watch=True)
    def _psi(self):
        if not self._ready_for_model():
            return
        atoms, kname, band = self.atoms.copy(), self.psi_k, self.psi_band
        self.running = "|ψ|² map"

        def work(cancel):
            from wander_gui.electronic.bands import state_density
            from wander_gui.electronic.kpoints import special_points
            tb = backend.predict_tb(atoms, **self._model_kwargs())
            _, orbital_atom = backend.orbital_layers(atoms)
            rho = state_density(tb, special_points(atoms.cell.array)[kname], [band], orbital_atom=orbital_atom)

            def finish():
                self.psi = {"atoms": atoms, "rho": rho, "k": kname, "band": band}
                self.message = f"|ψ|² of band {band:+d} (from the gap) at {kname}"
            self.jobs.ui(finish)
        self._start(work)

    @param.depends("compute_parity", watch=True)
    def _parity(self):
        if not self._ready_for_model(need_cell=False):
            return
        self.running = "parity"

        def work(cancel):
            res = backend.parity_report("test", **self._model_kwargs())
            res.title = "model test split"

            def finish():
                self.parity = res
                self.message = f"Parity on the test split: {len(res.names)} configurations"
            self.jobs.ui(finish)
        self._start(work)

    @param.depends("compute_ladder", watch=True)
    def _ladder(self):
        if not self._ready_for_model(need_cell=False):
            return
        stacking, max_atoms = self.stacking, self.ladder_max_atoms
        self.running = "band-width ladder"

        def work(cancel):
            rows = backend.band_width_ladder(
                stacking=stacking, max_atoms=max_atoms, cancel=cancel, **self._model_kwargs(),
                on_step=lambda i, n: self.jobs.ui(lambda: setattr(self, "progress", int(100 * i / n))))

            def finish():
                self.ladder = rows
                self.message = f"Band-width ladder: {len(rows)} cells up to {max_atoms} atoms ({stacking})"
            self.jobs.ui(finish)
        self._start(work)

    @param.depends("cancel", watch=True)
    def _cancel(self):
        if self.jobs.busy:
            self.jobs.cancel()
            self.message = "Cancelling… the last structure is kept."

    def wait(self, timeout=None):
        """Block until the running job ends (tests and notebooks)."""
        self.jobs.join(timeout)

