import subprocess
import sys

from wander_gui.gui.state import MoireState


def test_snap_and_build():
    s = MoireState()
    s.angle = 9.4
    assert s.snapped["n_atoms"] == 222
    s.build = True
    assert len(s.atoms) == 222
    assert "222 atoms" in s.message


def test_strained_cell_from_coincidence_search():
    s = MoireState(angle=13.2, strain=2.0, max_residual_strain=0.3, max_atoms=1500)
    assert s.snapped["kind"] == "coincidence" and s.snapped["residual_percent"] <= 0.3
    s.build = True
    assert len(s.atoms) == s.snapped["n_atoms"]


def test_sessions_are_independent():
    a, b = MoireState(), MoireState()
    a.angle = 13.2
    a.build = True
    assert b.atoms is None and b.snapped["n_atoms"] == 42


def test_relax_without_model_says_so(tmp_path, monkeypatch):
    from wander_gui import backend
    monkeypatch.setattr(backend, "PRETRAINED_DIR", tmp_path)  # no manifest: no model installed
    s = MoireState()
    s.build = True
    s.relax = True
    assert "No trained model" in s.message and s.running == ""


def test_budget_error_is_a_message_not_a_crash():
    s = MoireState(angle=5.0)
    s.max_atoms = 100
    assert s.snapped == {}
    assert "max_atoms" in s.message


def test_dashboard_renders_without_torch():
    # rendering, building and a refused relaxation (no model installed) must not import torch
    code = ("import sys, pathlib; from wander_gui import backend; backend.PRETRAINED_DIR = pathlib.Path('/nonexistent');"
            "from wander_gui.gui.app import create_app; from wander_gui.gui.views import Dashboard;"
            "d = Dashboard(); d.state.build = True; d.__panel__(); d.state.relax = True;"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "False"


def test_notebook_3d_view_loads_the_cell_with_one_colour_per_layer():
    import ast

    import numpy as np
    from wander_gui.core.builder import build_twisted
    from wander_gui.gui.views import LAYER_COLOURS, structure_3d
    atoms = build_twisted(mn=(1, 2))
    msgs = structure_3d(atoms)._ngl_msg_archive  # what the widget sends to the browser
    pdb = msgs[0]["args"][0]["data"]
    assert sum(line.startswith(("ATOM", "HETATM")) for line in pdb.splitlines()) == len(atoms)
    reps = [m["kwargs"] for m in msgs if m.get("methodName") == "addRepresentation" and "color" in m["kwargs"]]
    assert [r["color"] for r in reps] == list(LAYER_COLOURS)
    for lay, r in enumerate(reps):
        idx = sorted(ast.literal_eval("[" + r["sele"].lstrip("@") + "]"))
        assert idx == list(np.flatnonzero(atoms.arrays["layer"] == lay))


def test_job_error_reaches_the_callback_when_the_ui_runs_it_later():
    """In the server, UI callbacks run on a later tick, after the worker's except block ended."""
    from wander_gui.gui.jobs import JobRunner
    pending, seen = [], []
    jobs = JobRunner()
    jobs.ui = pending.append  # defer every UI callback, as a Bokeh document does
    jobs.start(lambda cancel: 1 / 0, on_error=seen.append, wait=True)
    for cb in pending:
        cb()
    assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)


def test_banner_quotes_the_measured_band_errors_of_the_model(tmp_path, monkeypatch):
    import json

    from wander_gui import backend
    from wander_gui.gui.views import model_banner
    entry = {"name": "m", "material": "MoS2", "training_data": {"n_configs": 3}, "metrics": {
        "validation": {"a": {"bands": {"mae_meV": 18.6}}, "b": {"bands": {"mae_meV": 24.4}},
                       "c": {"force_mae_meV_per_A": 13.0}},  # no Hamiltonian label: not quoted
        "h": {"bands": {"test": {"x": {"mae_meV": 80.0}, "y": {"mae_meV": 100.0}, "mean": {"mae_meV": 90.0}}}}}}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [entry]}))
    monkeypatch.setattr(backend, "PRETRAINED_DIR", tmp_path)
    acc = backend.band_accuracy(backend.model_info("MoS2"))
    assert acc.twisted == {"a": 18.6, "b": 24.4} and acc.untwisted_test == 90.0 and acc.n_untwisted_test == 2
    text = model_banner("MoS2").object
    assert "19–24 meV on the unstrained twisted" in text and "90 meV on strained" in text
    assert backend.band_accuracy({"name": "m", "metrics": {}}) is None


def test_model_choice_lists_the_installed_models_and_clears_results_of_the_previous_one(tmp_path, monkeypatch):
    """The session offers every published model of its material (the default first), passes the
    chosen one to every model-dependent job, names it in the banner and never shows results of
    two models at once."""
    import json

    from wander_gui import backend
    from wander_gui.gui.views import model_banner
    models = [{"name": n, "material": "MoS2", "training_data": {"n_configs": 3}, "metrics": {}} for n in ("m1", "m2")]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": models}))
    monkeypatch.setattr(backend, "PRETRAINED_DIR", tmp_path)
    s = MoireState()
    assert s.param.model.objects == ["m1", "m2"] and s.model == "m1" and s._model_kwargs() == {"model": "m1"}
    assert "not the default" not in model_banner("MoS2", s.model).object
    s.bands, s.band_error, s.ladder = object(), {"mae_meV": 1.0}, [{"n_atoms": 42}]
    s.model = "m2"
    assert s._model_kwargs() == {"model": "m2"} and s.bands is None and s.band_error == {} and s.ladder == []
    assert "m2 selected" in s.message
    assert "**m2**" in model_banner("MoS2", "m2").object and "not the default, m1" in model_banner("MoS2", "m2").object
    s.model_dir = str(tmp_path / "run")  # a directory overrides the choice
    assert s._model_kwargs() == {"model_dir": str(tmp_path / "run")}
    assert "not a published model" in model_banner("MoS2", "m2", s.model_dir).object
    other = next(m for m in backend.materials() if m != "MoS2")
    s.material = other
    assert s.model is None and not [o for o in s.param.model.objects if o is not None]
