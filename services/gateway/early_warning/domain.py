"""Early-warning rules as pure functions: the test, the windows, the looks (docs/warnings.md).

Nothing here reads a database: the engine hands in counts and gets back findings, so the method
is tested on generated streams exactly as it runs.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shared.errors import InvalidTransition, NotFound

#: Warning ids are derived from the condition (rule, group, period): the same condition always
#: has the same id, so a replayed batch or a second replica cannot raise it twice.
WARNING_NAMESPACE = uuid.UUID("6f1c0b1e-5a0e-4c61-9a53-0c2b7d8e4f11")


def warning_id(dedup_key: str) -> str:
    return str(uuid.uuid5(WARNING_NAMESPACE, dedup_key))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(fails_w: int, n_w: int, fails_b: int, n_b: int) -> float:
    """One-sided Fisher exact test: P(window fails >= fails_w | both margins), under equal rates.

    The hypergeometric upper tail, summed in log space (math.lgamma): a dozen lines instead of
    SciPy (≈ 40 MB) for one distribution; tests/unit/test_warning_rules.py checks it against
    values computed by hand.
    """
    total, fails = n_w + n_b, fails_w + fails_b
    if n_w == 0 or fails == 0:
        return 1.0
    denom = _log_comb(total, n_w)
    top = min(fails, n_w)
    terms = [_log_comb(fails, x) + _log_comb(total - fails, n_w - x) - denom for x in range(fails_w, top + 1)]
    if not terms:
        return 0.0
    peak = max(terms)
    return min(1.0, math.exp(peak) * sum(math.exp(t - peak) for t in terms))


def quarter_of(day: date) -> tuple[date, date]:
    """The calendar quarter holding `day`: its first and last day."""
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    end_month = first_month + 3
    end = date(day.year + (end_month > 12), (end_month - 1) % 12 + 1, 1) - timedelta(days=1)
    return start, end


def quarters_before(start: date, quarters: int) -> date:
    """The first day of the quarter `quarters` before the one starting on `start`."""
    months = start.year * 12 + start.month - 1 - 3 * quarters
    return date(months // 12, months % 12 + 1, 1)


def quarter_label(start: date) -> str:
    return f"{start.year}Q{(start.month - 1) // 3 + 1}"


def look_due(n_window: int, checkpoints: tuple[int, ...], looked_at: int) -> int | None:
    """The checkpoint to look at now: the largest one reached, if a look at it is still to be made.

    Looking only at checkpoints bounds the looks per group and quarter (len(checkpoints)), so the
    Bonferroni split of the rule's alpha over them holds however the results arrive."""
    reached = [c for c in checkpoints if c <= n_window]
    if not reached or reached[-1] <= looked_at:
        return None
    return reached[-1]


@dataclass(frozen=True)
class RateCounts:
    n_window: int
    fails_window: int
    n_baseline: int
    fails_baseline: int


@dataclass(frozen=True)
class RateTest:
    """The outcome of one look: whether it fired, and what it rests on (the warning's evidence)."""

    fired: bool
    p_value: float
    alpha_per_look: float
    evidence: dict[str, Any]


def rate_test(
    counts: RateCounts,
    *,
    alpha: float,
    looks: int,
    min_baseline_n: int,
    min_window_fails: int,
    min_ratio: float,
) -> RateTest:
    """Fires when the window's fail rate is above the baseline's by Fisher's one-sided test at
    `alpha / looks`, with enough baseline, enough fails and a rise worth telling (`min_ratio`)."""
    c = counts
    rate_w = c.fails_window / c.n_window if c.n_window else 0.0
    # The baseline rate with one pseudo-fail and pass (Laplace): a zero baseline is not "infinitely" exceeded.
    rate_b = (c.fails_baseline + 1) / (c.n_baseline + 2)
    per_look = alpha / looks
    p = fisher_greater(c.fails_window, c.n_window, c.fails_baseline, c.n_baseline)
    fired = (
        c.n_baseline >= min_baseline_n
        and c.fails_window >= min_window_fails
        and rate_w >= min_ratio * rate_b
        and p < per_look
    )
    evidence = {
        "method": "fisher-exact-one-sided (docs/warnings.md)",
        "window": {"n": c.n_window, "fails": c.fails_window, "rate": round(rate_w, 6)},
        "baseline": {"n": c.n_baseline, "fails": c.fails_baseline, "rate": round(rate_b, 6)},
        "ratio": round(rate_w / rate_b, 4) if rate_b else None,
        "p_value": p,
        "alpha_per_look": per_look,
    }
    return RateTest(fired, p, per_look, evidence)


# ------------------------------------------------------------------------------------ the workflow

#: raised (open) -> acknowledged -> closed; an open warning may be closed at once.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "acknowledge": (frozenset({"open"}), "acknowledged"),
    "close": (frozenset({"open", "acknowledged"}), "closed"),
}


class WarningNotFound(NotFound, slug="warning-not-found", title="No such warning"):
    """No warning was raised with this id."""


class WarningStateConflict(
    InvalidTransition, slug="warning-state-conflict", title="Not allowed in the warning's state"
):
    """The transition is not allowed from the warning's state (e.g. acknowledging a closed warning)."""


def next_state(state: str, action: str) -> str:
    """The state `action` leads to from `state`; WarningStateConflict (409) when it is not allowed."""
    allowed, to = TRANSITIONS[action]
    if state not in allowed:
        raise WarningStateConflict(
            f"Cannot {action} a warning that is {state}", state_now=state, action=action, allowed_from=sorted(allowed)
        )
    return to


def occurrence_key(dedup_key: str, occurrence: int) -> str:
    """The key a warning's id is derived from: the condition's own for its first warning (the ids of
    warnings raised before the workflow existed are unchanged), with `#n` for the n-th after closes."""
    return dedup_key if occurrence == 1 else f"{dedup_key}#{occurrence}"
