"""Shared --model / --model-dir options."""
from __future__ import annotations


def add_model(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", default=None, help="pretrained model name (default: the shipped MoS2 model)")
    g.add_argument("--model-dir", default=None, help="directory with ff.pt [and h.pt] from `wander train`")
