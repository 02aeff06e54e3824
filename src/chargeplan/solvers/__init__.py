"""Solver dispatch.

Every solver takes :class:`~chargeplan.problem.ProblemArrays` and returns the (S, T)
rate matrix in kW plus an info dict. Solvers never import each other; this module
chooses one.

``method="auto"`` policy (core): the greedy solver is used; it handles every feature
of the core model (node limits on every phase, EV/EVSE limits, min current, PV
surplus pricing). The LP solver (HiGHS) joins the policy when it lands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..problem import ProblemArrays

__all__ = ["SolverReport", "solve", "METHODS"]

METHODS = ("auto", "greedy")


@dataclass(frozen=True)
class SolverReport:
    """Which solver produced a plan, why, how it ended and how long it took.

    Attributes
    ----------
    method : str
        The solver that produced the plan (``"greedy"``, ...).
    requested : str
        The ``method`` the caller asked for.
    status : str
        ``"heuristic"`` (feasible, not proven optimal) or ``"optimal"``.
    reason : str
        Why this solver was used.
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


def _greedy(problem: ProblemArrays) -> tuple[np.ndarray, dict]:
    from .greedy import solve_greedy

    return solve_greedy(problem)


_REGISTRY: dict[str, Callable[[ProblemArrays], tuple[np.ndarray, dict]]] = {"greedy": _greedy}


def solve(problem: ProblemArrays, method: str = "auto") -> tuple[np.ndarray, SolverReport]:
    """Solve with the chosen method (see the module docstring for ``"auto"``).

    Parameters
    ----------
    problem : ProblemArrays
    method : {"auto", "greedy"}

    Returns
    -------
    power_kw : numpy.ndarray
        (S, T) rate in kW.
    report : SolverReport
    """
    if method == "auto":
        chosen, reason = "greedy", "auto: the core model needs no LP feature"
    elif method in _REGISTRY:
        chosen, reason = method, "requested"
    else:
        raise ValueError(
            f"The 'method' parameter of optimize must be one of {METHODS}. Got {method!r} instead."
        )
    t0 = time.perf_counter()
    power, info = _REGISTRY[chosen](problem)
    dt = time.perf_counter() - t0
    return power, SolverReport(
        method=chosen,
        requested=method,
        status="heuristic",
        reason=reason,
        solve_time_s=dt,
        info=info,
    )
