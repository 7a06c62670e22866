"""Errors shared by the numerical core (one definition, raised by every fitting routine)."""

from __future__ import annotations

__all__ = ["ConvergenceError"]


class ConvergenceError(RuntimeError):
    """An optimiser did not reach its tolerance within ``max_iter`` iterations, or diverged.

    Raised instead of returning an estimate that is not one (``bt.fit_bt``, ``hbt.fit_hbt`` and
    every later fitting routine of ``ranking.core``).
    """
