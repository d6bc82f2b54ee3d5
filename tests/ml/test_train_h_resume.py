import torch

from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.train_h import HTrainConfig, train_hamiltonian


def small_cfg(epochs):
    cfg = HTrainConfig(epochs=epochs, patience=100)
    cfg.model["r_max"] = 6.0
    return cfg


def test_resume_continues_from_last_epoch_and_fine_tuning_starts_from_weights(tmp_path):
    samples = load_samples("pretrained/dataset")
    torch.manual_seed(0)
    ff = ForceField().double()
    train_hamiltonian(samples, ff, small_cfg(2), out_dir=tmp_path, progress=False)
    ck = torch.load(tmp_path / "h_last.pt", weights_only=True)
    assert ck["epoch"] == 1
    train_hamiltonian(samples, ff, small_cfg(4), out_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "h_last.pt", weights_only=True)["epoch"] == 3  # two more, not four
    init = torch.load(tmp_path / "h_best.pt", weights_only=True)["state_dict"]
    cfg = small_cfg(1)
    cfg.lr = 0.0  # Adam with zero learning rate: the weights must stay those of the initial model
    hm, _ = train_hamiltonian(samples, ff, cfg, out_dir=tmp_path / "ft", progress=False, init_state=init)
    for k, v in hm.state_dict().items():
        assert torch.allclose(v, init[k], rtol=0, atol=1e-12), k  # (the weight average rounds)


def test_force_field_training_resumes_and_skips_other_configurations(tmp_path):
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    samples = load_samples("pretrained/dataset")[:6]
    train_forcefield(samples, FFTrainConfig(epochs=2), out_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "ff_last.pt", weights_only=True)["epoch"] == 1
    train_forcefield(samples, FFTrainConfig(epochs=3), out_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "ff_last.pt", weights_only=True)["epoch"] == 2  # one more, not three
    other = FFTrainConfig(epochs=1)
    other.model["m1"] = 8  # another architecture: its checkpoint must not be loaded into this one
    train_forcefield(samples, other, out_dir=tmp_path, progress=False)
    ck = torch.load(tmp_path / "ff_last.pt", weights_only=True)
    assert ck["epoch"] == 0 and ck["config"]["m1"] == 8


def _count_structures_passed(monkeypatch) -> list:
    """A list that collects how many structures each force-field training batch holds."""
    import wander_gui.ml.train_ff as tf
    seen = []
    real = tf.batch_graphs
    monkeypatch.setattr(tf, "batch_graphs", lambda atoms, *a, **k: seen.append(len(atoms)) or real(atoms, *a, **k))
    return seen


def test_fine_tuning_cells_always_train_and_repeat(tmp_path, monkeypatch):
    """Fine-tuning cells join the training split whatever their hash says, and count
    ``repeat_always`` times per epoch."""
    from wander_gui.ml.data import split
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    tune = load_samples("pretrained/finetune")
    parts = split([s.name for s in tune])
    assert any(p != "train" for p in parts.values())  # else this test would show nothing
    samples = load_samples("pretrained/dataset")[:4] + tune
    seen = _count_structures_passed(monkeypatch)
    structures = {}
    for repeat in (1, 3):
        seen.clear()
        _, m = train_forcefield(samples, FFTrainConfig(epochs=1), out_dir=tmp_path / str(repeat), progress=False,
                                always_train={s.name for s in tune}, repeat_always=repeat)
        structures[repeat] = sum(seen)
    n_train_plain = sum(split([s.name for s in samples])[s.name] == "train" for s in samples)
    assert m["train"]["n"] == n_train_plain + sum(p != "train" for p in parts.values())
    # one epoch passes each fine-tuning cell 3 times instead of once; evaluation is unchanged
    assert structures[3] - structures[1] == 2 * len(tune)


def test_layer_dipole_heads_learn_the_dft_vacuum_steps(tmp_path):
    """With ``layer_dipole`` the heads also fit the DFT step between the two vacuum levels of
    every configuration (energies-and-forces ones included): a few epochs on real data lower
    its training error, and a model without the term starts the dipole head from scratch when
    fine-tuned with it."""
    from wander_gui.ml.hamiltonian import HamiltonianModel
    from wander_gui.ml.train_h import predicted_step, step_errors, step_example
    samples = load_samples("pretrained/dataset")[:40]
    assert sum("vacuum_step" in s.chunk for s in samples) == 40
    torch.manual_seed(0)
    ff = ForceField().double()
    plain, _ = train_hamiltonian(samples, ff, small_cfg(1), out_dir=tmp_path / "plain", progress=False)
    cfg = small_cfg(6)
    cfg.model["layer_dipole"] = True
    cfg.lr = 3e-3
    cfg.step_batch = 2  # few labelled cells here: the epochs get extra step-only optimiser steps
    hm, m = train_hamiltonian(samples, ff, cfg, out_dir=tmp_path / "dipole", progress=False,
                              init_state=plain.state_dict())
    assert set(m["vacuum_step"]) == {"train", "val", "test"}
    fresh = HamiltonianModel(**hm.config).double()
    fresh.load_state_dict(hm.state_dict())
    with torch.no_grad():
        for net in fresh.dipole:  # the untrained dipole head: zero output
            net[-1].weight.zero_()
            net[-1].bias.zero_()
    names = set(_train_names(samples))
    train = [step_example(s, ff) for s in samples if s.name in names]
    assert step_errors(hm, train)["mae_meV"] < 0.8 * step_errors(fresh, train)["mae_meV"]
    assert float(predicted_step(fresh, train[0])) == 0.0


def _train_names(samples):
    from wander_gui.ml.data import split
    parts = split([s.name for s in samples])
    return [n for n, p in parts.items() if p == "train"]


def test_repeat_plans_count_a_plans_training_configurations_more_often(tmp_path, monkeypatch):
    """FFTrainConfig.repeat_plans: each training-split configuration of the named sampling plan
    is passed W times per epoch; held-out ones stay held out; unknown plans are refused."""
    import pytest

    from wander_gui.dft.sampling import plan_of
    from wander_gui.errors import InputError
    from wander_gui.ml.data import split
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    assert (plan_of("e0012-1x1-R"), plan_of("c0003-2x2-H"), plan_of("t001-tw12-H"), plan_of("mos2-import")) == \
        ("equilibrium", "bilayers", "finetune", None)
    samples = load_samples("pretrained/dataset")
    eq = [s for s in samples if plan_of(s.name) == "equilibrium"][:6]
    main = [s for s in samples if plan_of(s.name) == "bilayers"][:4]
    parts = split([s.name for s in eq + main])
    n_eq_train = sum(parts[s.name] == "train" for s in eq)
    assert 0 < n_eq_train < len(eq)  # else the test would not tell held-out ones apart
    seen = _count_structures_passed(monkeypatch)
    passes = {}
    for w in (1, 4):
        seen.clear()
        _, m = train_forcefield(eq + main, FFTrainConfig(epochs=1, repeat_plans={"equilibrium": w}),
                                out_dir=tmp_path / str(w), progress=False)
        passes[w] = sum(seen)
    assert passes[4] - passes[1] == 3 * n_eq_train
    assert m["test"]["n"] == sum(p == "test" for p in parts.values())
    with pytest.raises(InputError, match="repeat_plans"):
        train_forcefield(eq + main, FFTrainConfig(epochs=1, repeat_plans={"equilibrium_typo": 2}),
                         out_dir=tmp_path / "bad", progress=False)


def test_resumed_runs_keep_the_configurations_they_started_on(tmp_path, caplog):
    """Labels that arrive in the dataset while a run is interrupted stay out of its resumed
    epochs and out of its record; configurations it trained on that vanished stop the resume."""
    import pytest
    from wander_gui.errors import DataError
    from wander_gui.dft.dataset import has_current_label
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    samples = load_samples("pretrained/dataset")
    labelled = [s for s in samples if has_current_label(s.chunk)][:10]
    start, late = labelled[:-1], labelled[-1]
    torch.manual_seed(0)
    ff = ForceField().double()
    train_hamiltonian(start, ff, small_cfg(1), out_dir=tmp_path / "h", progress=False)
    with caplog.at_level("WARNING"):
        _, m = train_hamiltonian(start + [late], ff, small_cfg(2), out_dir=tmp_path / "h", progress=False)
    assert torch.load(tmp_path / "h" / "h_last.pt", weights_only=True)["epoch"] == 1  # it did resume
    recorded = set(m["data"]["train"] + m["data"]["val"] + m["data"]["test"])
    assert recorded == {s.name for s in start}
    assert late.name in caplog.text
    _, fresh = train_hamiltonian(start + [late], ff, small_cfg(1), out_dir=tmp_path / "h2", progress=False)
    assert late.name in fresh["data"]["train"] + fresh["data"]["val"] + fresh["data"]["test"]
    with pytest.raises(DataError, match=start[0].name):
        train_hamiltonian(start[1:], ff, small_cfg(3), out_dir=tmp_path / "h", progress=False)

    few = samples[:6]
    train_forcefield(few[:5], FFTrainConfig(epochs=1), out_dir=tmp_path / "ff", progress=False)
    _, mf = train_forcefield(few, FFTrainConfig(epochs=2), out_dir=tmp_path / "ff", progress=False)
    assert few[5].name not in mf["data"]["train"] + mf["data"]["val"] + mf["data"]["test"]
    assert set(mf["data"]["train"] + mf["data"]["val"] + mf["data"]["test"]) == {s.name for s in few[:5]}


def test_heads_fine_tuning_cells_always_train_and_repeat(tmp_path, monkeypatch):
    """Wannier-labelled fine-tuning cells (``--twisted-wannier``) join the heads' training split
    whatever their hash says, and count ``repeat_always`` times per epoch."""
    import wander_gui.ml.train_h as th
    from wander_gui.dft.dataset import has_current_label
    from wander_gui.ml.data import split
    labelled = [s for s in load_samples("pretrained/dataset") if has_current_label(s.chunk)][:10]
    parts = split([s.name for s in labelled])
    tune = {n for n, p in parts.items() if p != "train"}
    assert tune  # else this test would show nothing
    torch.manual_seed(0)
    ff = ForceField().double()
    calls = []
    real = th.forward
    monkeypatch.setattr(th, "forward", lambda hm, ex: calls.append(ex.name) or real(hm, ex))
    counts = {}
    for repeat in (1, 3):
        calls.clear()
        _, m = train_hamiltonian(labelled, ff, small_cfg(1), out_dir=tmp_path / str(repeat), progress=False,
                                 always_train=tune, repeat_always=repeat)
        counts[repeat] = {n: calls.count(n) for n in tune}
        assert set(m["data"]["train"]) == {s.name for s in labelled}
    # one epoch passes each fine-tuning cell 3 times instead of once; evaluation is unchanged
    assert all(counts[3][n] - counts[1][n] == 2 for n in tune)
