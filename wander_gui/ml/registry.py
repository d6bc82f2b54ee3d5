"""Pretrained models: ``pretrained/manifest.json`` + weights, verified by sha256.

Checkpoints are ``{"config", "state_dict"}`` loaded with ``torch.load(weights_only=True)``.
A model directory (pretrained/ or a training output) holds ``ff.pt`` and ``h.pt``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from wander_gui.errors import ModelError
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel, HeadsEnsemble, heads_from_checkpoint

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class LoadedModel:
    name: str
    ff: ForceField
    hm: HamiltonianModel | HeadsEnsemble | None
    meta: dict


def _load_checkpoint(path: Path, expected_sha: str | None):
    if not path.exists():
        raise ModelError(f"model file {str(path)!r} is missing")
    if expected_sha is not None and sha256(path) != expected_sha:
        raise ModelError(f"model file {str(path)!r} is corrupt (sha256 does not match the manifest)")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ModelError(f"cannot read model file {str(path)!r}: {exc}") from exc


def load_model(name: str | None = None, *, directory=None) -> LoadedModel:
    """Load a pretrained model by name (default: the first in the manifest) or a directory."""
    if directory is not None:
        d = Path(directory)
        ck = _load_checkpoint(d / "ff.pt", None)
        ff = ForceField(**ck["config"]).double()
        ff.load_state_dict(ck["state_dict"])
        hm = None
        if (d / "h.pt").exists():
            hm = heads_from_checkpoint(_load_checkpoint(d / "h.pt", None))
        return LoadedModel(d.name, ff.eval(), hm, {})
    manifest = PRETRAINED / "manifest.json"
    if not manifest.exists():
        raise ModelError("no trained model yet: pretrained/manifest.json does not exist")
    models = json.loads(manifest.read_text()).get("models", [])
    if not models:
        raise ModelError("no trained model yet: the manifest lists no models")
    entry = next((m for m in models if name in (None, m["name"])), None)
    if entry is None:
        raise ModelError(f"model {name!r} is not in the manifest; available: {', '.join(m['name'] for m in models)}")
    files = entry["files"]
    ck = _load_checkpoint(PRETRAINED / files["ff"]["path"], files["ff"]["sha256"])
    ff = ForceField(**ck["config"]).double()
    ff.load_state_dict(ck["state_dict"])
    hm = None
    if "h" in files:
        hm = heads_from_checkpoint(_load_checkpoint(PRETRAINED / files["h"]["path"], files["h"]["sha256"]))
    return LoadedModel(entry["name"], ff.eval(), hm, entry)
