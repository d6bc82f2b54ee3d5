"""Responsiveness of the app on this machine (issue: the app).

Goals (2-core machine): `panel serve app.py` answers its first page in <= 10 s; building a
<= 2,000-atom cell (state + structure plots rendered to Bokeh models) <= 1 s; bands of the
42-atom 21.79° cell <= 2 s once the model is loaded (the first call, which loads the model,
is reported too). Prints time/goal ratios and appends them to bench/RESULTS.md.

    python bench/bench_app.py [--port 5077]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from _report import report  # noqa: E402


def serve_time(port: int, timeout: float = 120.0) -> float:
    """Seconds from `panel serve app.py` to the first complete page."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "app.py", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/app", timeout=30) as r:
                    if r.status == 200 and b"</html>" in r.read():
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the app did not answer")
    finally:
        proc.terminate()
        proc.wait(10)


def render(viewable) -> None:
    """Build the Bokeh models of a Panel object (what a browser session gets sent)."""
    viewable.get_root()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=5077)
    args = ap.parse_args()
    rows = [("panel serve app.py: first page", serve_time(args.port), 10.0)]

    import holoviews as hv
    import panel as pn
    hv.extension("bokeh", logo=False)
    from wander_gui.gui.state import MoireState
    from wander_gui.gui.views import band_plots, structure_plots
    s = MoireState()
    for angle in (21.79, 3.89):  # 42 and 1302 atoms; max_atoms 2000
        s.angle = angle
        t0 = time.perf_counter()
        s.build = True
        render(pn.panel(structure_plots(s.atoms)))
        rows.append((f"build + structure plots, {len(s.atoms)} atoms ({s.snapped['theta_deg']:.2f}°)",
                     time.perf_counter() - t0, 1.0))
    s.angle = 21.79
    s.build = True
    for label in ("bands of the 42-atom cell, first call (loads the model)", "bands of the 42-atom cell"):
        t0 = time.perf_counter()
        s.compute_bands = True
        s.wait()
        render(pn.panel(band_plots(s.bands, s.band_colour, s.ref_bands, s.band_error)))
        rows.append((label, time.perf_counter() - t0, None if "first" in label else 2.0))
        assert s.bands is not None, s.message
    report("bench_app.py", ["task", "time (s)", "goal (s)", "time/goal"],
           [[name, f"{t:.2f}", f"{g}" if g else "—", f"{t / g:.2f}" if g else "—"] for name, t, g in rows])


if __name__ == "__main__":
    main()
