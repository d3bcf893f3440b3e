"""Early warnings raised from the sampling stream by rules kept as data (docs/warnings.md)."""
