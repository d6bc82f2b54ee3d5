"""Optimiser, learning-rate schedule and resumable checkpoints shared by the trainers.

``<prefix>_last.pt`` holds ``{config, state_dict, optimizer, scheduler, epoch, best,
best_epoch}`` (and ``ema``, ``ema_steps`` with weight averaging; ``data_names``, the
configurations the run started on) after every epoch (training resumes from it when the model
configuration is the same, on the configurations it started on); ``<prefix>_best.pt`` holds
``{config, state_dict}`` of the best validation score (the averaged weights with averaging).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class TrainingState:
    """Adam + ReduceLROnPlateau for ``model``, resumed from ``out_dir/<prefix>_last.pt``.

    With ``ema_decay`` an exponential moving average of the weights is kept (updated by
    :meth:`update_ema` after every optimiser step, decay min(ema_decay, (1+n)/(10+n)) at step n);
    validation runs on it (:meth:`averaged`) and it is what the best checkpoint stores.
    Single-configuration Adam steps make the weights of consecutive epochs scatter; their
    average does not. ``adam_eps``: Adam's ε (PyTorch's default 1e-8); it must be well below the
    gradients' RMS, or the steps shrink by about RMS/ε.
    """

    def __init__(self, model: torch.nn.Module, out_dir, prefix: str, *, lr: float, lr_min: float,
                 plateau_patience: int, resume: bool = True, ema_decay: float | None = None,
                 data_names: list[str] | None = None, adam_eps: float = 1e-8):
        self.model, self.out_dir, self.prefix = model, Path(out_dir), prefix
        self.data_names = None if data_names is None else sorted(data_names)
        self.ema_decay, self.ema_steps, self.ema = ema_decay, 0, None
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, eps=adam_eps)
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.5, patience=plateau_patience,
                                                                min_lr=lr_min)
        self.start, self.best, self.best_epoch = 0, float("inf"), -1
        if resume and self.last_path.exists():
            ck = torch.load(self.last_path, weights_only=True)
            if ck.get("config") == model.config:
                model.load_state_dict(ck["state_dict"])
                self.opt.load_state_dict(ck["optimizer"])
                self.sched.load_state_dict(ck["scheduler"])
                self.start, self.best, self.best_epoch = int(ck["epoch"]) + 1, float(ck["best"]), int(ck["best_epoch"])
                if ema_decay and "ema" in ck:
                    self.ema, self.ema_steps = ck["ema"], int(ck["ema_steps"])
            else:
                log.warning("%s is from another model configuration: not resumed", self.last_path)
        if ema_decay and self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @property
    def last_path(self) -> Path:
        return self.out_dir / f"{self.prefix}_last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / f"{self.prefix}_best.pt"

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def update_ema(self) -> None:
        """Fold the current weights into the moving average (no-op without averaging)."""
        if self.ema is None:
            return
        decay = min(self.ema_decay, (1 + self.ema_steps) / (10 + self.ema_steps))
        self.ema_steps += 1
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.dtype.is_floating_point:
                    self.ema[k].mul_(decay).add_(v, alpha=1 - decay)
                else:
                    self.ema[k].copy_(v)

    @contextmanager
    def averaged(self):
        """Within the block the model holds the averaged weights (the raw ones without averaging)."""
        if self.ema is None:
            yield self.model
            return
        raw = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema)
        try:
            yield self.model
        finally:
            self.model.load_state_dict(raw)

    def end_epoch(self, epoch: int, score: float) -> None:
        """Step the schedule on the validation ``score`` (of the averaged weights, with
        averaging), keep the best model, write the resumable checkpoint."""
        self.sched.step(score)
        if score < self.best:
            self.best, self.best_epoch = score, epoch
            best = self.model.state_dict() if self.ema is None else self.ema
            torch.save({"config": self.model.config, "state_dict": best}, self.best_path)
        extra = {} if self.ema is None else {"ema": self.ema, "ema_steps": self.ema_steps}
        if self.data_names is not None:
            extra["data_names"] = self.data_names
        torch.save({"config": self.model.config, "state_dict": self.model.state_dict(),
                    "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "epoch": epoch,
                    "best": self.best, "best_epoch": self.best_epoch, **extra}, self.last_path)

    def load_best(self) -> None:
        self.model.load_state_dict(torch.load(self.best_path, weights_only=True)["state_dict"])


def resumed_samples(samples: list, out_dir, prefix: str, config: dict, *, resume: bool = True) -> list:
    """The ``samples`` a resumed run continues on: those it started on, recorded in
    ``out_dir/<prefix>_last.pt`` (all of ``samples`` for a fresh run, a run of another model
    configuration, or a checkpoint written before the names were recorded).

    Configurations that arrived in the dataset after the run started are left out (with a
    warning): they would change the split and the statistics half-way and the run's record would
    claim them for every epoch. Configurations the run trained on that are gone raise DataError.
    """
    path = Path(out_dir) / f"{prefix}_last.pt"
    if not resume or not path.exists():
        return samples
    ck = torch.load(path, weights_only=True)
    names = ck.get("data_names")
    if ck.get("config") != config or names is None:
        return samples
    have, started = {s.name for s in samples}, set(names)
    missing = sorted(started - have)
    if missing:
        from wander_gui.errors import DataError
        raise DataError(f"cannot resume {path}: {len(missing)} configuration(s) it trained on are not in the data "
                        f"any more ({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}); "
                        "train afresh (--no-resume) or restore them")
    new = sorted(have - started)
    if new:
        log.warning("resuming %s: %d configuration(s) added since the run started are left out (%s%s); "
                    "train afresh (--no-resume) to use them", path, len(new), ", ".join(new[:5]),
                    ", …" if len(new) > 5 else "")
    return [s for s in samples if s.name in started]
