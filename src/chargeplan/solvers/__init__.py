"""Solver dispatch and the ``method="auto"`` policy.

Every solver takes :class:`~chargeplan.problem.ProblemArrays` and returns the (S, T)
rate matrix in kW (negative = discharge) plus an info dict. Solvers never import
each other; this module chooses and falls back.

Solver methods
--------------
``"greedy"``
    numba heuristic (:mod:`.greedy`), milliseconds; never discharges.
``"lp"``
    HiGHS LP, min-current rule by repair (:mod:`.lp`); cost-optimal up to the repair.
``"milp"``
    HiGHS MILP, min-current rule exact; for small problems.
``"cvxpy"``
    The same LP as a cvxpy model (:mod:`.custom`, optional extra), which a
    ``customize(model)`` hook may extend with terms and constraints of its own. It
    never falls back to another solver (that would drop the user's terms).
``"auto"``
    1. If the problem needs LP features (V2G sessions or bids, a demand charge), the
       HiGHS path runs: the MILP when it has at most ``MILP_MAX_BINARIES`` binaries,
       else LP + repair. If HiGHS fails or hits ``time_limit_s``, the greedy plan is
       returned with a :class:`~chargeplan.SolverFallbackWarning`.
    2. Otherwise greedy runs first. If it leaves energy unmet beyond what the EVs' own
       limits and windows make unavoidable, the LP (+ repair) runs too, since capacity
       may allow more (the LP minimises unmet energy first), and
       the plan with less priority-weighted unmet energy (then lower cost) is kept.
       An LP failure then only means the greedy plan is kept (with the warning).
    The report's ``reason`` says which branch ran.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import SolverError, SolverFallbackWarning
from ..problem import ProblemArrays

__all__ = [
    "SolverReport",
    "solve",
    "METHODS",
    "MILP_MAX_BINARIES",
    "plan_quality",
    "repair_min_current",
]

METHODS = ("auto", "greedy", "lp", "milp", "cvxpy")

#: Largest number of min-current binaries the auto policy solves as an exact MILP.
MILP_MAX_BINARIES = 400


@dataclass(frozen=True)
class SolverReport:
    """Which solver produced a plan, why, how it ended and how long it took.

    Attributes
    ----------
    method : str
        The solver that produced the plan (``"greedy"``, ``"lp"``, ``"milp"``).
    requested : str
        The ``method`` the caller asked for.
    status : str
        ``"heuristic"`` (greedy), ``"optimal"`` (LP/MILP optimal) or ``"repaired"``
        (LP optimum adjusted for the min-current rule).
    reason : str
        Why this solver was used (and any fallback).
    solve_time_s, build_time_s, check_time_s : float
        Wall-clock seconds spent solving, building arrays and checking.
    info : dict
        Solver-specific details.
    """

    method: str
    requested: str
    status: str
    reason: str
    solve_time_s: float
    build_time_s: float = 0.0
    check_time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def plan_quality(problem: ProblemArrays, rate_kw: np.ndarray) -> tuple[float, float]:
    """Priority-weighted unmet energy (kWh) and site energy cost of a rate matrix."""
    from .greedy import delivered_kwh, site_energy_cost

    unmet = np.maximum(problem.energy_kwh - delivered_kwh(problem, rate_kw), 0.0)
    return float((unmet * problem.priority).sum()), site_energy_cost(problem, rate_kw)


def _run_greedy(problem: ProblemArrays) -> tuple[np.ndarray, dict]:
    from .greedy import solve_greedy

    return solve_greedy(problem)


def _run_lp(
    problem: ProblemArrays, integer: bool, time_limit_s: float | None
) -> tuple[np.ndarray, dict]:
    """MILP, or LP + min-current repair.

    Repair of the LP relaxation: without V2G, cells below their minimum are set to 0
    (that only lowers loads); with V2G (where zeroing a discharge raises loads) the LP
    is re-solved with such cells fixed to 0 until none is left. Either way the energy
    those cells carried is then placed again by the greedy kernel in the capacity
    left (:func:`.greedy.fill_from`), keeping the min-current rule.
    """
    from .greedy import fill_from
    from .lp import solve_lp

    if integer:
        rate, info = solve_lp(problem, integer=True, time_limit_s=time_limit_s)
    elif problem.has_v2g:
        rate, info = solve_lp(problem, time_limit_s=time_limit_s)
        rate = fill_from(problem, rate)
        info["repair"] = "re-solve with cells below the minimum fixed to 0, refill greedily"
    else:
        rate, info = solve_lp(problem, time_limit_s=time_limit_s, repair=False)
        rate, info["repaired_cells"] = repair_min_current(problem, rate)
        info["repair"] = "cells below the minimum set to 0, refill greedily"
    info.pop("highs", None)
    info.pop("model", None)
    return rate, info


def _run_cvxpy(
    problem: ProblemArrays, time_limit_s: float | None, customize, options: dict | None
) -> tuple[np.ndarray, dict]:
    from .custom import solve_cvxpy

    rate, info = solve_cvxpy(
        problem, customize=customize, time_limit_s=time_limit_s, **(options or {})
    )
    info.pop("model", None)
    return rate, info


def repair_min_current(problem: ProblemArrays, rate_kw: np.ndarray) -> tuple[np.ndarray, int]:
    """Make a charge-only relaxation keep the min-current rule.

    Cells below their minimum rate are set to 0 (that only lowers loads) and the energy
    they carried is placed again by the greedy kernel in the capacity left.

    Returns
    -------
    rate_kw : numpy.ndarray
    repaired : int
        Number of cells that were below their minimum.
    """
    from .greedy import fill_from

    small = (rate_kw > 1e-7) & (rate_kw < problem.pmin_kw[:, None] - 1e-7)
    rate = np.where(small | (rate_kw <= 1e-7), 0.0, rate_kw)
    return fill_from(problem, rate), int(small.sum())


def _n_binaries(problem: ProblemArrays) -> int:
    dual = (problem.pmax_kw > 0.0) & (problem.dmax_kw > 0.0)
    on_c = (problem.pmax_kw > 0.0) & (problem.pmin_kw[:, None] > 0.0) | dual
    on_d = (problem.dmax_kw > 0.0) & (problem.dmin_kw[:, None] > 0.0) | dual
    return int(on_c.sum() + on_d.sum())


def solve(
    problem: ProblemArrays,
    method: str = "auto",
    *,
    time_limit_s: float | None = None,
    customize=None,
    cvxpy_options: dict | None = None,
) -> tuple[np.ndarray, SolverReport]:
    """Solve with the chosen method (see the module docstring for ``"auto"``).

    Parameters
    ----------
    problem : ProblemArrays
    method : {"auto", "greedy", "lp", "milp", "cvxpy"}
    time_limit_s : float, optional
        Time limit for each HiGHS run.
    customize : callable, optional
        ``customize(model)`` hook for the cvxpy model (implies ``method="cvxpy"``).
    cvxpy_options : dict, optional
        Keyword arguments for :func:`.custom.solve_cvxpy` (solver, repair, ...).

    Returns
    -------
    rate_kw : numpy.ndarray
        (S, T) rate in kW (negative = discharge).
    report : SolverReport
    """
    if method not in METHODS:
        raise ValueError(
            f"The 'method' parameter of optimize must be one of {METHODS}. Got {method!r} instead."
        )
    t0 = time.perf_counter()

    def report(used: str, status: str, reason: str, info: dict) -> SolverReport:
        return SolverReport(
            method=used,
            requested=method,
            status=status,
            reason=reason,
            solve_time_s=time.perf_counter() - t0,
            info=info,
        )

    def lp_status(info: dict) -> str:
        return "repaired" if info.get("repaired_cells") else "optimal"

    if method == "cvxpy" or customize is not None:
        if method not in ("cvxpy", "auto"):
            raise ValueError(
                "The 'customize' parameter of optimize needs method='cvxpy' (or "
                f"'auto'). Got method={method!r} instead."
            )
        rate, info = _run_cvxpy(problem, time_limit_s, customize, cvxpy_options)
        why = "requested" if method == "cvxpy" else "auto: a customize hook was given -> cvxpy"
        return rate, report("cvxpy", lp_status(info), why, info)
    if method == "greedy":
        rate, info = _run_greedy(problem)
        return rate, report("greedy", "heuristic", "requested", info)
    if method in ("lp", "milp"):
        rate, info = _run_lp(problem, method == "milp", time_limit_s)
        return rate, report(method, lp_status(info), "requested", info)

    # auto
    if problem.needs_lp:
        n_bin = _n_binaries(problem)
        integer = n_bin <= MILP_MAX_BINARIES
        used = "milp" if integer else "lp"
        why = (
            f"auto: the problem needs LP features (V2G or demand charge); {n_bin} "
            f"min-current binaries -> {'exact MILP' if integer else 'LP + repair'}"
        )
        try:
            rate, info = _run_lp(problem, integer, time_limit_s)
            return rate, report(used, lp_status(info), why, info)
        except SolverError as e:
            warnings.warn(
                f"HiGHS failed ({e.status}: {e}); returning the greedy plan, which "
                "ignores V2G and demand charges.",
                SolverFallbackWarning,
                stacklevel=3,
            )
            rate, info = _run_greedy(problem)
            info["fallback_from"] = {"method": used, "status": e.status, "error": str(e)}
            return rate, report(
                "greedy",
                "heuristic",
                f"{why}; HiGHS failed ({e.status}): fell back to greedy",
                info,
            )

    rate, info = _run_greedy(problem)
    g_unmet, g_cost = plan_quality(problem, rate)
    if g_unmet <= 1e-6:
        return rate, report("greedy", "heuristic", "auto: greedy met every request", info)
    if g_unmet <= info.get("floor_unmet_kwh", -1.0) + 1e-6:
        return rate, report(
            "greedy",
            "heuristic",
            "auto: greedy left only the energy the EVs' own limits and windows cannot take",
            info,
        )
    try:
        lp_rate, lp_info = _run_lp(problem, False, time_limit_s)
    except SolverError as e:
        warnings.warn(
            f"HiGHS failed ({e.status}: {e}); keeping the greedy plan.",
            SolverFallbackWarning,
            stacklevel=3,
        )
        info["fallback_from"] = {"method": "lp", "status": e.status, "error": str(e)}
        return rate, report(
            "greedy",
            "heuristic",
            f"auto: greedy left energy unmet; the LP check failed ({e.status}): kept greedy",
            info,
        )
    l_unmet, l_cost = plan_quality(problem, lp_rate)
    lp_info["greedy"] = {"weighted_unmet_kwh": g_unmet, "cost": g_cost}
    if (round(l_unmet, 6), l_cost) < (round(g_unmet, 6), g_cost):
        return lp_rate, report(
            "lp",
            lp_status(lp_info),
            f"auto: greedy left {g_unmet:.3f} kWh (weighted) unmet; the LP left {l_unmet:.3f}",
            lp_info,
        )
    info["lp"] = {"weighted_unmet_kwh": l_unmet, "cost": l_cost}
    return rate, report(
        "greedy", "heuristic", "auto: greedy left energy unmet but the LP did no better", info
    )
