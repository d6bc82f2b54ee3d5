"""Per-browser-session state of the app (one instance per session, nothing shared)."""
from __future__ import annotations

import logging

import param

from wander_gui import backend
from wander_gui.errors import WanderError

log = logging.getLogger(__name__)


class MoireState(param.Parameterized):
    """Inputs and results of one session."""

    material = param.Selector(default="MoS2", objects=backend.materials(), doc="TMD material")
    stacking = param.Selector(default="R", objects=["R", "H"],
                              doc="R: AA-like at 0° (near-0° twists); H: 2H-like at 0° (near-60°)")
    angle = param.Number(default=21.79, bounds=(0.1, 59.9), step=0.01, doc="requested twist angle (degrees)")
    max_atoms = param.Integer(default=2000, bounds=(6, 100_000), doc="atom budget of the cell")
    snapped = param.Dict(default={}, doc="nearest commensurate cell for the current angle")
    atoms = param.Parameter(default=None, doc="the built structure (ase.Atoms)")
    message = param.String(default="", doc="last status or error message")
    build = param.Event(doc="build the snapped cell")

    def __init__(self, **params):
        super().__init__(**params)
        self._update_snap()

    @param.depends("angle", "max_atoms", watch=True)
    def _update_snap(self):
        try:
            self.snapped = backend.snap_angle(self.angle, max_atoms=self.max_atoms)
        except WanderError as exc:
            self.snapped = {}
            self.message = str(exc)

    @param.depends("build", watch=True)
    def _build(self):
        try:
            snap = self.snapped or backend.snap_angle(self.angle, max_atoms=self.max_atoms)
            self.atoms = backend.build_twisted(self.material, self.stacking, mn=(snap["m"], snap["n"]),
                                               max_atoms=self.max_atoms)
            self.message = (f"Built {len(self.atoms)} atoms at θ = {snap['theta_deg']:.3f}° "
                            f"(m, n) = ({snap['m']}, {snap['n']})")
        except WanderError as exc:
            self.message = f"Error: {exc}"
