"""Gateway rules: pure functions, no I/O."""

from __future__ import annotations

from shared.stats import wilson_interval

__all__ = ["wilson_interval"]
