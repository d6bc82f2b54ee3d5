"""One module per ``wander`` subcommand (see :mod:`wander_gui.cli`)."""
