import numpy as np
import pytest

from wander_gui.dft.run import wannier_windows
from wander_gui.errors import ConvergenceError


def bands(top_at_k0):
    """4 k-points, 8 bands: 2 below the manifold, a 4-state manifold (2 filled), 2 above."""
    e = np.tile(np.array([-20.0, -19.0, -3.0, -2.0, 0.5, 1.0, 9.0, 10.0]), (4, 1))
    e[0, 5] = top_at_k0  # the manifold's last state at one k-point
    return e


def test_outer_window_holds_every_manifold_state():
    frozen, outer = wannier_windows(bands(1.0), nocc=4, first=2, n_wann=4)
    assert outer[1] == pytest.approx(0.5 + 4.0)  # CBM + 4 eV when that suffices
    frozen, outer = wannier_windows(bands(6.0), nocc=4, first=2, n_wann=4)
    assert outer[1] == pytest.approx(6.05)  # extended to hold the 4th state at k0
    assert frozen[0] == outer[0] == pytest.approx(-3.1)
    with pytest.raises(ConvergenceError, match="too few bands"):
        wannier_windows(bands(9.99), nocc=4, first=2, n_wann=4)  # the window would pass the last band
