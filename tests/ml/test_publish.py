"""Publishing a trained model: weights + manifest (sha256, metrics) + model card, then loading it."""
import json
import shutil

import pytest

from wander_gui.errors import ModelError
from wander_gui.ml import publish, registry


def test_publish_then_load_by_name(tiny_model_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run)
    pre = tmp_path / "pretrained"
    shutil.copytree("pretrained/dataset", pre / "dataset")
    if (registry.PRETRAINED / "validation").exists():
        shutil.copytree(registry.PRETRAINED / "validation", pre / "validation")
    entry = publish.publish(run, "mos2-test", pretrained_dir=pre, dataset_dir=pre / "dataset",
                            description="tiny test model")
    manifest = json.loads((pre / "manifest.json").read_text())
    assert manifest["models"][0]["name"] == "mos2-test"
    assert entry["files"]["ff"]["sha256"] == registry.sha256(pre / "mos2-test" / "ff.pt")
    assert entry["metrics"]["ff"]["train"]["n"] > 0 and "force_mae_meV_per_A" in entry["metrics"]["ff"]["train"]
    card = (pre / "README.md").read_text()
    assert "<!-- model:mos2-test -->" in card and "force MAE" in card
    # the training-data summary counts what the run recorded, checked here against the dataset
    # the tiny model was trained on (every chunk with forces; every current Wannier label)
    from wander_gui.dft.dataset import has_current_label
    from wander_gui.ml.data import load_samples
    shipped = load_samples(pre / "dataset")
    recorded = json.loads((run / "ff_metrics.json").read_text())["data"]
    n_ff = sum(len(recorded[p]) for p in ("train", "val", "test"))
    assert n_ff == sum(s.has_forces for s in shipped) == entry["training_data"]["n_configs"]
    assert entry["training_data"]["n_hamiltonian_configs"] == sum(has_current_label(s.chunk) for s in shipped)
    assert entry["trained_on"]["ff"]["test"] == recorded["test"] and "Trained on (counted from" in card
    att = entry["metrics"]["band_error_attribution"]  # held-out labelled configurations
    assert att and all(set(r) == {"predicted", "DFT on-site", "DFT intra", "DFT inter"} for r in att.values())
    assert "Which part of the predicted H" in card
    if (pre / "validation" / "tw21.79-R" / "result.npz").exists():
        v = entry["metrics"]["validation"]["tw21.79-R"]
        assert v["atoms"] == 42
        assert v["sources"]["forces"] == str(pre / "validation")
        assert "tw21.79-R" in card
        assert set(v["force_sites"]) == {f"{s} {c}" for s in ("Mo", "S inner", "S outer") for c in ("in-plane", "outward")}
        assert "Force errors on the twisted cells by site" in card
        import numpy as np
        if "relaxed_positions" in np.load(pre / "validation" / "tw21.79-R" / "result.npz").files:
            rel = entry["metrics"]["validation"]["tw21.79-R"]["relax"]
            assert rel["rmsd_dft_vs_rigid_A"] > 0 and rel["ml_converged"]
            assert "relaxed structure vs the DFT relaxation" in card
    # publishing again replaces the entry and the card section instead of duplicating them; a
    # dataset that changed after training (a chunk removed) does not change the recorded counts,
    # and a k-mesh rule names the level of theory
    from wander_gui.dft.dataset import dataset_info
    rule, counts = sorted(dataset_info(pre / "dataset")["by_k_density"].items())[-1]
    removed = next(p for p in sorted((pre / "dataset" / "chunks").glob("c*.npz")))
    removed.unlink()
    # (heads trained on another folder, --h-data: that folder's labels are counted and named)
    again = publish.publish(run, "mos2-test", pretrained_dir=pre, dataset_dir=pre / "dataset", k_density=float(rule),
                            validation_dir=pre / "validation", h_dataset_dir=pre / "dataset")
    assert again["training_data"] == entry["training_data"] and f"ceil({rule} A / L)" in again["level_of_theory"]
    assert dataset_info(pre / "dataset")["n_configs"] == n_ff - 1
    assert again["hamiltonian_data"]["n_hamiltonian_configs"] == dataset_info(pre / "dataset")["n_hamiltonian_configs"]
    assert f"Wannier-labelled configurations of `{pre / 'dataset'}`" in (pre / "README.md").read_text()
    if (pre / "validation" / "tw21.79-R" / "result.npz").exists():  # several folders: each array's source kept
        import numpy as np
        forces_only = tmp_path / "forces-only"
        (forces_only / "tw21.79-R").mkdir(parents=True)
        with np.load(pre / "validation" / "tw21.79-R" / "result.npz") as z:
            np.savez(forces_only / "tw21.79-R" / "result.npz",
                     **{k: z[k] for k in ("numbers", "positions", "cell", "layer", "energy", "forces", "meta")})
        both = publish.publish(run, "mos2-test", pretrained_dir=pre, dataset_dir=pre / "dataset",
                               validation_dir=[forces_only, pre / "validation"])
        src = both["metrics"]["validation"]["tw21.79-R"]["sources"]
        assert src["forces"] == str(forces_only)
        assert src.get("hamiltonian") in (None, str(pre / "validation"))
        assert all(v["sources"]["forces"] == str(pre / "validation")
                   for n, v in both["metrics"]["validation"].items() if n != "tw21.79-R")
        assert "DFT results from several folders" in (pre / "README.md").read_text()
        shutil.rmtree(forces_only)
    assert len(json.loads((pre / "manifest.json").read_text())["models"]) == 1
    # heads trained on a published force field (no ff_metrics.json in the run folder): the force
    # field's metrics are those published with the same ff.pt
    heads_only = tmp_path / "heads-only"
    shutil.copytree(run, heads_only)
    (heads_only / "ff_metrics.json").unlink()
    h = publish.publish(heads_only, "mos2-test-heads", pretrained_dir=pre, dataset_dir=pre / "dataset")
    # ... heads on a published force field: its recorded data carry over
    assert h["training_data"]["n_configs"] == n_ff and h["trained_on"]["ff"] == entry["trained_on"]["ff"]
    assert h["training_data"]["counted_from"].endswith("as published with mos2-test")
    # ... and one published without recorded splits: the counts it stated
    manifest = json.loads((pre / "manifest.json").read_text())
    for m in manifest["models"]:
        m.pop("trained_on", None)
        m["training_data"] = {"n_configs": 7, "n_hamiltonian_configs": 3, "n_atoms_total": 70}
    (pre / "manifest.json").write_text(json.dumps(manifest))
    h = publish.publish(heads_only, "mos2-test-heads", pretrained_dir=pre, dataset_dir=pre / "dataset")
    assert (h["training_data"]["n_configs"], h["training_data"]["n_atoms_total"]) == (7, 70)
    assert h["training_data"]["n_hamiltonian_configs"] == entry["training_data"]["n_hamiltonian_configs"]
    assert "as published with mos2-test" in h["training_data"]["counted_from"]
    assert h["metrics"]["ff"] == json.loads((pre / "manifest.json").read_text())["models"][1]["metrics"]["ff"]
    assert h["config"]["ff"] == entry["config"]["ff"] and h["seed"] == entry["seed"]
    manifest = json.loads((pre / "manifest.json").read_text())
    manifest["models"] = [m for m in manifest["models"] if m["name"] != "mos2-test-heads"]
    (pre / "manifest.json").write_text(json.dumps(manifest))
    assert (pre / "README.md").read_text().count("<!-- model:mos2-test -->") == 1
    monkeypatch.setattr(registry, "PRETRAINED", pre)
    m = registry.load_model("mos2-test")
    assert m.name == "mos2-test" and m.hm is not None
    (pre / "mos2-test" / "h.pt").write_bytes(b"corrupt")
    with pytest.raises(ModelError, match="corrupt"):
        registry.load_model("mos2-test")


def test_relaxation_errors_known_cases(tiny_model_dir):
    """Against its own relaxed structure (uniformly shifted) the model's RMSD is zero; against
    the rigid start it equals the displacement of its own relaxation."""
    import numpy as np

    from wander_gui.core.builder import build_twisted
    from wander_gui.core.relax import relax
    from wander_gui.ml.calculator import WanderCalculator
    m = registry.load_model(directory=tiny_model_dir)
    a = build_twisted(mn=(1, 2))
    own = relax(a.copy(), WanderCalculator(m.ff), fmax=0.01, steps=2000).atoms
    x = publish.relaxation_errors(m, a, own.positions + np.array([0.3, -0.2, 0.1]))
    assert x["rmsd_ml_vs_dft_A"] < 1e-9 and x["max_dev_ml_vs_dft_A"] < 1e-9
    assert x["separation_ml_A"] == pytest.approx(x["separation_dft_A"], abs=1e-9)
    assert x["corrugation_ml_A"] == pytest.approx(x["corrugation_dft_A"], abs=1e-9)
    rigid = publish.relaxation_errors(m, a, a.positions)
    assert rigid["rmsd_dft_vs_rigid_A"] == 0.0
    assert rigid["rmsd_ml_vs_dft_A"] == pytest.approx(x["rmsd_dft_vs_rigid_A"], rel=1e-9)
    assert rigid["rmsd_ml_vs_dft_A"] > 0  # the model did move the atoms


def test_remeasure_updates_only_the_validation_metrics(tiny_model_dir, tmp_path, monkeypatch):
    """DFT results completed after publication (here: the Wannier H and relaxation of tw21.79-R,
    absent at publication) are measured into the published entry; weights, training data and
    held-out metrics stay as published."""
    import numpy as np

    from wander_gui.errors import DataError
    src = registry.PRETRAINED / "validation" / "tw21.79-R" / "result.npz"  # committed DFT result
    run, pre, early = tmp_path / "run", tmp_path / "pretrained", tmp_path / "early"
    shutil.copytree(tiny_model_dir, run)
    shutil.copytree("pretrained/dataset", pre / "dataset")
    (early / "tw21.79-R").mkdir(parents=True)
    with np.load(src) as z:
        np.savez(early / "tw21.79-R" / "result.npz",
                 **{k: z[k] for k in ("numbers", "positions", "cell", "layer", "energy", "forces", "meta")})
    first = publish.publish(run, "mos2-test", pretrained_dir=pre, dataset_dir=pre / "dataset", validation_dir=early)
    assert set(first["metrics"]["validation"]) == {"tw21.79-R"} and "relax" not in first["metrics"]["validation"]["tw21.79-R"]
    monkeypatch.setattr(registry, "PRETRAINED", pre)
    entry = publish.remeasure("mos2-test", pretrained_dir=pre, validation_dir=src.parent.parent)
    v = entry["metrics"]["validation"]["tw21.79-R"]
    assert "h_onsite" in v and v["force_mae_meV_per_A"] == pytest.approx(
        first["metrics"]["validation"]["tw21.79-R"]["force_mae_meV_per_A"])
    if "relaxed_positions" in np.load(src).files:
        assert v["relax"]["ml_converged"]
    stored = json.loads((pre / "manifest.json").read_text())["models"][0]
    assert stored["validation_measured"] == entry["validation_measured"]
    for key in ("files", "training_data", "created"):
        assert stored[key] == first[key]
    assert stored["metrics"]["ff"] == first["metrics"]["ff"]
    card = (pre / "README.md").read_text()
    assert "measured again on" in card and card.count("<!-- model:mos2-test -->") == 1
    with pytest.raises(DataError, match="published: mos2-test"):
        publish.remeasure("mos2-nope", pretrained_dir=pre, validation_dir=early)
