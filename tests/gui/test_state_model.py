"""Model-dependent parts of the session state (bands, |ψ|², parity, ladder, exports), headless."""
import io

import numpy as np
import pytest
from ase.io import read

from wander_gui.gui.state import MoireState
from wander_gui.gui import app as _app  # noqa: F401  (loads the bokeh plotting extension)
from wander_gui.gui import views


@pytest.fixture(scope="module")
def session(tiny_model_dir):
    s = MoireState(model_dir=str(tiny_model_dir))
    s.build = True
    return s


def test_bands_with_fat_bands_and_dos(session):
    s = session
    s.compute_bands = True
    s.wait(300)
    assert s.running == "" and s.message.startswith(("Bands: gap", "Bands: no gap")), s.message
    b = s.bands
    assert b.e_kn.shape[1] == 7 * 11 * 2 and b.layer0_weight_kn.shape == b.e_kn.shape
    # two layers of 7 formula units: layer-0 weights of all states at one k add up to its 77 orbitals
    assert b.layer0_weight_kn.sum(axis=1) == pytest.approx(np.full(len(b.kpts_kc), 77.0))
    for colour in ("gap", "layer"):
        views.band_plots(b, colour, None, {})  # renders both colourings


def test_psi_map_is_normalised(session):
    s = session
    s.psi_k, s.psi_band = "K", -1
    s.compute_psi = True
    s.wait(300)
    assert s.psi is not None, s.message
    assert s.psi["rho"].shape == (len(s.atoms),) and s.psi["rho"].sum() == pytest.approx(1.0)
    views.psi_plots(s.psi)


def test_parity_and_ladder(session):
    s = session
    s.compute_parity = True
    s.wait(300)
    assert s.parity is not None, s.message
    assert s.parity.forces["all"][0].shape == s.parity.forces["all"][1].shape
    views.parity_plots(s.parity)
    table = views.parity_table(s.parity)
    for row in ("forces all", "forces S outer outward", "forces Mo in-plane", "H onsite", "H intra M-X", "H inter X-X"):
        assert f"| {row} |" in table
    s.ladder_max_atoms = 120
    s.compute_ladder = True
    s.wait(300)
    # every exact cell up to 120 atoms, at θ and 60° − θ: 21.79/38.21° (42), 27.80/32.20° (78), 13.17/46.83° (114)
    assert sorted(r["n_atoms"] for r in s.ladder) == [42, 42, 78, 78, 114, 114]
    assert sorted(round(r["theta_deg"], 2) for r in s.ladder) == [13.17, 21.79, 27.8, 32.2, 38.21, 46.83]
    assert all(r["width_eV"] > 0 for r in s.ladder)
    views.ladder_plot(s.ladder, 21.79)
    # cached: a second session asking again computes nothing (no Hamiltonian is predicted)
    from wander_gui import backend
    calls = []
    real = backend.predict_tb
    backend.predict_tb = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        rows = backend.band_width_ladder(stacking=s.stacking, max_atoms=120, model_dir=s.model_dir)
    finally:
        backend.predict_tb = real
    assert calls == [] and rows == s.ladder


def test_exports(session):
    s = session
    col = views.export_widgets(s)
    downloads = {w.filename: w for w in col if hasattr(w, "callback")}
    a = read(io.StringIO(downloads["structure.extxyz"].callback().read().decode()), format="extxyz")
    assert len(a) == len(s.atoms)
    assert b"ATOM" not in downloads["POSCAR"].callback().read()[:0]
    z = np.load(downloads["bands.npz"].callback())
    assert z["eps_eV"].shape == s.bands.e_kn.shape
    csv = downloads["bands.csv"].callback().read().decode().splitlines()
    assert len(csv) == len(s.bands.kpts_kc) + 1
    hr = downloads["wander_hr.dat"].callback().read().decode().splitlines()
    assert int(hr[1]) == 7 * 11 * 2  # num_wann


def _self_contained(html: bytes) -> bool:
    import re
    text = html.decode()
    return text.lstrip().lower().startswith("<!doctype html") and not re.search(
        r'<(?:script|link)[^>]*(?:src|href)="https?://', text)


def test_plot_and_trajectory_exports(session):
    s = session
    downloads = {w.filename: w for w in views.export_widgets(s) if hasattr(w, "callback")}
    assert downloads["relaxation.extxyz"].callback() is None  # nothing relaxed yet
    assert downloads["bands.png"].callback().read(8) == b"\x89PNG\r\n\x1a\n"
    assert _self_contained(downloads["bands.html"].callback().read())
    s.steps, s.optimizer = 3, "fire"
    live = []
    s.param.watch(lambda e: live.append(e.new), "relax_atoms")
    s.relax = True
    s.wait(300)
    assert s.running == "" and s.trajectory, s.message
    assert live[0] is not None and live[-1] is None  # live structure while running, none after
    frames = read(io.StringIO(downloads["relaxation.extxyz"].callback().read().decode()), index=":", format="extxyz")
    assert len(frames) == len(s.relax_trace) == 4  # steps 0..3
    assert np.allclose(frames[-1].positions, s.atoms.positions, atol=1e-6)
    assert frames[0].get_forces().shape == (len(s.atoms), 3)
    assert _self_contained(downloads["relaxation.html"].callback().read())


def test_dashboard_with_results_renders(session):
    d = views.Dashboard(session)
    d.__panel__()


def test_relaxation_maps_with_dft_reference_and_tiling(session):
    a = session.atoms
    trace = [(0, -1.0, 0.5), (1, -1.1, 0.2)]
    ref = {"relaxed_positions": a.positions + np.array([0, 0, 0.01])}
    for tile in (False, True):
        col = views.relax_plots(a, None, trace, ref, tile)
        layout = col[0].object
        assert len(layout) == 4  # ML and DFT maps of both layers, one colour scale
    live = a.copy()  # a running relaxation's latest step: its maps replace those of the start
    live.positions[live.arrays["layer"] == 1, 2] += 0.05 * np.sin(live.positions[live.arrays["layer"] == 1, 0])
    ml = [el for el in views.relax_plots(a, live, trace)[0].object if el.label != "DFT"]
    start = views.relax_plots(a, None, trace)[0].object
    top = [o.data for o in ml if "ML layer 1" in o.opts.get().kwargs["title"]][0]
    top0 = [o.data for o in start if "ML layer 1" in o.opts.get().kwargs["title"]][0]
    assert not np.allclose(np.nan_to_num(top["dz (Å)"]), np.nan_to_num(top0["dz (Å)"]))


@pytest.mark.dft
def test_background_dft_reference_of_a_small_cell(tiny_model_dir):
    """The DFT button runs real GPAW (quick setting) in a subprocess on the current cell, then
    shows it as the reference and the model's force parity on it; Cancel stops the process."""
    from wander_gui.core.builder import build_aligned
    s = MoireState(model_dir=str(tiny_model_dir))
    s.atoms = build_aligned("MoS2", "R", supercell=1, d_interlayer=6.5)
    s.dft_quick, s.dft_wannier = True, False
    s.compute_dft = True
    s.wait(900)
    assert s.reference is not None, s.message
    assert "quick" in s.reference["name"] and s.reference["forces"].shape == (6, 3)
    assert s._reference_matches(s.atoms)
    assert s.parity is not None and s.parity.forces["all"][0].shape == (18,)
    assert "force MAE on this cell" in s.message
    views.parity_plots(s.parity)
    # cancel: the GPAW process is stopped and the state says so
    s.compute_dft = True
    import time
    time.sleep(3)
    s.cancel = True
    s.wait(60)
    assert s.running == "" and "DFT cancelled" in s.message


def test_background_dft_refuses_large_cells_with_the_limit(session):
    from wander_gui.dft.background import DFT_MAX_ATOMS
    s = session
    big = s.atoms.repeat((2, 2, 1))
    s2 = MoireState(model_dir=s.model_dir)
    s2.atoms = big
    s2.compute_dft = True
    assert s2.running == ""
    assert "DFT not started" in s2.message and str(DFT_MAX_ATOMS) in s2.message


def test_a_failed_relaxation_keeps_its_last_good_structure_and_says_why(tiny_model_dir, monkeypatch):
    from wander_gui import backend
    s = MoireState(model_dir=str(tiny_model_dir))
    s.build = True
    start = s.atoms.positions.copy()
    real = backend.calculator

    def failing(**kw):  # the real model, failing from its 4th evaluation on
        calc = real(**kw)
        calls = {"n": 0}
        original = calc.calculate

        def calculate(*a, **k):
            calls["n"] += 1
            if calls["n"] >= 4:
                raise RuntimeError("GPU fell off the bus")
            return original(*a, **k)
        calc.calculate = calculate
        return calc
    monkeypatch.setattr(backend, "calculator", failing)
    s.steps = 50
    s.relax = True
    s.wait(300)
    assert "GPU fell off the bus" in s.message and "step 2 is kept" in s.message, s.message
    assert len(s.relax_trace) == 3 and s.relax_atoms is None
    assert not np.allclose(s.atoms.positions, start)  # moved: the structure of step 2, not the start


def test_band_plan_large_cells_on_cpu_use_the_subspace_solver(monkeypatch):
    from wander_gui import backend
    from wander_gui.electronic import solvers
    monkeypatch.setattr(solvers, "gpu_available", lambda: False)
    assert backend.band_plan(154) == {"nbands": None, "solver": "auto", "fat_bands": True}
    big = solvers.DENSE_LIMIT + 1
    assert backend.band_plan(big) == {"nbands": 16, "solver": "subspace", "fat_bands": False}
    monkeypatch.setattr(solvers, "gpu_available", lambda: True)
    assert backend.band_plan(big) == {"nbands": 16, "solver": "torch", "fat_bands": True}
