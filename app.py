"""Entry point: `panel serve app.py`."""
from wander_gui.gui.app import create_app

create_app().servable(title="WANDER moiré lab")
