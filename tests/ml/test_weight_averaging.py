import torch

from wander_gui.ml.checkpoints import TrainingState


class Tiny(torch.nn.Linear):
    config = {"n": 2}


def test_moving_average_of_weights_is_validated_kept_as_best_and_resumed(tmp_path):
    torch.manual_seed(0)
    model = Tiny(2, 1)
    state = TrainingState(model, tmp_path, "t", lr=0.1, lr_min=1e-4, plateau_patience=5, ema_decay=0.5)
    seen = []
    for _ in range(30):  # decay min(0.5, (1+n)/(10+n)): a plain running mean for the first steps
        with torch.no_grad():
            model.weight.add_(1.0)
        seen.append(model.weight.detach().clone())
        state.update_ema()
    expected = seen[0]
    for n, w in enumerate(seen[1:], start=1):
        d = min(0.5, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * w
    assert torch.allclose(state.ema["weight"], expected)
    assert not torch.allclose(expected, model.weight)  # the average lags the raw weights
    raw = model.weight.detach().clone()
    with state.averaged() as m:
        assert torch.allclose(m.weight, expected)
    assert torch.equal(model.weight, raw)  # raw weights back after validation
    state.end_epoch(0, 1.0)
    assert torch.allclose(torch.load(state.best_path, weights_only=True)["state_dict"]["weight"], expected)
    again = TrainingState(Tiny(2, 1), tmp_path, "t", lr=0.1, lr_min=1e-4, plateau_patience=5, ema_decay=0.5)
    assert again.start == 1 and again.ema_steps == 30 and torch.allclose(again.ema["weight"], expected)
    assert torch.equal(again.model.weight, raw)
    state.load_best()
    assert torch.allclose(model.weight, expected)
    plain = TrainingState(Tiny(2, 1), tmp_path / "plain", "t", lr=0.1, lr_min=1e-4, plateau_patience=5)
    plain.update_ema()
    assert plain.ema is None


def test_force_field_training_keeps_the_averaged_weights(tmp_path):
    from wander_gui.ml.data import load_samples
    from wander_gui.ml.train_ff import FFTrainConfig, train_forcefield
    samples = load_samples("pretrained/dataset")[:6]
    model, _ = train_forcefield(samples, FFTrainConfig(epochs=1, batch_size=1, ema_decay=0.9), out_dir=tmp_path,
                                progress=False)
    last = torch.load(tmp_path / "ff_last.pt", weights_only=True)
    assert last["ema_steps"] > 0
    name = next(k for k, v in last["ema"].items() if v.dtype.is_floating_point and not torch.equal(v, last["state_dict"][k]))
    assert torch.allclose(model.state_dict()[name], last["ema"][name])  # the returned model is the average
