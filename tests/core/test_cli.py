import json
import subprocess
import sys

from wander_gui.core.io import read_structure


def wander(*args):
    return subprocess.run([sys.executable, "-m", "wander_gui.cli", *args], capture_output=True, text=True)


def test_build_writes_and_reports(tmp_path):
    out = tmp_path / "cell.extxyz"
    r = wander("build", "--material", "MoS2", "--stacking", "R", "--angle", "21.79", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "42 atoms (21 + 21 per layer)" in r.stdout
    assert "21.7868" in r.stdout
    a = read_structure(out)
    assert len(a) == 42


def test_build_with_strain_reports_residual(tmp_path):
    out = tmp_path / "s.extxyz"
    r = wander("build", "--angle", "13.17", "--strain", "2.0", "--strain-mode", "biaxial",
               "--max-atoms", "1500", "--max-residual-strain", "0.3", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "residual beyond request" in r.stdout
    assert len(read_structure(out)) <= 2000


def test_angles_lists_ladder_as_json():
    r = wander("angles", "--material", "MoS2", "--max-atoms", "400", "--json")
    rows = json.loads(r.stdout)
    assert {(round(x["theta_deg"], 2), x["n_atoms"]) for x in rows} >= {(21.79, 42), (13.17, 114), (9.43, 222)}
    assert all(x["n_atoms"] <= 400 for x in rows)


def test_bad_angle_gives_clear_error(tmp_path):
    r = wander("build", "--angle", "75", "-o", str(tmp_path / "x.extxyz"))
    assert r.returncode == 2
    assert "angle" in r.stderr and "(0.0, 60.0)" in r.stderr
    assert "Traceback" not in r.stderr
