"""Bookkeeping of the convergence check (the GPAW runs themselves are exercised elsewhere)."""
import json
from types import SimpleNamespace

import pytest

from wander_gui.dft import convergence, run
from wander_gui.dft.dataset import load_chunks


def test_convergence_records_force_differences_and_resumes(tmp_path, monkeypatch):
    import shutil
    ds = tmp_path / "ds"
    (ds / "chunks").mkdir(parents=True)
    shutil.copy("pretrained/dataset/chunks/c0000-1x1-R.npz", ds / "chunks")
    ref = load_chunks(ds)[0]
    calls = []

    def fake_scf(atoms, settings, txt):
        calls.append(settings)
        shift = 0.010 if settings.ecut == 450.0 else 0.002  # eV/Å on one component
        f = ref["forces"].astype(float).copy()
        f[0, 2] += shift
        return SimpleNamespace(forces=f, energy=float(ref["energy"]) + 0.06, kmesh=(8, 8), seconds=1.0)
    monkeypatch.setattr(run, "scf", fake_scf)
    res = convergence.check_convergence(["c0000-1x1-R"], dataset=ds, work=tmp_path / "w")
    k = load_chunks(ds)[0]["meta"]["settings"]["k_density"]  # the variants change the chunk's own settings
    assert {c.ecut for c in calls} == {450.0, 350.0} and {c.k_density for c in calls} == {k, 2 * k}
    assert res["c0000-1x1-R:ecut450"]["force_max_diff_meV_per_A"] == pytest.approx(10.0, abs=1e-3)
    assert res["c0000-1x1-R:k2x"]["force_max_diff_meV_per_A"] == pytest.approx(2.0, abs=1e-3)
    assert res["c0000-1x1-R:k2x"]["energy_diff_meV_per_atom"] == pytest.approx(10.0)
    assert json.loads((ds / "convergence.json").read_text()) == res
    calls.clear()
    convergence.check_convergence(["c0000-1x1-R"], dataset=ds, work=tmp_path / "w")
    assert calls == []  # finished entries are skipped
    with pytest.raises(KeyError):
        convergence.check_convergence(["c9999-1x1-R"], dataset=ds, work=tmp_path / "w")
