"""Architecture seams: science layers never import GUI libraries."""
import subprocess
import sys

import pytest

GUI = ("panel", "holoviews", "bokeh", "param")


@pytest.mark.parametrize("module", ["wander_gui.core.builder", "wander_gui.core.io", "wander_gui.dft.dataset",
                                    "wander_gui.cli"])
def test_science_does_not_import_gui(module):
    code = f"import sys, {module}; print(','.join(m for m in {GUI!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
