"""Heads ensembles: the mean of independently trained heads, their spread as the uncertainty."""
import numpy as np
import pytest
import torch

from wander_gui.core.builder import build_aligned
from wander_gui.dft.dataset import has_current_label
from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel, HeadsEnsemble, heads_checkpoint
from wander_gui.ml.predict import predict_blocks

F64 = dict(dtype=torch.float64)


def heads(seed, **kw):
    torch.manual_seed(seed)
    hm = HamiltonianModel(r_max=8.0, block_form="frame", **kw).double()
    with torch.no_grad():  # members differ in their statistics too, as trained ones do
        hm.onsite_scale.uniform_(0.1, 2.0)
        hm.hop_scale.uniform_(0.01, 2.0)
        hm.z_mean.normal_(0, 0.5)
    return hm


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    ff = ForceField().double()
    a = build_aligned("MoS2", "H", supercell=2)
    a.positions += np.random.default_rng(1).normal(0, 0.03, a.positions.shape)
    return ff, [heads(1), heads(2), heads(3)], a


def test_ensemble_predicts_the_members_mean_with_their_spread(setup):
    ff, members, a = setup
    single = [predict_blocks(ff, m, a, **F64) for m in members]
    ens = predict_blocks(ff, HeadsEnsemble(members), a, **F64)
    stack = np.stack([p.blocks for p in single])
    assert np.array_equal(ens.ij, single[0].ij) and np.array_equal(ens.shift, single[0].shift)
    assert np.allclose(ens.blocks, stack.mean(0), atol=1e-12)
    assert np.allclose(ens.spread, stack.std(0), atol=1e-12)
    assert ens.spread.max() > 1e-3  # random members disagree: the spread shows it
    assert single[0].spread is None
    same = predict_blocks(ff, HeadsEnsemble([members[0], members[0]]), a, **F64)
    assert np.allclose(same.blocks, single[0].blocks, atol=1e-12) and same.spread.max() < 1e-12


def test_ensemble_checkpoint_round_trip_and_loading(setup, tmp_path):
    from wander_gui.ml.registry import load_model
    ff, members, a = setup
    ens = HeadsEnsemble(members[:2])
    torch.save({"config": ff.config, "state_dict": ff.state_dict()}, tmp_path / "ff.pt")
    torch.save(heads_checkpoint(ens), tmp_path / "h.pt")
    loaded = load_model(directory=tmp_path)
    assert isinstance(loaded.hm, HeadsEnsemble) and len(loaded.hm.members) == 2
    assert np.allclose(predict_blocks(loaded.ff, loaded.hm, a, **F64).blocks,
                       predict_blocks(ff, ens, a, **F64).blocks, atol=1e-12)
    with pytest.raises(ValueError, match="architecture"):
        HeadsEnsemble([members[0], heads(4, local_vector=True)])
    with pytest.raises(ValueError, match="two"):
        HeadsEnsemble(members[:1])


def test_parity_of_an_ensemble_compares_the_members_mean(setup):
    from wander_gui.ml.parity import predicted_label_pairs
    ff, members, _ = setup
    labelled = [s for s in load_samples("pretrained/dataset") if has_current_label(s.chunk)][:2]
    per = [predicted_label_pairs(ff, m, labelled) for m in members[:2]]
    ens = predicted_label_pairs(ff, HeadsEnsemble(members[:2]), labelled)
    for k in ("onsite", "intra", "inter"):
        assert np.allclose(ens[k][0], (per[0][k][0] + per[1][k][0]) / 2)
        assert np.array_equal(ens[k][1], per[0][k][1])


def test_runs_of_other_seeds_assemble_into_an_ensemble_run(tmp_path):
    import json
    import shutil

    from wander_gui.errors import DataError
    from wander_gui.ml.publish import assemble_heads_ensemble
    from wander_gui.ml.registry import load_model
    from wander_gui.ml.train_h import HTrainConfig, train_hamiltonian
    samples = [s for s in load_samples("pretrained/dataset") if has_current_label(s.chunk)][:8]
    torch.manual_seed(0)
    ff = ForceField().double()
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"s{seed}"
        cfg = HTrainConfig(epochs=1, seed=seed)
        cfg.model["r_max"] = 6.0
        train_hamiltonian(samples, ff, cfg, out_dir=run, progress=False)
        shutil.copy(run / "h_best.pt", run / "h.pt")
        torch.save({"config": ff.config, "state_dict": ff.state_dict()}, run / "ff.pt")
        runs.append(run)
    m = assemble_heads_ensemble(runs, tmp_path / "ens")
    model = load_model(directory=tmp_path / "ens")
    assert isinstance(model.hm, HeadsEnsemble) and len(model.hm.members) == 2
    splits = [json.loads((r / "h_metrics.json").read_text())["data"] for r in runs]
    assert set(m["data"]["train"]) == set(splits[0]["train"]) | set(splits[1]["train"])
    assert splits[0]["train"] != splits[1]["train"]  # other seeds, other splits
    held = set(m["data"]["val"]) | set(m["data"]["test"])
    assert not held & set(m["data"]["train"])
    assert held | set(m["data"]["train"]) == {s.name for s in samples}
    assert [x["seed"] for x in m["members"]] == [0, 1] and m["config"]["seed"] == [0, 1]
    other = tmp_path / "other"
    shutil.copytree(runs[1], other)
    torch.manual_seed(5)
    torch.save({"config": ff.config, "state_dict": ForceField().double().state_dict()}, other / "ff.pt")
    with pytest.raises(DataError, match="different force fields"):
        assemble_heads_ensemble([runs[0], other], tmp_path / "bad")


def test_model_card_names_the_members_and_their_own_held_out_errors():
    import copy
    import json

    from wander_gui.ml.publish import model_card_section
    from wander_gui.ml.registry import PRETRAINED
    entry = copy.deepcopy(json.loads((PRETRAINED / "manifest.json").read_text())["models"][0])
    test = entry["metrics"]["h"]["test"]
    bands = entry["metrics"]["h"]["bands"]
    entry["metrics"]["h"]["members"] = [{"run": f"runs/s{k}", "seed": k, "best_epoch": 10 + k, "test": test,
                                         "bands": {"test": bands["test"]}} for k in (2, 3)]
    for part in ("train", "val", "test", "bands"):  # an ensemble has no split of its own
        entry["metrics"]["h"].pop(part, None)
    card = model_card_section(entry)
    assert "mean of 2 independently trained heads" in card
    row = next(line for line in card.splitlines() if line.startswith("| runs/s3, 3 |"))
    assert f"{test['all']['mae_meV']:.2f}" in row and f"{bands['test']['mean']['mae_meV']:.1f}" in row
    assert "| Hamiltonian (elements with" not in card  # no untwisted split of its own: no empty table


def test_hamiltonian_command_writes_the_ensemble_spread(setup, tmp_path):
    import subprocess
    import sys

    from wander_gui.core.io import read_hr, write_structure
    ff, members, a = setup
    torch.save({"config": ff.config, "state_dict": ff.state_dict()}, tmp_path / "ff.pt")
    torch.save(heads_checkpoint(HeadsEnsemble(members)), tmp_path / "h.pt")
    write_structure(a, tmp_path / "c.extxyz")

    def wander(*args):
        return subprocess.run([sys.executable, "-m", "wander_gui.cli", "hamiltonian", str(tmp_path / "c.extxyz"),
                               "--model-dir", str(tmp_path), *args], capture_output=True, text=True)
    r = wander("-o", str(tmp_path / "p_hr.dat"), "--spread", str(tmp_path / "s_hr.dat"))
    assert r.returncode == 0, r.stderr
    spread = read_hr(tmp_path / "s_hr.dat").H_Rmn
    p = predict_blocks(ff, HeadsEnsemble(members), a)
    assert np.all(spread.real >= 0) and np.isclose(np.abs(spread).max(), p.spread.max(), rtol=1e-4)
    torch.save(heads_checkpoint(members[0]), tmp_path / "h.pt")  # one set of heads: no spread to write
    r = wander("-o", str(tmp_path / "q_hr.dat"), "--spread", str(tmp_path / "t_hr.dat"))
    assert r.returncode != 0 and "heads ensemble" in r.stderr and not (tmp_path / "t_hr.dat").exists()
