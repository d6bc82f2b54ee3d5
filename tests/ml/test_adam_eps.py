"""Adam's ε in the training state: it reaches the optimiser, survives a resume, and matters for the
heads' small scaled outputs (targets of a few meV times output scales of ~0.003)."""
import torch

from wander_gui.ml.checkpoints import TrainingState


def _fit(eps: float, out_dir, steps: int = 300) -> tuple[float, float]:
    """Fit 0.003 · (w·x) to targets of a few meV with weights of order one, the loss scaled by
    1e-5 so that the gradients have the RMS measured on the heads' long-range networks (~1e-10:
    a cell's mean over ~10⁴ elements, most of them other networks', and cancellation between
    pairs). Returns the first gradient's RMS and the final mean squared error (eV²)."""
    torch.manual_seed(0)
    x = torch.randn(64, 4, dtype=torch.float64)
    y = 0.003 * (x @ torch.tensor([1.0, -0.5, 0.3, 0.8], dtype=torch.float64))
    model = torch.nn.Linear(4, 1, bias=False).double()
    model.config = {"kind": "toy"}
    torch.nn.init.zeros_(model.weight)
    state = TrainingState(model, out_dir, "toy", lr=1e-2, lr_min=1e-5, plateau_patience=100, resume=False,
                          adam_eps=eps)
    def mse():
        return ((0.003 * model(x).squeeze(1) - y) ** 2).mean()

    first = None
    for _ in range(steps):
        state.opt.zero_grad()
        (1e-5 * mse()).backward()
        first = first if first is not None else float(model.weight.grad.pow(2).mean().sqrt())
        state.opt.step()
    with torch.no_grad():
        return first, float(mse())


def test_eps_reaches_the_optimiser(tmp_path):
    model = torch.nn.Linear(2, 1)
    model.config = {"kind": "toy"}
    assert TrainingState(model, tmp_path, "a", lr=1e-3, lr_min=1e-5, plateau_patience=5).opt.param_groups[0]["eps"] == 1e-8
    st = TrainingState(model, tmp_path, "b", lr=1e-3, lr_min=1e-5, plateau_patience=5, adam_eps=1e-14)
    assert st.opt.param_groups[0]["eps"] == 1e-14
    st.end_epoch(0, 1.0)  # writes the resumable checkpoint
    resumed = TrainingState(model, tmp_path, "b", lr=1e-3, lr_min=1e-5, plateau_patience=5)
    assert resumed.start == 1 and resumed.opt.param_groups[0]["eps"] == 1e-14


def test_small_eps_learns_where_the_default_stalls(tmp_path):
    """Gradients of ~1e-10 (as measured on mos2-preview-15's long-range inter-layer Mo–Mo network):
    with ε = 1e-8 the steps are ~1 % of lr and the fit stays far off; with ε = 1e-14 Adam takes
    full steps."""
    grad, default = _fit(1e-8, tmp_path / "d")
    _, small = _fit(1e-14, tmp_path / "s")
    assert grad < 1e-9
    assert small < 1e-2 * default, (small, default)
