"""The dashboard entry point (one Dashboard, hence one state, per browser session)."""
from __future__ import annotations

import holoviews as hv
import panel as pn

from wander_gui.gui.views import Dashboard

hv.extension("bokeh", logo=False)


def create_app() -> pn.viewable.Viewable:
    return Dashboard()
