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


REFERENCE_KINDS = {"forces": "energy and forces", "pair_values": "Wannier H", "bands_eV": "DFT band path"}
LAYER_COLOURS = ("#1f77b4", "#ff7f0e")  # layer 0, layer 1 (Category10, as in the 2D views)


def structure_3d(atoms, *, repeat: tuple[int, int] = (1, 1)):
    """3D view of a bilayer for notebooks (nglview widget): ball-and-stick, one colour per
    layer, the unit cell drawn. Needs ``pip install nglview`` (the ``[notebook]`` extra)."""
    try:
        import nglview
    except ImportError as exc:
        from wander_gui.errors import InputError
        raise InputError("the 3D view needs nglview: pip install 'nglview>=3.1' (or the [notebook] extra)") from exc
    from wander_gui.core.layers import ensure_layers
    layer = ensure_layers(atoms)
    a = atoms.repeat((*repeat, 1)) if repeat != (1, 1) else atoms.copy()
    layer = np.tile(layer, repeat[0] * repeat[1])
    view = nglview.show_ase(a, default=False)
    for lay, colour in zip((0, 1), LAYER_COLOURS):
        idx = np.flatnonzero(layer == lay)
        view.add_representation("ball+stick", selection="@" + ",".join(map(str, idx)), color=colour,
                                radius=0.25, name=f"layer {lay}")
    view.add_unitcell()
    return view


def relax_figures(atoms, trace, reference=None, tile=False):
    """(displacement maps, energy/fmax traces) HoloViews objects of a relaxation."""
    steps, e, f = (np.array(x) for x in zip(*trace))
    traces = (hv.Curve((steps, e), "step", "energy (eV)").opts(responsive=True, height=220, title="energy")
              + hv.Curve((steps, f), "step", "fmax (eV/Å)").opts(responsive=True, height=220, logy=True,
                                                               title="max force"))
    dft = None
    if reference is not None and "relaxed_positions" in reference:
        dft = atoms.copy()
        dft.positions = reference["relaxed_positions"]
    maps = []
    grids = {(src, layer): backend.displacement_map(a, layer, n=40, repeat=2 if tile else 1)
             for src, a in (("ML", atoms), ("DFT", dft)) if a is not None for layer in (0, 1)}
    lim = max(1e-3, max(float(np.nanmax(np.abs(g[2]))) for g in grids.values()))  # one colour scale
    for (src, layer), (gx, gy, grid) in grids.items():
        qm = hv.QuadMesh((gx, gy, grid), ["x (Å)", "y (Å)"], "dz (Å)")
        maps.append(qm.opts(cmap="RdBu_r", clim=(-lim, lim), colorbar=True, aspect="equal", responsive=True,
                            min_height=300, title=f"{src} layer {layer}: z − ⟨z⟩ (metal plane)"))
    return hv.Layout(maps).cols(2), traces


def relax_plots(atoms, live, trace, reference=None, tile=False):
    """Maps of ``live`` (the running relaxation's latest step) or else ``atoms``, and the traces."""
    if atoms is None or not trace:
        return pn.pane.Markdown("Relaxation maps appear here while a relaxation runs.")
    maps, traces = relax_figures(live if live is not None else atoms, trace, reference, tile)
    return pn.Column(pn.pane.HoloViews(maps, sizing_mode="stretch_width"),
                     pn.pane.HoloViews(traces, sizing_mode="stretch_width"), sizing_mode="stretch_width")


def band_figures(bands, colour="gap", ref=None, err=None):
    """(band overlay, DOS) HoloViews objects of a BandResult, with the DFT reference dashed."""
    x = bands.x_k if bands.x_k is not None else np.arange(len(bands.kpts_kc))
    elems = []

    def lines(xs, e_kn, cols):  # many bands as one multi-line glyph (fast for hundreds of bands)
        return hv.Path([np.column_stack([xs, e_kn[:, n]]) for n in cols], ["k", "energy (eV)"])
    if ref is not None:  # DFT reference (same k-points, vacuum-referenced)
        xr = ref.x_k if ref.x_k is not None else x
        elems.append(lines(xr, ref.e_kn, range(ref.e_kn.shape[1])).opts(color="black", line_dash="dashed",
                                                                         line_width=1))
    if colour == "layer" and bands.layer0_weight_kn is not None:
        xs = np.repeat(x, bands.e_kn.shape[1])
        pts = hv.Points((xs, bands.e_kn.ravel(), bands.layer0_weight_kn.ravel()), ["k", "energy (eV)"],
                        "layer 0 weight")
        elems.append(pts.opts(color="layer 0 weight", cmap="coolwarm", clim=(0, 1), size=4, colorbar=True))
    else:
        nb = bands.e_kn.shape[1]
        near = [n for n in range(nb) if abs(n - bands.n_valence + 0.5) <= 2.5]
        far = [n for n in range(nb) if n not in near]
        if far:
            elems.append(lines(x, bands.e_kn, far).opts(color="steelblue", line_width=1))
        elems.append(lines(x, bands.e_kn, near).opts(color="crimson", line_width=2))
    ylim = (bands.vbm - 1.5, bands.cbm + 1.5)
    title = "predicted" + (" (solid) vs DFT (dashed)" if ref is not None else "")
    if ref is not None and ref.source and "Wannier" in ref.source:
        title = "predicted (solid) vs DFT Wannier H (dashed)"
    if err:
        title += f": near-gap MAE {err['mae_meV']:.0f} meV, gap error {err['gap_error_meV']:+.0f} meV"
    ov = hv.Overlay(elems).opts(responsive=True, min_height=450, show_legend=False, ylim=ylim, title=title)
    if bands.labels:
        ov = ov.opts(xticks=[(xl, "Γ" if n == "G" else n) for xl, n in bands.labels])
    from wander_gui.electronic.solvers import dos
    energies, g = dos(bands.e_kn, width=0.03, energies=np.linspace(*ylim, 400))
    dos_plot = hv.Curve((energies, g), "energy (eV)", "DOS (states/eV)").opts(
        invert_axes=True, height=450, width=180, color="gray", ylim=ylim, title="DOS")
    return ov, dos_plot


def band_plots(bands, colour="gap", ref=None, err=None):
    if bands is None:
        return pn.pane.Markdown("Bands appear here after **Bands**.")
    ov, dos_plot = band_figures(bands, colour, ref, err)
    note = pn.pane.Markdown(f"Reference: {ref.source}." if ref is not None and ref.source else "")
    return pn.Column(pn.Row(pn.pane.HoloViews(ov, sizing_mode="stretch_width"), pn.pane.HoloViews(dos_plot),
                            sizing_mode="stretch_width"), note, sizing_mode="stretch_width")


def psi_plots(psi):
    if psi is None:
        return pn.pane.Markdown("Choose a band and k-point, then **Map |ψ|²**: where the state lives in the cell.")
    atoms, rho = psi["atoms"], psi["rho"]
    lay = atoms.arrays["layer"]
    panels = []
    for layer in (0, 1):
        m = lay == layer
        pts = hv.Points((atoms.positions[m, 0], atoms.positions[m, 1], rho[m]), ["x (Å)", "y (Å)"], "|ψ|²")
        panels.append(pts.opts(color="|ψ|²", cmap="viridis", clim=(0, float(rho.max())), size=7, colorbar=True,
                               aspect="equal", responsive=True, min_height=320, tools=["hover"],
                               title=f"layer {layer}: band {psi['band']:+d} at {psi['k']}"))
    return pn.pane.HoloViews(panels[0] + panels[1], sizing_mode="stretch_width")


def parity_plots(res):
    if res is None:
        return pn.pane.Markdown("**Compute parity** evaluates the model on its held-out DFT test split.")
    from wander_gui.ml.train_h import metrics
    panels = []
    for kind, key, unit, thr in [("forces", "all", "eV/Å", 0.0), ("hamiltonian", "onsite", "eV", 1e-3),
                                 ("hamiltonian", "intra", "eV", 1e-3), ("hamiltonian", "inter", "eV", 1e-3)]:
        data = getattr(res, kind)
        if key not in data:
            continue
        p, t = data[key]
        m = metrics(p, t, thr)
        lo, hi = float(min(p.min(), t.min())), float(max(p.max(), t.max()))
        scale = "meV/Å" if kind == "forces" else "meV"
        name = "force" if kind == "forces" else f"H {key}"
        panels.append((hv.Scatter((t, p), f"DFT ({unit})", f"predicted ({unit})").opts(size=3, alpha=0.5)
                       * hv.Curve([(lo, lo), (hi, hi)]).opts(color="gray")).opts(
            title=f"{name}: MAE {m['mae_meV']:.1f} {scale}, R² {m['r2']:.3f}", width=320, height=320))
    head = pn.pane.Markdown(f"**Predicted vs DFT: {res.title or ', '.join(res.names)}**")
    return pn.Column(head, pn.pane.HoloViews(hv.Layout(panels).cols(4)), pn.pane.Markdown(parity_table(res)))


def parity_table(res) -> str:
    """Markdown table of MAE and R² per force element and bilayer site (in-plane; outward along the
    layer normal, whose mean error shows a systematic bias) and per Hamiltonian category and
    ordered pair type (M: metal, X: chalcogen; elements with |H_DFT| > 1 meV)."""
    summ = res.summary()
    rows = ["| quantity | MAE | mean error | R² | n |", "|---|---|---|---|---|"]
    for k, m in summ["forces"].items():
        if m:
            rows.append(f"| forces {k} | {m['mae_meV_per_A']:.1f} meV/Å | {m['mean_error_meV_per_A']:+.1f} meV/Å | "
                        f"{m['r2']:.3f} | {m['n']} |")
    for k, m in summ["hamiltonian"].items():
        if m:
            rows.append(f"| H {k} | {m['mae_meV']:.2f} meV | | {m['r2']:.3f} | {m['n']} |")
    return "\n".join(rows)


def ladder_plot(rows, theta_now):
    if not rows:
        return pn.pane.Markdown("**Compute ladder**: the width of the top valence bands for every commensurate "
                                "cell up to the atom budget (flat bands appear at small twist angles).")
    th = np.array([r["theta_deg"] for r in rows])
    w = np.array([r["width_eV"] for r in rows]) * 1000
    order = np.argsort(th)
    curve = hv.Curve((th[order], w[order]), "twist angle (°)", "top valence width (meV)")
    pts = hv.Scatter((th[order], w[order]), "twist angle (°)", "top valence width (meV)").opts(size=6, tools=["hover"])
    plot = curve * pts
    if theta_now is not None:
        plot = plot * hv.VLine(theta_now).opts(color="crimson", line_dash="dashed")
    return pn.pane.HoloViews(plot.opts(responsive=True, min_height=380, logy=True), sizing_mode="stretch_width")


def model_banner(material, model=None, model_dir=""):
    if model_dir:
        return pn.pane.Alert(f"Model from the directory **{model_dir}** (not a published model: no measured "
                             "accuracy to show).", alert_type="info")
    status = backend.model_status(material)
    info = backend.model_info(material, model) if status.available else None
    if info is None:
        return pn.pane.Alert(status.message, alert_type="warning")
    ff = (info.get("metrics", {}).get("ff") or {}).get("test") or {}
    h = ((info.get("metrics", {}).get("h") or {}).get("test") or {})
    default = backend.model_names(material)[0]
    bits = [f"Model **{info['name']}** ({info.get('created', '')}"
            + ("" if info["name"] == default else f"; not the default, {default}") + "), trained on "
            f"{info['training_data']['n_configs']} DFT configurations"]
    if ff:
        bits.append(f"test force MAE {ff['force_mae_meV_per_A']:.0f} meV/Å")
    if h.get("onsite"):
        bits.append(f"H MAE on-site/intra/inter {h['onsite']['mae_meV']:.0f}/"
                    f"{h.get('intra', {}).get('mae_meV', float('nan')):.0f}/"
                    f"{h.get('inter', {}).get('mae_meV', float('nan')):.0f} meV")
    acc = backend.band_accuracy(info)
    if acc is not None:
        bits.append(acc.summary())
    text = ", ".join(bits) + ". " + (info.get("description") or "") + " Accuracy tables: pretrained/README.md."
    return pn.pane.Alert(text, alert_type="info")


def _structure_title(atoms) -> str:
    if atoms is None:
        return ""
    theta = atoms.info.get("twist_deg")
    return f"{len(atoms)} atoms" + (f", θ = {theta:.2f}°" if theta is not None else "")


def standalone_html(obj, title: str):
    """A self-contained HTML file (every script inline: opens offline) of a HoloViews object."""
    import io
    import re

    from bokeh.resources import INLINE
    buf = io.StringIO()
    pn.panel(obj).save(buf, resources=INLINE, title=title)
    html = re.sub(r'<link rel="(?:apple-touch-icon|icon)"[^>]*>', "", buf.getvalue())  # CDN favicons
    return io.BytesIO(html.encode())


def export_widgets(s: MoireState):
    """Download buttons for the current structure, bands and Hamiltonian."""
    import io

    def structure(fmt):
        def cb():
            if s.atoms is None:
                return None
            from ase.io import write
            buf = io.StringIO()
            write(buf, s.atoms, format=fmt)
            return io.BytesIO(buf.getvalue().encode())
        return cb

    def bands_npz():
        if s.bands is None:
            return None
        buf = io.BytesIO()
        s.bands.save(buf)
        buf.seek(0)
        return buf

    def bands_csv():
        if s.bands is None:
            return None
        b = s.bands
        head = "k1,k2,k3," + ",".join(f"band{n - b.n_valence:+d}" for n in range(b.e_kn.shape[1]))
        rows = [",".join(f"{v:.8f}" for v in (*k, *e)) for k, e in zip(b.kpts_kc, b.e_kn)]
        return io.BytesIO(("\n".join([head, *rows]) + "\n").encode())

    def hr_dat():
        if s.atoms is None:
            return None
        import tempfile
        from pathlib import Path

        from wander_gui.core.io import write_hr
        tb = backend.predict_tb(s.atoms, **s._model_kwargs())
        with tempfile.TemporaryDirectory() as d:
            path = write_hr(tb.to_wannier_hr(), Path(d) / "wander_hr.dat",
                            header="WANDER predicted Hamiltonian (eV, vacuum level = 0)")
            return io.BytesIO(path.read_bytes())

    def trajectory():
        from pathlib import Path
        if not s.trajectory or not Path(s.trajectory).exists():
            return None
        return io.BytesIO(Path(s.trajectory).read_bytes())

    def bands_png():
        if s.bands is None:
            return None
        from wander_gui.electronic.bands import plot_bands
        buf = io.BytesIO()
        ref = s.ref_bands if s.ref_bands is not None and len(s.ref_bands.kpts_kc) == len(s.bands.kpts_kc) else None
        plot_bands(s.bands, buf, reference=ref, title=_structure_title(s.atoms))
        buf.seek(0)
        return buf

    def bands_html():
        if s.bands is None:
            return None
        ov, dos_plot = band_figures(s.bands, s.band_colour, s.ref_bands, s.band_error)
        return standalone_html(ov + dos_plot, "WANDER bands: " + _structure_title(s.atoms))

    def relax_html():
        if s.atoms is None or not s.relax_trace:
            return None
        maps, traces = relax_figures(s.atoms, s.relax_trace, s.reference, s.tile_maps)
        return standalone_html((maps + traces).cols(2), "WANDER relaxation: " + _structure_title(s.atoms))

    mk = pn.widgets.FileDownload
    return pn.Column(
        "### Export",
        mk(callback=trajectory, filename="relaxation.extxyz", label="relaxation trajectory (extxyz)"),
        mk(callback=bands_png, filename="bands.png", label="band plot (PNG)"),
        mk(callback=bands_html, filename="bands.html", label="band plot (HTML)"),
        mk(callback=relax_html, filename="relaxation.html", label="relaxation maps (HTML)"),
        mk(callback=structure("extxyz"), filename="structure.extxyz", label="structure (extxyz)"),
        mk(callback=structure("vasp"), filename="POSCAR", label="structure (POSCAR)"),
        mk(callback=bands_npz, filename="bands.npz", label="bands (npz)"),
        mk(callback=bands_csv, filename="bands.csv", label="bands (csv)"),
        mk(callback=hr_dat, filename="wander_hr.dat", label="Hamiltonian (_hr.dat)"))


class Dashboard(pn.viewable.Viewer):
    """Sidebar of inputs and actions + tabs of views, all bound to one session state."""

    def __init__(self, state: MoireState | None = None, **params):
        super().__init__(**params)
        self.state = state or MoireState()

    def __panel__(self):
        s = self.state
        btn = lambda name, kind: {"type": pn.widgets.Button, "button_type": kind, "name": name}  # noqa: E731
        cell_inputs = pn.Param(s, parameters=["material", "stacking", "angle", "strain", "strain_mode",
                                              "strain_direction", "max_residual_strain", "max_atoms", "build"],
                               widgets={"angle": pn.widgets.FloatSlider, "strain": pn.widgets.FloatSlider,
                                        "max_atoms": pn.widgets.IntInput, "build": btn("Build", "primary")},
                               show_name=False)
        job_inputs = pn.Param(s, parameters=["model", "optimizer", "fmax", "steps", "relax", "compute_bands", "cancel"],
                              widgets={"fmax": pn.widgets.FloatInput, "steps": pn.widgets.IntInput,
                                       "relax": btn("Relax", "success"), "compute_bands": btn("Bands", "success"),
                                       "cancel": btn("Cancel", "danger")}, show_name=False)
        dft_inputs = pn.Param(s, parameters=["dft_quick", "dft_wannier", "compute_dft"],
                              widgets={"compute_dft": btn("DFT reference (background)", "default")},
                              show_name=False)
        snap = pn.bind(lambda c: pn.pane.Markdown(
            f"**θ = {c['theta_deg']:.3f}°**, **{c['n_atoms']} atoms** ({c['n_fu'][0] * 3} + {c['n_fu'][1] * 3}), "
            f"residual strain {c['residual_percent']:.3f} %" if c else "no cell for these inputs"), s.param.snapped)
        progress = pn.indicators.Progress(value=s.param.progress, max=100, sizing_mode="stretch_width")
        busy = pn.bind(lambda r: pn.pane.Markdown(f"*running: {r}*" if r else ""), s.param.running)
        sidebar = pn.Column("## WANDER moiré lab", cell_inputs, snap, job_inputs, progress, busy,
                            pn.pane.Markdown(s.param.message), dft_inputs, export_widgets(s), width=340)
        ref_note = pn.bind(lambda r: pn.pane.Markdown(
            f"DFT reference available: **{r['name']}** ({'QUICK PREVIEW settings' if 'QUICK' in str(r.get('meta', '')) else 'PBE+D3'}; "
            f"{', '.join(v for k, v in REFERENCE_KINDS.items() if k in r)})" if r else ""), s.param.reference)
        band_ctrl = pn.Param(s, parameters=["band_colour", "psi_k", "psi_band", "compute_psi"],
                             widgets={"compute_psi": btn("Map |ψ|²", "success")}, show_name=False,
                             default_layout=pn.Row)
        bands_tab = pn.Column(band_ctrl,
                              pn.bind(band_plots, s.param.bands, s.param.band_colour, s.param.ref_bands,
                                      s.param.band_error),
                              pn.bind(psi_plots, s.param.psi), sizing_mode="stretch_width")
        parity_tab = pn.Column(pn.Param(s, parameters=["compute_parity"], show_name=False,
                                        widgets={"compute_parity": btn("Compute parity", "success")}),
                               pn.bind(parity_plots, s.param.parity), sizing_mode="stretch_width")
        theta_now = pn.bind(lambda a: a.info.get("twist_deg") if a is not None else None, s.param.atoms)
        teach_tab = pn.Column(pn.Param(s, parameters=["ladder_max_atoms", "compute_ladder"], show_name=False,
                                       widgets={"ladder_max_atoms": pn.widgets.IntInput,
                                                "compute_ladder": btn("Compute ladder", "success")},
                                       default_layout=pn.Row),
                              pn.bind(ladder_plot, s.param.ladder, theta_now), sizing_mode="stretch_width")
        tabs = pn.Tabs(("Structure", pn.Column(ref_note, pn.bind(structure_plots, s.param.atoms))),
                       ("Relaxation", pn.Column(pn.Param(s, parameters=["tile_maps"], show_name=False),
                                                pn.bind(relax_plots, s.param.atoms, s.param.relax_atoms, s.param.relax_trace,
                                                        s.param.reference, s.param.tile_maps),
                                                sizing_mode="stretch_width")),
                       ("Bands", bands_tab), ("Parity", parity_tab), ("Teaching", teach_tab),
                       dynamic=True, sizing_mode="stretch_width")
        banner = pn.bind(model_banner, s.param.material, s.param.model, s.param.model_dir)
        return pn.Row(sidebar, pn.Column(banner, tabs, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
