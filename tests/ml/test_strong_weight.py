"""Weighting of the strong hopping elements in the heads' element loss."""
import torch

from wander_gui.ml.train_h import hop_loss


def _blocks():
    g = torch.Generator().manual_seed(0)
    target = 0.02 * torch.randn(40, 5, 5, generator=g, dtype=torch.float64)
    target[:3, 0, 1] = torch.tensor([0.6, -0.7, 0.15], dtype=torch.float64)  # nearest-neighbour-like
    mask = torch.rand(40, 5, 5, generator=g) > 0.2
    mask[:3, 0, 1] = True
    return target, mask


def test_weight_one_is_the_plain_mean_squared_error():
    target, mask = _blocks()
    hop = target + 0.001 * torch.randn(target.shape, dtype=torch.float64)
    assert torch.allclose(hop_loss(hop, target, mask), ((hop - target)[mask] ** 2).mean())
    assert torch.allclose(hop_loss(hop, target, mask, 1.0, 0.1), ((hop - target)[mask] ** 2).mean())


def test_strong_elements_count_weight_times():
    """An error on one strong element alone: with weight w among n masked elements of which s are
    strong, the loss is w·e² / (n − s + w·s) (a weighted mean); on a weak element e² / (n − s + w·s)."""
    target, mask = _blocks()
    n, s = int(mask.sum()), int((target[mask].abs() >= 0.1).sum())
    assert s == 3
    for w in (1.0, 10.0):
        strong = target.clone()
        strong[1, 0, 1] += 0.01
        weak = target.clone()
        weak[10][mask[10]] = weak[10][mask[10]] + torch.where(torch.arange(int(mask[10].sum())) == 0, 0.01, 0.0)
        denom = n - s + w * s
        assert abs(hop_loss(strong, target, mask, w, 0.1).item() - w * 1e-4 / denom) < 1e-12
        assert abs(hop_loss(weak, target, mask, w, 0.1).item() - 1e-4 / denom) < 1e-12
