"""QualityCity benchmarks: `python -m bench [--only NAME] [--rows N] [--quick]` (see bench/__main__.py).

Each benchmark is a module with `run(args) -> list[dict]`; every dict is one figure of the table
(figure, value, unit, baseline, ratio, goal, met). Results go to bench/results/ (git-ignored).
"""
