"""Panel dashboard: per-session state (param) + thin views. Never imports torch."""
