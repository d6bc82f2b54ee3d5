"""Thin Panel/HoloViews views of a :class:`MoireState` (layout only; no science here)."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from wander_gui import backend
from wander_gui.gui.state import MoireState

RASTER_ABOVE = 3000  # atoms: rasterise scatter plots above this size


def structure_plots(atoms):
    if atoms is None:
        return pn.pane.Markdown("Press **Build** to create the cell.")
    pos = atoms.positions
    sym = np.array(atoms.get_chemical_symbols())
    lay = atoms.arrays["layer"]
    kind = np.char.add(np.char.add(sym.astype(str), " layer "), lay.astype(str))
    cell = atoms.cell.array
    corners = np.array([[0, 0], cell[0, :2], cell[0, :2] + cell[1, :2], cell[1, :2], [0, 0]])
    top = hv.Points((pos[:, 0], pos[:, 1], kind), kdims=["x (Å)", "y (Å)"], vdims=["kind"])
    side = hv.Points((pos[:, 0], pos[:, 2], kind), kdims=["x (Å)", "z (Å)"], vdims=["kind"])
    if len(atoms) > RASTER_ABOVE:
        from holoviews.operation.datashader import datashade
        top = datashade(top, aggregator="count_cat", cmap="Category10").opts(aspect="equal", responsive=True,
                                                                           min_height=420)
        side = datashade(side, aggregator="count_cat", cmap="Category10").opts(responsive=True, height=200)
    else:
        opts = dict(color="kind", cmap="Category10", size=5, tools=["hover"], legend_position="right")
        top = top.opts(aspect="equal", responsive=True, min_height=420, **opts)
        side = side.opts(responsive=True, height=200, **opts)
    outline = hv.Curve(corners).opts(color="black")
    return pn.Column(pn.pane.HoloViews(top * outline, sizing_mode="stretch_width"),
                     pn.pane.HoloViews(side, sizing_mode="stretch_width"), sizing_mode="stretch_width")


def relax_plots(atoms, trace, dz):
    if atoms is None or not trace:
        return pn.pane.Markdown("Relaxation maps appear here while a relaxation runs.")
    steps, e, f = (np.array(x) for x in zip(*trace))
    traces = (hv.Curve((steps, e), "step", "energy (eV)").opts(responsive=True, height=220, title="energy")
              + hv.Curve((steps, f), "step", "fmax (eV/Å)").opts(responsive=True, height=220, logy=True,
                                                               title="max force"))
    maps = []
    lim = max(1e-3, max(float(np.nanmax(np.abs(d))) for d in dz)) if dz else 1e-3
    for layer in (0, 1):
        gx, gy, grid = backend.displacement_map(atoms, layer, n=40)
        qm = hv.QuadMesh((gx, gy, grid), ["x (Å)", "y (Å)"], "dz (Å)")
        maps.append(qm.opts(cmap="RdBu_r", clim=(-lim, lim), colorbar=True, aspect="equal", responsive=True,
                            min_height=300, title=f"layer {layer}: z − ⟨z⟩ (metal plane)"))
    return pn.Column(pn.pane.HoloViews(maps[0] + maps[1], sizing_mode="stretch_width"),
                     pn.pane.HoloViews(traces, sizing_mode="stretch_width"), sizing_mode="stretch_width")


def band_plots(bands):
    if bands is None:
        return pn.pane.Markdown("Bands appear here after **Bands**.")
    x = bands.x_k if bands.x_k is not None else np.arange(len(bands.kpts_kc))
    curves = []
    for n in range(bands.e_kn.shape[1]):
        near = abs(n - bands.n_valence + 0.5) <= 2.5
        curves.append(hv.Curve((x, bands.e_kn[:, n]), "k", "energy (eV)").opts(
            color="crimson" if near else "steelblue", line_width=2 if near else 1))
    ov = hv.Overlay(curves).opts(responsive=True, min_height=450, show_legend=False,
                                 ylim=(bands.vbm - 1.5, bands.cbm + 1.5))
    if bands.labels:
        ov = ov.opts(xticks=[(xl, "Γ" if n == "G" else n) for xl, n in bands.labels])
    return pn.pane.HoloViews(ov, sizing_mode="stretch_width")


class Dashboard(pn.viewable.Viewer):
    """Sidebar of inputs and actions + tabs of views, all bound to one session state."""

    def __init__(self, state: MoireState | None = None, **params):
        super().__init__(**params)
        self.state = state or MoireState()

    def __panel__(self):
        s = self.state
        status = backend.model_status(s.material)
        btn = lambda name, kind: {"type": pn.widgets.Button, "button_type": kind, "name": name}  # noqa: E731
        cell_inputs = pn.Param(s, parameters=["material", "stacking", "angle", "strain", "strain_mode",
                                              "strain_direction", "max_residual_strain", "max_atoms", "build"],
                               widgets={"angle": pn.widgets.FloatSlider, "strain": pn.widgets.FloatSlider,
                                        "max_atoms": pn.widgets.IntInput, "build": btn("Build", "primary")},
                               show_name=False)
        job_inputs = pn.Param(s, parameters=["optimizer", "fmax", "steps", "relax", "compute_bands", "cancel"],
                              widgets={"fmax": pn.widgets.FloatInput, "steps": pn.widgets.IntInput,
                                       "relax": btn("Relax", "success"), "compute_bands": btn("Bands", "success"),
                                       "cancel": btn("Cancel", "danger")}, show_name=False)
        snap = pn.bind(lambda c: pn.pane.Markdown(
            f"**θ = {c['theta_deg']:.3f}°**, **{c['n_atoms']} atoms** ({c['n_fu'][0] * 3} + {c['n_fu'][1] * 3}), "
            f"residual strain {c['residual_percent']:.3f} %" if c else "no cell for these inputs"), s.param.snapped)
        progress = pn.indicators.Progress(value=s.param.progress, max=100, sizing_mode="stretch_width")
        busy = pn.bind(lambda r: pn.pane.Markdown(f"*running: {r}*" if r else ""), s.param.running)
        sidebar = pn.Column("## WANDER moiré lab", cell_inputs, snap, job_inputs, progress, busy,
                            pn.pane.Markdown(s.param.message), width=340)
        note = pn.pane.Alert(status.message, alert_type="success" if status.available else "warning")
        tabs = pn.Tabs(("Structure", pn.bind(structure_plots, s.param.atoms)),
                       ("Relaxation", pn.bind(relax_plots, s.param.atoms, s.param.relax_trace, s.param.dz)),
                       ("Bands", pn.bind(band_plots, s.param.bands)), dynamic=True, sizing_mode="stretch_width")
        return pn.Row(sidebar, pn.Column(note, tabs, sizing_mode="stretch_width"), sizing_mode="stretch_width")
