"""Optimiser, learning-rate schedule and resumable checkpoints shared by the trainers.

``<prefix>_last.pt`` holds ``{config, state_dict, optimizer, scheduler, epoch, best,
best_epoch}`` after every epoch (training resumes from it when the model configuration is
the same); ``<prefix>_best.pt`` holds ``{config, state_dict}`` of the best validation score.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class TrainingState:
    """Adam + ReduceLROnPlateau for ``model``, resumed from ``out_dir/<prefix>_last.pt``."""

    def __init__(self, model: torch.nn.Module, out_dir, prefix: str, *, lr: float, lr_min: float,
                 plateau_patience: int, resume: bool = True):
        self.model, self.out_dir, self.prefix = model, Path(out_dir), prefix
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
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
            else:
                log.warning("%s is from another model configuration: not resumed", self.last_path)

    @property
    def last_path(self) -> Path:
        return self.out_dir / f"{self.prefix}_last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / f"{self.prefix}_best.pt"

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def end_epoch(self, epoch: int, score: float) -> None:
        """Step the schedule on the validation ``score``, keep the best model, write the
        resumable checkpoint."""
        self.sched.step(score)
        if score < self.best:
            self.best, self.best_epoch = score, epoch
            torch.save({"config": self.model.config, "state_dict": self.model.state_dict()}, self.best_path)
        torch.save({"config": self.model.config, "state_dict": self.model.state_dict(),
                    "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "epoch": epoch,
                    "best": self.best, "best_epoch": self.best_epoch}, self.last_path)

    def load_best(self) -> None:
        self.model.load_state_dict(torch.load(self.best_path, weights_only=True)["state_dict"])
