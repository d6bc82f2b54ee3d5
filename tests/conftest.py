from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A few-epoch force field + Hamiltonian model trained on the shipped DFT chunks (for
    exercising model-dependent code paths, not for accuracy)."""
    from wander_gui.ml.data import load_samples
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    from wander_gui.ml.train_h import HTrainConfig, train_hamiltonian
    import shutil
    out = tmp_path_factory.mktemp("tiny_model")
    samples = load_samples("pretrained/dataset")
    ff, _ = train_forcefield(samples, FFTrainConfig(epochs=2), out_dir=out, progress=False)
    shutil.copy(out / "ff_best.pt", out / "ff.pt")
    hcfg = HTrainConfig(epochs=2)
    hcfg.model["r_max"] = 8.0
    train_hamiltonian(samples, ff, hcfg, out_dir=out, progress=False)
    shutil.copy(out / "h_best.pt", out / "h.pt")
    return out
