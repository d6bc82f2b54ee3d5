"""The one facade the GUI and CLI call. Returns plain dataclasses, ase.Atoms and numpy.

The GUI never imports torch or GPAW: everything heavy goes through here and is loaded
lazily the first time it is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wander_gui.core.builder import build_bilayer, build_twisted
from wander_gui.core.coincidence import search_cells
from wander_gui.core.materials import MATERIALS
from wander_gui.core.moire import nearest_cells, snap_angle
from wander_gui.core.relax import displacement_map, relax
from wander_gui.errors import InputError, ModelError, WanderError

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


@dataclass(frozen=True)
class ModelStatus:
    available: bool
    message: str


def model_status(material: str = "MoS2") -> ModelStatus:  # noqa: D401
    """Whether a pretrained model for ``material`` is installed (the app shows this)."""
    manifest = PRETRAINED_DIR / "manifest.json"
    if not manifest.exists():
        return ModelStatus(False, "No trained model yet: the MoS2 force field and Hamiltonian model are "
                                  "being trained on the project's DFT data. Relaxation and bands are disabled.")
    import json
    models = json.loads(manifest.read_text()).get("models", [])
    if not any(m.get("material") == material for m in models):
        return ModelStatus(False, f"No trained model for {material} yet.")
    return ModelStatus(True, "pretrained model available")


_MODELS: dict = {}


def get_model(name: str | None = None, directory=None):
    """Load (once per process, then shared read-only) a model by name or directory."""
    key = (name, str(directory) if directory else None)
    if key not in _MODELS:
        from wander_gui.ml.registry import load_model
        _MODELS[key] = load_model(name, directory=directory)
    return _MODELS[key]


def calculator(*, model: str | None = None, model_dir=None):
    """ASE calculator of the force field."""
    from wander_gui.ml.calculator import WanderCalculator
    return WanderCalculator(get_model(model, model_dir).ff)


def predict_tb(atoms, *, model: str | None = None, model_dir=None):
    """Predicted Wannier Hamiltonian of ``atoms`` as a TBHamiltonian (needs a trained model)."""
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.errors import ModelError
    from wander_gui.ml.predict import predict_blocks
    m = get_model(model, model_dir)
    if m.hm is None:
        raise ModelError(f"model {m.name!r} has no Hamiltonian heads")
    p = predict_blocks(m.ff, m.hm, atoms)
    return TBHamiltonian.from_pair_blocks(atoms, p.ij, p.shift, p.blocks, p.offsets, p.counts)


def materials() -> list[str]:
    return list(MATERIALS)


__all__ = ["build_twisted", "build_bilayer", "search_cells", "nearest_cells", "snap_angle", "relax",
           "displacement_map", "model_status", "materials", "ModelStatus", "calculator", "predict_tb",
           "InputError", "ModelError", "WanderError"]
