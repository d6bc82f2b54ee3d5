"""Shared result-table writer of the bench scripts (appends to bench/RESULTS.md)."""
from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def report(script: str, header: list[str], rows: list[list[str]], footer: str = "") -> str:
    stamp = (f"{datetime.date.today()} {platform.node()} ({platform.machine()}, {os.cpu_count()} cpus, "
             f"load {os.getloadavg()[0]:.1f})")
    lines = [f"\n### {script} — {stamp}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if footer:
        lines.append("\n" + footer)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(Path(__file__).with_name("RESULTS.md"), "a") as fh:
        fh.write(text)
    return text
