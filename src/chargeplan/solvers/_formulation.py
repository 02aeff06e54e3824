"""Pieces of the planning LP shared by the HiGHS (lp.py) and cvxpy (custom.py) models.

Both solvers state the same optimisation problem; what they must agree on lives here
so it cannot drift apart.
"""

from __future__ import annotations

import numpy as np

from ..problem import ProblemArrays

__all__ = ["TIE_BREAK_PER_KWH", "SAFETY", "penalty_weight", "node_incidence", "lookup"]

#: Cost per kWh and slot index (scaled by 1/T) that makes the plan charge earlier on ties.
TIE_BREAK_PER_KWH = 1e-4
#: Headroom kept against solver tolerances (HiGHS's MIP feasibility tolerance is 1e-6):
#: on node rows (A or kW) and on the V2G reserve (kWh). Energy above the request by a
#: tolerance is taken back after rounding (see rounding._trim_net_energy).
SAFETY = 1e-5


def penalty_weight(p: ProblemArrays) -> float:
    """Price per kWh of unmet energy: above any cost the plan could save."""
    dt = p.grid.step_h
    worst = (
        np.abs(p.price_import_per_kwh).max(initial=0.0)
        + np.abs(p.price_export_per_kwh).max(initial=0.0)
        + p.degradation_per_kwh.max(initial=0.0)
        + np.abs(p.bid_price_per_kwh).max(initial=0.0)
        + p.bid_penalty_per_kwh.max(initial=0.0)
        + p.demand_charge_per_kw / dt
    )
    eta = p.efficiency.min(initial=1.0)
    return 10.0 * (1.0 + worst / eta)


def node_incidence(
    p: ProblemArrays, s_idx: np.ndarray, t_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triplets (row key, cell number, coef) of cells on the node rows of their path.

    The row key of node ``n``, row ``r`` (L1, L2, L3, kW) and slot ``t`` is
    ``(n * 4 + r) * T + t``.
    """
    keys, cells, coefs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    T = p.n_slots
    cell = np.arange(len(s_idx))
    for k in range(p.path.shape[1]):
        node = p.path[s_idx, k]
        ok = node >= 0
        for r in range(p.coef.shape[1]):
            co = p.coef[s_idx, r]
            m = ok & (co > 0.0)
            keys.append((node[m] * p.coef.shape[1] + r) * T + t_idx[m])
            cells.append(cell[m])
            coefs.append(co[m])
    return np.concatenate(keys), np.concatenate(cells), np.concatenate(coefs)


def lookup(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each ``k`` in sorted ``keys`` and whether it is there."""
    pos = np.searchsorted(keys, k)
    ok = (pos < len(keys)) & (keys[np.minimum(pos, max(len(keys) - 1, 0))] == k)
    return pos, ok
