"""The dashboard (minimal first version: build and look at a commensurate cell)."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from wander_gui import backend
from wander_gui.gui.state import MoireState

hv.extension("bokeh", logo=False)


class StructureView(pn.viewable.Viewer):
    """Top view of both layers, coloured by layer and element."""

    def __init__(self, state: MoireState, **params):
        super().__init__(**params)
        self.state = state

    @pn.depends("state.atoms")
    def _plot(self):
        a = self.state.atoms
        if a is None:
            return pn.pane.Markdown("Press **Build** to create the cell.")
        pos = a.positions
        sym = np.array(a.get_chemical_symbols())
        lay = a.arrays["layer"]
        kind = np.char.add(np.char.add(sym.astype(str), " L"), lay.astype(str))
        pts = hv.Points((pos[:, 0], pos[:, 1], kind), kdims=["x (Å)", "y (Å)"], vdims=["kind"])
        cell = a.cell.array
        corners = np.array([[0, 0], cell[0, :2], cell[0, :2] + cell[1, :2], cell[1, :2], [0, 0]])
        return (pts.opts(color="kind", cmap="Category10", size=4 if len(a) < 3000 else 2, aspect="equal",
                         responsive=True, min_height=450, tools=["hover"], legend_position="right")
                * hv.Curve(corners).opts(color="black"))

    def __panel__(self):
        return pn.panel(self._plot)


def create_app() -> pn.viewable.Viewable:
    state = MoireState()
    status = backend.model_status(state.material)
    controls = pn.Param(state, parameters=["material", "stacking", "angle", "max_atoms", "build"],
                        widgets={"angle": pn.widgets.FloatSlider, "build": {"type": pn.widgets.Button,
                                                                             "button_type": "primary"}},
                        show_name=False)
    snap_md = pn.pane.Markdown(pn.bind(
        lambda s: (f"Nearest commensurate cell: **θ = {s['theta_deg']:.3f}°**, **{s['n_atoms']} atoms**, "
                   f"(m, n) = ({s['m']}, {s['n']})") if s else "no cell within the budget", state.param.snapped))
    msg = pn.pane.Markdown(state.param.message)
    model_note = pn.pane.Alert(status.message, alert_type="success" if status.available else "warning")
    sidebar = pn.Column("## WANDER moiré lab", controls, snap_md, msg, width=330)
    main = pn.Column(model_note, StructureView(state), sizing_mode="stretch_width")
    return pn.Row(sidebar, main, sizing_mode="stretch_width")
