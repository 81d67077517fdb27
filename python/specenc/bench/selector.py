"""Latency-budget selector: the most accurate measured configuration whose batch-1 latency fits a budget.

A candidate is a dict with at least "name", "accuracy" (0..1 or None when untrained/unknown) and
"p50_ms"/"p95_ms" measured on this machine. The budget is met when the chosen percentile (p95 by
default: the budget should hold for nearly every spectrum, not just the typical one) is <= budget.
Ties in accuracy go to the faster candidate.
"""

import math

DEFAULT_BUDGET_MS = 30.0  # the study's marker


def select(candidates, budget_ms=DEFAULT_BUDGET_MS, percentile="p95"):
    """-> {"budget_ms", "percentile", "choice" (candidate or None), "reason", "table"}.

    table: every candidate with "meets_budget" and "eligible" (has an accuracy) flags, most accurate first."""
    if not budget_ms > 0:
        raise ValueError(f"latency budget {budget_ms!r} ms must be > 0")
    if percentile not in ("p50", "p95"):
        raise ValueError(f"percentile {percentile!r} must be 'p50' or 'p95'")
    table = []
    for c in candidates:
        lat = c.get(f"{percentile}_ms")
        acc = c.get("accuracy")
        has_acc = acc is not None and math.isfinite(acc)
        table.append({**c, "meets_budget": lat is not None and lat <= budget_ms, "eligible": has_acc})
    table.sort(key=lambda c: (-(c["accuracy"] if c["eligible"] else -1.0), c.get(f"{percentile}_ms") or math.inf))
    fits = [c for c in table if c["meets_budget"] and c["eligible"]]
    if fits:
        best = fits[0]
        reason = (f"{best['name']}: accuracy {100 * best['accuracy']:.1f} %, "
                  f"{percentile} {best[f'{percentile}_ms']:.2f} ms "
                  f"<= {budget_ms:g} ms; the most accurate of {len(fits)} candidate(s) within budget")
    else:
        best = None
        reason = f"no candidate with a known accuracy meets {percentile} <= {budget_ms:g} ms on this machine"
    return {"budget_ms": float(budget_ms), "percentile": percentile, "choice": best, "reason": reason, "table": table}
