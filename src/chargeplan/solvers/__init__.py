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
       else LP + repair. The MILP gets at most ``AUTO_MILP_TIME_LIMIT_S`` (or
       ``time_limit_s`` if lower): proving optimality can take minutes even on a small
       problem (76 s seen with 48 binaries). Stopped there, its best plan so far is
       kept (status ``"feasible"``, gap in ``info["mip_gap"]``; which plan that is
       depends on the machine's speed); without one, LP + repair runs. If HiGHS fails
       or hits ``time_limit_s``, the greedy plan is returned with a
       :class:`~chargeplan.SolverFallbackWarning`.
    2. Otherwise greedy runs first. If it leaves energy unmet beyond what the EVs' own
       limits and windows make unavoidable, the LP (+ repair) runs too, since capacity
       may allow more (the LP minimises unmet energy first), and
       the plan with less priority-weighted unmet energy (then lower cost) is kept.
       An LP failure then only means the greedy plan is kept (with the warning).
       For small problems (at most ``AUTO_LP_MAX_CELLS`` session-slot cells) the LP
       (+ repair) also runs when greedy met everything it could, to lower the cost:
       its plan is kept only if it leaves no more weighted unmet energy and costs
       less. Larger problems keep the greedy plan (milliseconds).
    The report's ``reason`` says which branch ran.

Delay cost
----------
``delay_cost_per_kwh_h`` adds ``h * delay_cost_per_kwh_h`` per kWh charged ``h`` hours
after the plan start (slot midpoint) to the prices every solver minimises, import and
export alike (so the import/export spread, and with it the PV and V2G incentives, is
unchanged; discharge earns it back). Reported costs are never affected. With drivers'
departure estimates, which are often late, a small value trades a little cost for
energy delivered earlier.
"""

from __future__ import annotations

import dataclasses
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
    "AUTO_MILP_TIME_LIMIT_S",
    "AUTO_LP_MAX_CELLS",
    "with_delay_cost",
    "plan_quality",
    "repair_min_current",
]

METHODS = ("auto", "greedy", "lp", "milp", "cvxpy")

#: Largest number of min-current binaries the auto policy solves as an exact MILP.
MILP_MAX_BINARIES = 400

#: Seconds the auto policy gives the MILP before keeping its best plan so far (a
#: small MILP usually proves its optimum in milliseconds).
AUTO_MILP_TIME_LIMIT_S = 2.0

#: Largest number of session-slot cells (EV plugged in, rate > 0 allowed) for which the
#: auto policy also runs the LP to lower the cost of a greedy plan (about 50 EVs over a
#: day of 5-minute slots; the LP takes tens of milliseconds there).
AUTO_LP_MAX_CELLS = 20_000


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
        ``"heuristic"`` (greedy), ``"optimal"`` (LP/MILP optimal), ``"repaired"``
        (LP optimum adjusted for the min-current rule) or ``"feasible"`` (a MILP
        stopped by the auto policy's time budget: a valid plan, not proven optimal).
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
    problem: ProblemArrays,
    integer: bool,
    time_limit_s: float | None,
    accept_incumbent: bool = False,
) -> tuple[np.ndarray, dict]:
    """MILP (refilled greedily), or LP + min-current repair.

    Repair of the LP relaxation: without V2G, cells below their minimum are set to 0
    (that only lowers loads), and the LP is also re-solved with such cells raised to
    the minimum or fixed to 0 (:func:`_try_resolve_repair`; the better plan is kept);
    with V2G (where zeroing a discharge raises loads) the LP is re-solved with such
    cells fixed to 0 until none is left. Either way the energy those cells carried is
    then placed again by the greedy kernel in the capacity left
    (:func:`.greedy.fill_from`), keeping the min-current rule.
    """
    from .greedy import fill_from
    from .lp import solve_lp

    if integer:
        rate, info = solve_lp(
            problem, integer=True, time_limit_s=time_limit_s, accept_incumbent=accept_incumbent
        )
        # The model keeps a small headroom on every node row (SAFETY, against HiGHS's
        # tolerances), so a node limit of exactly k minimum currents cannot hold k EVs
        # at the minimum there (a 6 A node: none at all), and a rate a hair under a
        # 0.1 A step rounds down a whole step. The greedy refill places that energy
        # exactly (only adding; unmet energy outweighs any cost in the objective).
        unmet_before = plan_quality(problem, rate)[0]
        rate = fill_from(problem, rate)
        info["refilled_weighted_kwh"] = unmet_before - plan_quality(problem, rate)[0]
    elif problem.has_v2g:
        rate, info = solve_lp(problem, time_limit_s=time_limit_s)
        rate = fill_from(problem, rate)
        info["repair"] = "re-solve with cells below the minimum fixed to 0, refill greedily"
    else:
        relaxed, info = solve_lp(problem, time_limit_s=time_limit_s, repair=False)
        rate, info["repaired_cells"] = repair_min_current(problem, relaxed)
        info["repair"] = "cells below the minimum set to 0, refill greedily"
        if info["repaired_cells"]:
            _try_resolve_repair(problem, relaxed, rate, info)
            rate = info.pop("_rate")
    info.pop("highs", None)
    info.pop("model", None)
    return rate, info


def _objective_key(problem: ProblemArrays, rate_kw: np.ndarray) -> tuple[float, float]:
    """Weighted unmet energy (rounded as auto does) and cost with the demand charge."""
    unmet, cost = plan_quality(problem, rate_kw)
    if problem.demand_charge_per_kw > 0.0:
        site_kw = problem.net_base_kw + (rate_kw * problem.present).sum(axis=0)
        over = max(float(site_kw.max(initial=0.0)) - problem.peak_already_kw, 0.0)
        cost += problem.demand_charge_per_kw * over
    return round(unmet, 6), cost


def _try_resolve_repair(
    problem: ProblemArrays, relaxed: np.ndarray, zeroed: np.ndarray, info: dict
) -> None:
    """Also repair by re-solving (cells raised to the minimum or fixed to 0); keep the better.

    The plain repair (cells below the minimum set to 0, refilled greedily) loses the
    energy the refill cannot place again, which on a congested node is most of it: the
    small cells' room is split below the minimum. The re-solve moves it to cells at
    the minimum (``lp.repair_by_resolving``), then the refill tops that up. Whichever
    plan leaves less weighted energy unmet, then costs less (with the demand charge),
    is kept in ``info["_rate"]``; a failed re-solve keeps the plain repair.
    """
    from .greedy import fill_from
    from .lp import repair_by_resolving

    info["_rate"] = zeroed
    try:
        fixed, n = repair_by_resolving(problem, info["model"], info["highs"], relaxed)
    except SolverError as e:
        info["repair_resolve"] = {"status": e.status, "error": str(e)}
        return
    resolved = fill_from(problem, fixed)
    if _objective_key(problem, resolved) < _objective_key(problem, zeroed):
        info["_rate"] = resolved
        info["repaired_cells"] = n
        info["repair"] = "re-solve with cells below the minimum raised to it or fixed to 0, refill"


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


def with_delay_cost(problem: ProblemArrays, delay_cost_per_kwh_h: float) -> ProblemArrays:
    """Return the problem with prices raised by the delay cost of each slot.

    Parameters
    ----------
    problem : ProblemArrays
    delay_cost_per_kwh_h : float
        Currency per kWh per hour after the plan start (>= 0).

    Returns
    -------
    ProblemArrays
        ``problem`` itself when the delay cost is 0, else a copy with both price
        arrays raised by ``delay_cost_per_kwh_h * h`` (``h`` = slot midpoint, hours).
    """
    if delay_cost_per_kwh_h == 0.0:
        return problem
    g = problem.grid
    tilt = delay_cost_per_kwh_h * (np.arange(g.n_slots) + 0.5) * g.step_h
    return dataclasses.replace(
        problem,
        price_import_per_kwh=problem.price_import_per_kwh + tilt,
        price_export_per_kwh=problem.price_export_per_kwh + tilt,
    )


def _lp_status(info: dict) -> str:
    """Report status of an LP/MILP/cvxpy plan: repaired if min-current cells were fixed."""
    if info.get("status") == "feasible":
        return "feasible"
    return "repaired" if info.get("repaired_cells") else "optimal"


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
    delay_cost_per_kwh_h: float = 0.0,
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
    delay_cost_per_kwh_h : float, default 0
        Objective cost of charging later (see the module docstring); the solvers see
        raised prices, the caller's ``problem`` is not changed.

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
    problem = with_delay_cost(problem, delay_cost_per_kwh_h)

    def report(used: str, status: str, reason: str, info: dict) -> SolverReport:
        return SolverReport(
            method=used,
            requested=method,
            status=status,
            reason=reason,
            solve_time_s=time.perf_counter() - t0,
            info={**info, "delay_cost_per_kwh_h": delay_cost_per_kwh_h}
            if delay_cost_per_kwh_h
            else info,
        )

    if method == "cvxpy" or customize is not None:
        if method not in ("cvxpy", "auto"):
            raise ValueError(
                "The 'customize' parameter of optimize needs method='cvxpy' (or "
                f"'auto'). Got method={method!r} instead."
            )
        rate, info = _run_cvxpy(problem, time_limit_s, customize, cvxpy_options)
        why = "requested" if method == "cvxpy" else "auto: a customize hook was given -> cvxpy"
        return rate, report("cvxpy", _lp_status(info), why, info)
    if method == "greedy":
        rate, info = _run_greedy(problem)
        return rate, report("greedy", "heuristic", "requested", info)
    if method in ("lp", "milp"):
        rate, info = _run_lp(problem, method == "milp", time_limit_s)
        return rate, report(method, _lp_status(info), "requested", info)

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
            if integer:
                budget = AUTO_MILP_TIME_LIMIT_S
                if time_limit_s is not None:
                    budget = min(budget, time_limit_s)
                try:
                    rate, info = _run_lp(problem, True, budget, accept_incumbent=True)
                except SolverError as e:
                    if e.status != "time_limit":
                        raise
                    used = "lp"  # no MILP plan within its budget: LP + repair
                    why += f"; the MILP found no plan in {budget:g} s -> LP + repair"
                    rate, info = _run_lp(problem, False, time_limit_s)
                else:
                    if info["status"] == "feasible":
                        why += (
                            f"; stopped at its {budget:g} s budget with a plan "
                            f"{info['mip_gap']:.2%} from the bound"
                        )
            else:
                rate, info = _run_lp(problem, False, time_limit_s)
            return rate, report(used, _lp_status(info), why, info)
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
    small = int((problem.pmax_kw > 0.0).sum()) <= AUTO_LP_MAX_CELLS
    if g_unmet <= 1e-6 or g_unmet <= info.get("floor_unmet_kwh", -1.0) + 1e-6:
        why = (
            "auto: greedy met every request"
            if g_unmet <= 1e-6
            else "auto: greedy left only the energy the EVs' own limits and windows cannot take"
        )
        if not small:
            return rate, report("greedy", "heuristic", why, info)
        return _lower_cost(problem, rate, info, (g_unmet, g_cost), why, time_limit_s, report)
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
            _lp_status(lp_info),
            f"auto: greedy left {g_unmet:.3f} kWh (weighted) unmet; the LP left {l_unmet:.3f}",
            lp_info,
        )
    info["lp"] = {"weighted_unmet_kwh": l_unmet, "cost": l_cost}
    return rate, report(
        "greedy", "heuristic", "auto: greedy left energy unmet but the LP did no better", info
    )


def _lower_cost(problem, rate, info, greedy_quality, why, time_limit_s, report):
    """Auto on a small problem greedy served: keep the LP plan if it is cheaper."""
    g_unmet, g_cost = greedy_quality
    try:
        lp_rate, lp_info = _run_lp(problem, False, time_limit_s)
    except SolverError as e:
        # the greedy plan is complete; a failed cost polish is not worth a warning
        info["lp"] = {"status": e.status, "error": str(e)}
        return rate, report("greedy", "heuristic", f"{why}; the LP failed ({e.status})", info)
    l_unmet, l_cost = plan_quality(problem, lp_rate)
    if round(l_unmet, 6) <= round(g_unmet, 6) and l_cost < g_cost - 1e-9 * max(1.0, abs(g_cost)):
        lp_info["greedy"] = {"weighted_unmet_kwh": g_unmet, "cost": g_cost}
        return lp_rate, report(
            "lp",
            _lp_status(lp_info),
            f"{why}; small problem: the LP plan costs {l_cost:.4f} < greedy {g_cost:.4f}",
            lp_info,
        )
    info["lp"] = {"weighted_unmet_kwh": l_unmet, "cost": l_cost}
    return rate, report("greedy", "heuristic", f"{why}; the LP was not cheaper", info)
