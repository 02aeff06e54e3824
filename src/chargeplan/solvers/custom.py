"""The planning LP as a cvxpy model that a notebook user can extend (optional extra).

:func:`build_cvxpy` states the same optimisation problem as :mod:`chargeplan.solvers.lp`
(same variables, constraints, rounding margins and objective tiers; see that module's
docstring) with named cvxpy variables and expressions, so a user can add terms and
constraints of their own before it is solved::

    import cvxpy as cp
    from chargeplan.solvers.custom import solve_cvxpy

    def smooth(model):
        model.objective += 0.01 * cp.sum_squares(model.site_import_kw)
        model.constraints.append(model.site_import_kw <= 40.0)

    rate_kw, info = solve_cvxpy(problem, customize=smooth)

Like ``method="lp"`` it is the LP relaxation; the min-current rule (0 or at least the
minimum in every cell, and never charging and discharging in one cell) is applied
afterwards by repair, re-solving the model with the user's terms and constraints.
By default (``repair="lock"``) one re-solve decides every cell: cells below their
minimum are fixed to 0 and the others get the minimum as lower bound, after raising
to the minimum, per session, as many of its cells below it (largest first) as their
energy can fill, so a session whose rates the optimum spread thinly (typical with
quadratic terms) keeps its energy. If that is infeasible, the same without raising
is tried, then lp.py's rule (``repair="zero"``: fix only the offending cells to 0 and
re-solve until none is left). With V2G bids, where the relaxation meets a bid by
charging and discharging one cell (the charge the larger side), the repair is run again
from the relaxation keeping the discharge in the bids' windows, and the plan with the
lower objective is kept, as in lp.py. See :func:`solve_cvxpy`.

cvxpy is imported lazily (``pip install chargeplan[cvxpy]``). Models are solved with
``warm_start=False`` (cvxpy's warm start made HiGHS re-solves far slower) and bounds
are declared on the variables (``Variable(bounds=...)``), which HiGHS takes as column
bounds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..exceptions import ChargeplanWarning, SolverError
from ..problem import ProblemArrays
from ._formulation import SAFETY as _SAFETY
from ._formulation import TIE_BREAK_PER_KWH as _TIE_BREAK_PER_KWH
from ._formulation import cells, node_rows, paid_cells, promote_cells
from ._formulation import penalty_weight as _penalty_weight

if TYPE_CHECKING:  # pragma: no cover
    import cvxpy as cp

__all__ = ["CvxpyModel", "build_cvxpy", "solve_cvxpy", "import_cvxpy"]

#: Name of each solver's time-limit option (seconds), for ``time_limit_s``.
_TIME_LIMIT_OPTION = {
    "HIGHS": "time_limit",
    "CLARABEL": "time_limit",
    "OSQP": "time_limit",
    "SCS": "time_limit_secs",
    "GUROBI": "TimeLimit",
}  # other solvers: pass their own option in ``**solver_kwargs``


def import_cvxpy():
    """Import cvxpy, or raise an ImportError saying how to install it.

    Returns
    -------
    module
        The ``cvxpy`` module.
    """
    try:
        import cvxpy
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The cvxpy solver path needs cvxpy: pip install chargeplan[cvxpy] "
            "(or pip install cvxpy)."
        ) from e
    return cvxpy


@dataclass(eq=False)
class CvxpyModel:
    """The planning problem as a cvxpy model (minimise ``objective`` s.t. ``constraints``).

    Variables cover only the cells where they can be non-zero: ``charge_cells`` has one
    entry per (session, slot) with ``pmax_kw > 0`` (listed in ``c_cells``),
    ``discharge_cells`` one per cell with ``dmax_kw > 0`` (``d_cells``). The (S, T)
    expressions ``charge_kw``, ``discharge_kw`` and ``net_kw`` place them on the grid.
    Add terms with ``model.objective += ...`` and constraints with
    ``model.constraints.append(...)``; rows of the (S, T) expressions follow
    ``problem.session_ids`` (e.g. ``model.charge_kw[problem.session_ids.index("tx-1")]``)
    and columns ``problem.grid``'s slots.

    Attributes
    ----------
    problem : ProblemArrays
        The arrays the model was built from.
    charge_cells : cvxpy.Variable
        (nc,) charge rate in kW of each cell in ``c_cells``, bounds ``[0, pmax_kw]``
        (upper bound 0 where a node row has no headroom left for rounding, as lp.py).
    discharge_cells : cvxpy.Variable
        (nd,) discharge rate in kW of each cell in ``d_cells``, bounds ``[0, dmax_kw]``
        (0 likewise, and once the V2G reserve is used up).
    unmet_kwh : cvxpy.Variable
        (S,) energy not delivered, bounds ``[0, energy_kwh]``.
    import_kw, export_kw : cvxpy.Variable
        (T,) mean site import and export in each slot (>= 0).
    peak_kw : cvxpy.Variable or None
        Mean import of the highest slot above ``peak_already_kw`` (demand charge only).
    soe_kwh : cvxpy.Variable or None
        (V, T) energy added to each V2G battery since arrival, at the end of each slot,
        bounds ``[-depth_kwh, energy_kwh]`` (the reserve less what rounding the charges
        down could lose); rows follow ``v2g_sessions``.
    bid_paid_kw, bid_short_kw : cvxpy.Variable or None
        (B, T) discharge paid by each bid, and committed discharge not given.
    charge_kw, discharge_kw, net_kw : cvxpy.Expression
        (S, T) charge, discharge and net rate (charge - discharge) in kW.
    energy_kwh : cvxpy.Expression
        (S,) energy added to each battery over the horizon (discharge costs
        ``1 / efficiency``).
    ev_load_kw : cvxpy.Expression
        (T,) mean net power of all EVs in each slot.
    site_import_kw : cvxpy.Expression
        (T,) mean net site import (base load - PV + EVs; negative = export), equal to
        ``import_kw - export_kw``.
    terms : dict of str to cvxpy.Expression
        The objective's parts: ``"unmet"``, ``"energy"``, ``"demand"``, ``"degradation"``,
        ``"bids"``, ``"tie_break"`` (their sum is the objective as built).
    groups : dict of str to cvxpy.Constraint
        The constraints by name (``"energy"``, ``"node_import"``, ``"node_export"``,
        ``"node_magnitude"``, ``"node_phasor_0"``, ``"node_phasor_1"``, ``"one_mode"``,
        ``"balance"``, ``"export_limit"``, ``"demand"``, ``"soe_first"``, ``"soe"``,
        ``"bid_members"``, ``"bid_total"``, ``"bid_commitment"``; only those the
        problem needs: node rows that can never bind are left out, as in the HiGHS
        LP), e.g. for their duals.
    constraints : list of cvxpy.Constraint
        Every constraint (the values of ``groups``, plus any the user appends).
    objective : cvxpy.Expression
        Scalar to minimise.
    c_cells, d_cells : tuple of numpy.ndarray
        (session index, slot index) of each charge and discharge cell.
    v2g_sessions : numpy.ndarray
        Indices of the sessions with a discharge cell (rows of ``soe_kwh``).
    """

    problem: ProblemArrays
    charge_cells: cp.Variable
    discharge_cells: cp.Variable
    unmet_kwh: cp.Variable
    import_kw: cp.Variable
    export_kw: cp.Variable
    peak_kw: cp.Variable | None
    soe_kwh: cp.Variable | None
    bid_paid_kw: cp.Variable | None
    bid_short_kw: cp.Variable | None
    charge_kw: cp.Expression
    discharge_kw: cp.Expression
    net_kw: cp.Expression
    energy_kwh: cp.Expression
    ev_load_kw: cp.Expression
    site_import_kw: cp.Expression
    terms: dict[str, Any]
    groups: dict[str, Any]
    constraints: list[Any]
    objective: Any
    c_cells: tuple[np.ndarray, np.ndarray]
    d_cells: tuple[np.ndarray, np.ndarray]
    v2g_sessions: np.ndarray

    def cvxpy_problem(self, extra_constraints: list | None = None) -> cp.Problem:
        """Return the ``cvxpy.Problem`` minimising ``objective`` subject to ``constraints``."""
        cvxpy = import_cvxpy()
        return cvxpy.Problem(
            cvxpy.Minimize(self.objective), list(self.constraints) + list(extra_constraints or [])
        )

    def rates_kw(self) -> tuple[np.ndarray, np.ndarray]:
        """(S, T) charge and discharge rates in kW of the last solve, clipped to their bounds."""
        p = self.problem
        c = np.zeros((p.n_sessions, p.n_slots))
        d = np.zeros_like(c)
        cs, ct = self.c_cells
        ds, dtt = self.d_cells
        if len(cs):
            c[cs, ct] = np.clip(_value(self.charge_cells), 0.0, p.pmax_kw[cs, ct])
        if len(ds):
            d[ds, dtt] = np.clip(_value(self.discharge_cells), 0.0, p.dmax_kw[ds, dtt])
        return c, d


def _value(var) -> np.ndarray:
    if var.value is None:
        raise SolverError("cvxpy returned no solution values", status="error")
    return np.asarray(var.value, dtype=np.float64).ravel()


def _mat(rows, cols, vals, shape) -> sp.csr_matrix:
    rows = np.asarray(rows, dtype=np.int64)
    vals = np.broadcast_to(np.asarray(vals, dtype=np.float64), rows.shape)
    return sp.csr_matrix((vals, (rows, np.asarray(cols, dtype=np.int64))), shape=shape)


def build_cvxpy(problem: ProblemArrays) -> CvxpyModel:
    """Build the planning LP of :mod:`chargeplan.solvers.lp` as a cvxpy model.

    Parameters
    ----------
    problem : ProblemArrays
        The problem arrays (see :func:`chargeplan.problem.build_problem`).

    Returns
    -------
    CvxpyModel
        Named variables, expressions, constraints and the objective (to minimise).

    Raises
    ------
    ImportError
        If cvxpy is not installed.
    """
    cvxpy = import_cvxpy()
    p = problem
    S, T = p.n_sessions, p.n_slots
    dt = p.grid.step_h
    f = p.present
    cs, ct, ds, dtt, v2g, v_pos = cells(p)
    nc, nd, nv = len(cs), len(ds), len(v2g)
    B = len(p.bid_price_per_kwh)
    step_kw = p.round_step_kw
    energy = p.energy_kwh
    fc, fd = f[cs, ct], f[ds, dtt]
    c_hi = p.pmax_kw[cs, ct].copy()
    d_hi = p.dmax_kw[ds, dtt].copy()

    # -- numbers first (rounding margins and the cells they switch off), as lp.py --------
    # node rows (linear, phasor polygon or sum of magnitudes), as in lp.py
    node = node_rows(p, cs, ct, ds, dtt, step_kw)
    c_hi[node.c_off] = 0.0
    d_hi[node.d_off] = 0.0
    # EVs may push export to max(limit, PV export) at most, less the charges' rounding
    x_room = None
    if np.isfinite(p.export_limit_kw) and nd:
        low = p.net_base_low_kw
        x_cap = np.maximum(p.export_limit_kw, np.maximum(-low, 0.0)) + low
        c_margin = np.bincount(ct, weights=step_kw[cs] * fc, minlength=T)
        x_room = x_cap - c_margin - _SAFETY
        d_hi[x_room[dtt] < 0.0] = 0.0
        x_room = np.maximum(x_room, 0.0)
    # V2G reserve: rounding each charge down can lower the battery's running energy
    # below e; keep that much of the reserve unused, and stop discharging once it is used
    e_lo = np.zeros((nv, T))
    if nv:
        loss = np.cumsum(step_kw[v2g, None] * f[v2g] * dt * (p.pmax_kw[v2g] > 0.0), axis=1)
        soe_room = p.depth_kwh[v2g, None] - loss - _SAFETY
        e_lo = -np.maximum(soe_room, 0.0)
        d_hi[soe_room[v_pos[ds], dtt] <= 0.0] = 0.0

    # -- variables (bounds on the variables: HiGHS takes them as column bounds) ----------
    c = cvxpy.Variable(nc, name="charge_kw", bounds=[np.zeros(nc), c_hi])
    d = cvxpy.Variable(nd, name="discharge_kw", bounds=[np.zeros(nd), d_hi])
    u = cvxpy.Variable(S, name="unmet_kwh", bounds=[np.zeros(S), energy.astype(np.float64)])
    imp = cvxpy.Variable(T, name="import_kw", bounds=[np.zeros(T), np.full(T, np.inf)])
    exp = cvxpy.Variable(T, name="export_kw", bounds=[np.zeros(T), np.full(T, np.inf)])
    z = None
    if p.demand_charge_per_kw > 0.0:
        z = cvxpy.Variable(name="peak_kw", bounds=[0.0, np.inf])
    e = w = q = None
    if nv:
        e_hi = np.repeat(energy[v2g][:, None], T, axis=1)
        e = cvxpy.Variable((nv, T), name="soe_kwh", bounds=[e_lo, e_hi])
    if B:
        w_hi = p.bid_max_kw[:, None] * p.bid_window
        q_hi = p.bid_committed_kw[:, None] * p.bid_window
        w = cvxpy.Variable((B, T), name="bid_paid_kw", bounds=[np.zeros((B, T)), w_hi])
        q = cvxpy.Variable((B, T), name="bid_short_kw", bounds=[np.zeros((B, T)), q_hi])

    # -- expressions ---------------------------------------------------------------------
    cell_c, cell_d = np.arange(nc), np.arange(nd)
    charge_kw = cvxpy.reshape(_mat(cs * T + ct, cell_c, 1.0, (S * T, nc)) @ c, (S, T), order="C")
    discharge_kw = cvxpy.reshape(
        _mat(ds * T + dtt, cell_d, 1.0, (S * T, nd)) @ d, (S, T), order="C"
    )
    ev_load_kw = _mat(ct, cell_c, fc, (T, nc)) @ c - _mat(dtt, cell_d, fd, (T, nd)) @ d
    site_import_kw = p.net_base_kw + ev_load_kw
    energy_kwh = (
        _mat(cs, cell_c, fc * dt, (S, nc)) @ c
        - _mat(ds, cell_d, fd * dt / p.efficiency[ds], (S, nd)) @ d
    )

    # -- constraints ---------------------------------------------------------------------
    groups: dict[str, Any] = {}
    groups["energy"] = energy_kwh + u == energy
    for block in node.blocks:
        lhs = block.a_c @ c + block.a_d @ d if nd else block.a_c @ c
        groups[block.name] = lhs <= block.upper
    # convex hull of "charge or discharge" in every V2G cell: c / pmax + d / dmax <= 1
    both, ic, id_ = np.intersect1d(cs * T + ct, ds * T + dtt, return_indices=True)
    if len(both):
        nb = np.arange(len(both))
        h_c = _mat(nb, ic, 1.0 / p.pmax_kw[cs[ic], ct[ic]], (len(both), nc))
        h_d = _mat(nb, id_, 1.0 / p.dmax_kw[ds[id_], dtt[id_]], (len(both), nd))
        groups["one_mode"] = h_c @ c + h_d @ d <= 1.0
    # site balance: imp - exp = base - pv + sum (c - d) f
    groups["balance"] = imp - exp == site_import_kw
    if x_room is not None:
        groups["export_limit"] = -ev_load_kw <= x_room
    if z is not None:
        groups["demand"] = imp - z <= p.peak_already_kw
    # V2G state of energy: e[t] = e[t-1] + (c - d/eta) f dt
    if e is not None:
        vc_mask = v_pos[cs] >= 0
        flow_c = _mat(
            v_pos[cs[vc_mask]] * T + ct[vc_mask], cell_c[vc_mask], fc[vc_mask] * dt, (nv * T, nc)
        )
        flow_d = _mat(v_pos[ds] * T + dtt, cell_d, fd * dt / p.efficiency[ds], (nv * T, nd))
        flow = cvxpy.reshape(flow_c @ c - flow_d @ d, (nv, T), order="C")
        groups["soe_first"] = e[:, 0] == flow[:, 0]
        if T > 1:
            groups["soe"] = e[:, 1:] - e[:, :-1] == flow[:, 1:]
    # bids: w[b,t] <= sum_{s in b} d f ; sum_b w <= sum_{s in any b} d f ; w + q >= committed
    if w is not None and q is not None:
        # a bid pays for the discharge inside its window only, each kWh once
        g = p.bid_overlap[:, ds, dtt]  # (B, nd)
        kb, kcell = np.nonzero(g > 0.0)
        members = _mat(kb * T + dtt[kcell], kcell, g[kb, kcell], (B * T, nd))
        groups["bid_members"] = cvxpy.reshape(w, (B * T,), order="C") <= members @ d
        if B > 1:
            gu = p.bid_union[ds, dtt]
            anym = np.nonzero(gu > 0.0)[0]
            total = _mat(dtt[anym], anym, gu[anym], (T, nd))
            groups["bid_total"] = cvxpy.sum(w, axis=0) <= total @ d
        groups["bid_commitment"] = w + q >= p.bid_committed_kw[:, None] * p.bid_window

    # -- objective tiers (design.md section 5) -------------------------------------------
    zero = cvxpy.Constant(0.0)
    p_imp = p.price_import_per_kwh
    p_exp = np.minimum(p.price_export_per_kwh, p_imp)  # export valued at most at import price
    terms: dict[str, Any] = {
        "unmet": (_penalty_weight(p) * p.priority) @ u,
        "energy": (p_imp * dt) @ imp - (p_exp * dt) @ exp,
        "demand": p.demand_charge_per_kw * z if z is not None else zero,
        "degradation": (p.degradation_per_kwh[ds] * fd * dt) @ d if nd else zero,
        "bids": zero,
        "tie_break": (_TIE_BREAK_PER_KWH * (ct + 1) / T * fc * dt) @ c if nc else zero,
    }
    if w is not None and q is not None:
        terms["bids"] = dt * (
            cvxpy.sum(p.bid_penalty_per_kwh @ q) - cvxpy.sum(p.bid_price_per_kwh @ w)
        )
    objective = sum(terms.values(), zero)
    return CvxpyModel(
        problem=p,
        charge_cells=c,
        discharge_cells=d,
        unmet_kwh=u,
        import_kw=imp,
        export_kw=exp,
        peak_kw=z,
        soe_kwh=e,
        bid_paid_kw=w,
        bid_short_kw=q,
        charge_kw=charge_kw,
        discharge_kw=discharge_kw,
        net_kw=charge_kw - discharge_kw,
        energy_kwh=energy_kwh,
        ev_load_kw=ev_load_kw,
        site_import_kw=site_import_kw,
        terms=terms,
        groups=groups,
        constraints=list(groups.values()),
        objective=objective,
        c_cells=(cs, ct),
        d_cells=(ds, dtt),
        v2g_sessions=v2g,
    )


def _solve(
    prob, solver: str, time_limit_s: float | None, solver_kwargs: dict
) -> tuple[str, float, float]:
    """Solve a cvxpy problem; return (status, objective, solver seconds) or raise SolverError."""
    cvxpy = import_cvxpy()
    kwargs = dict(solver_kwargs)
    if time_limit_s is not None:
        opt = _TIME_LIMIT_OPTION.get(solver.upper())
        if opt is None:
            raise ValueError(
                f"time_limit_s is not mapped for cvxpy solver {solver!r}; pass the "
                "solver's own time-limit option as a keyword argument instead."
            )
        kwargs.setdefault(opt, float(time_limit_s))
    kwargs.setdefault("warm_start", False)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # the status is mapped below; cvxpy's own "may be inaccurate" warning is noise
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            prob.solve(solver=solver, **kwargs)
    except cvxpy.error.SolverError as err:
        raise SolverError(f"cvxpy solver {solver} failed: {err}", status="error") from err
    wall = time.perf_counter() - t0
    st = prob.status
    name = f"cvxpy solver {solver}"
    if st in (cvxpy.INFEASIBLE, cvxpy.INFEASIBLE_INACCURATE):
        raise SolverError(f"{name}: the model is infeasible", status="infeasible")
    if st in (cvxpy.UNBOUNDED, cvxpy.UNBOUNDED_INACCURATE):
        raise SolverError(f"{name}: the model is unbounded", status="unbounded")
    if st == "infeasible_or_unbounded":  # cvxpy.settings.INFEASIBLE_OR_UNBOUNDED
        raise SolverError(f"{name}: the model is infeasible or unbounded", status="infeasible")
    if st == cvxpy.USER_LIMIT:
        if time_limit_s is not None:
            raise SolverError(
                f"{name} stopped at a limit (time limit {time_limit_s} s)", status="time_limit"
            )
        raise SolverError(f"{name} stopped at a limit (iterations)", status="limit")
    if st not in (cvxpy.OPTIMAL, cvxpy.OPTIMAL_INACCURATE) or prob.value is None:
        raise SolverError(f"{name} ended with status {st!r}", status="error")
    status = "optimal"
    if st == cvxpy.OPTIMAL_INACCURATE:
        status = "optimal_inaccurate"
        warnings.warn(
            f"{name} returned an inaccurate optimum; the plan is still checked, but a "
            "tighter tolerance or another solver may be needed.",
            ChargeplanWarning,
            stacklevel=4,
        )
    stats = prob.solver_stats
    t_solver = stats.solve_time if stats is not None and stats.solve_time is not None else wall
    return status, float(prob.value), float(t_solver)


def _small_cells(
    model: CvxpyModel, c: np.ndarray, d: np.ndarray, keep_discharge: np.ndarray | None = None
):
    """Charge and discharge cells that break the min-current rule (as lp.py).

    A cell breaks it when its rate is above 0 but below the minimum, or, for a cell that
    both charges and discharges, on the smaller side (on the charge side where
    ``keep_discharge``, (S, T) bool, is True).

    Returns
    -------
    small_c, small_d : numpy.ndarray
        Masks over ``c_cells`` and ``d_cells`` of the cells breaking the rule.
    mixed_c, mixed_d : numpy.ndarray
        The cells among them that are only there for charging and discharging at once.
    """
    p = model.problem
    tol = 1e-7
    cs, ct = model.c_cells
    ds, dtt = model.d_cells
    cv, dv = c[cs, ct], d[ds, dtt]
    small_c = (cv > tol) & (cv < p.pmin_kw[cs] - tol)
    small_d = (dv > tol) & (dv < p.dmin_kw[ds] - tol)
    mixed_c = np.zeros_like(small_c)
    mixed_d = np.zeros_like(small_d)
    both = ((c > tol) & (d > tol)).ravel()
    if both.any():
        flat_c, flat_d = c.ravel(), d.ravel()
        drop_c = flat_c < flat_d  # keep the larger side ...
        if keep_discharge is not None:
            drop_c |= keep_discharge.ravel()  # ... or the discharge where told
        mixed_c = np.isin(cs * p.n_slots + ct, np.flatnonzero(both & drop_c))
        mixed_d = np.isin(ds * p.n_slots + dtt, np.flatnonzero(both & ~drop_c))
    return small_c | mixed_c, small_d | mixed_d, mixed_c, mixed_d


def _fix_constraints(model: CvxpyModel, off_c, off_d, lo_c=None, lo_d=None) -> list:
    out = []
    for var, off, lo in ((model.charge_cells, off_c, lo_c), (model.discharge_cells, off_d, lo_d)):
        i_off = np.flatnonzero(off)
        if len(i_off):
            out.append(var[i_off] == 0.0)
        if lo is not None:
            i_on = np.flatnonzero(lo > 0.0)
            if len(i_on):
                out.append(var[i_on] >= lo[i_on])
    return out


def _repair(
    model: CvxpyModel,
    c: np.ndarray,
    d: np.ndarray,
    resolve,
    mode: str,
    max_rounds: int,
    keep_discharge: np.ndarray | None = None,
):
    """Re-solve until every cell keeps the min-current rule; see :func:`solve_cvxpy`.

    Without ``lock`` (as lp.py) each round fixes to 0 the cells that break the rule;
    that keeps the model feasible whenever a plan of zeros is, but can take many
    rounds, so the last allowed round locks. A locking round decides every cell: per
    session, enough of the cells below the minimum (largest first) are raised to the
    minimum to carry the energy they had, the other cells below the minimum (and at
    0) are fixed to 0, and every cell kept on gets the minimum as lower bound; one
    round then normally settles it.

    Returns
    -------
    c, d : numpy.ndarray
        (S, T) charge and discharge rates.
    n : int
        Cells that broke the rule, over all rounds.
    """
    p = model.problem
    tol = 1e-7
    dt = p.grid.step_h
    cs, ct = model.c_cells
    ds, dtt = model.d_cells
    fixed_c = np.zeros(len(cs), dtype=bool)
    fixed_d = np.zeros(len(ds), dtype=bool)
    n = 0
    for k in range(max_rounds + 1):
        small_c, small_d, mixed_c, mixed_d = _small_cells(model, c, d, keep_discharge)
        if not (small_c.any() or small_d.any()):
            return c, d, n
        if k == max_rounds:
            break
        n += int(small_c.sum() + small_d.sum())
        if mode != "zero" or k == max_rounds - 1:
            cv, dv = c[cs, ct], d[ds, dtt]
            up_c = np.zeros(len(cs), dtype=bool)
            up_d = np.zeros(len(ds), dtype=bool)
            if mode == "lock":
                up_c = promote_cells(
                    cs, cv, small_c & ~mixed_c & ~fixed_c, p.pmin_kw[cs], p.present[cs, ct] * dt
                )
                up_d = promote_cells(
                    ds, dv, small_d & ~mixed_d & ~fixed_d, p.dmin_kw[ds], p.present[ds, dtt] * dt
                )
            fixed_c |= small_c & ~up_c
            fixed_d |= small_d & ~up_d
            off_c = fixed_c | ((cv < p.pmin_kw[cs] - tol) & ~up_c)
            off_d = fixed_d | ((dv < p.dmin_kw[ds] - tol) & ~up_d)
            lo_c = np.where(off_c, 0.0, np.minimum(p.pmin_kw[cs], p.pmax_kw[cs, ct]))
            lo_d = np.where(off_d, 0.0, np.minimum(p.dmin_kw[ds], p.dmax_kw[ds, dtt]))
            resolve(_fix_constraints(model, off_c, off_d, lo_c, lo_d))
        else:
            fixed_c |= small_c
            fixed_d |= small_d
            resolve(_fix_constraints(model, fixed_c, fixed_d))
        c, d = model.rates_kw()
    raise SolverError(f"did not settle in {max_rounds} rounds", status="repair_failed")


def solve_cvxpy(
    problem: ProblemArrays,
    *,
    customize: Callable[[CvxpyModel], CvxpyModel | None] | None = None,
    solver: str = "HIGHS",
    time_limit_s: float | None = None,
    repair: bool | str = True,
    max_repair_rounds: int = 25,
    **solver_kwargs: Any,
) -> tuple[np.ndarray, dict]:
    """Solve the planning problem with cvxpy, optionally with the user's own terms.

    Parameters
    ----------
    problem : ProblemArrays
    customize : callable, optional
        Called as ``customize(model)`` with the :class:`CvxpyModel` before solving; may
        add objective terms (``model.objective += ...``) and constraints
        (``model.constraints.append(...)``), and return ``None`` or a new model.
    solver : str, default "HIGHS"
        cvxpy solver name. HiGHS solves the LP and convex QPs (e.g. ``sum_squares``
        terms); use ``"CLARABEL"`` for other conic terms.
    time_limit_s : float, optional
        Time limit of each solver run (mapped to the solver's own option).
    repair : {True, "lock", "zero", False}, default True
        How the min-current rule is applied after the relaxation (see the module
        docstring). ``True`` = ``"lock"``: one re-solve with every cell fixed to 0 or
        bounded below by its minimum (cells raised to keep each session's energy);
        if infeasible, without raising, then ``"zero"``. ``"zero"`` (lp.py's rule):
        only cells breaking the rule are fixed to 0, re-solving until none is left
        (the last allowed round locks). ``False``: the relaxation's rates are
        returned (they may break the rule; ``objective`` is the relaxation's).
    max_repair_rounds : int, default 25
        Most re-solves of the repair.
    **solver_kwargs
        Passed to ``cvxpy.Problem.solve`` (solver options, ``verbose``); ``warm_start``
        defaults to False.

    Returns
    -------
    rate_kw : numpy.ndarray
        (S, T) net rate in kW (negative = discharge).
    info : dict
        ``status`` (``"optimal"``, ``"optimal_inaccurate"``), ``objective`` (of the
        returned plan, with the user's terms), ``relaxation_objective``,
        ``repaired_cells`` (cells that broke the rule), ``repair_rounds`` (successful
        re-solves), ``repair_strategy`` (``None`` when no repair was needed, else
        ``"lock"``, ``"lock_no_promotion"`` or ``"zero"``), ``bid_repair``
        (``None``; ``"kept_discharge"`` or ``"tried"`` where a bid-paid cell both
        charged and discharged in the relaxation: the repair kept the discharge there,
        or tried and the first repair was better), ``solver``,
        ``solve_time_s`` (solver time of all runs), ``build_time_s``, ``n_variables``,
        ``n_constraints``, ``customized`` and ``model`` (the solved
        :class:`CvxpyModel`, with the values of the last solve).

    Raises
    ------
    SolverError
        The solver failed, hit the time limit, or the model (or the repair) is
        infeasible or unbounded; ``status`` says which.
    ImportError
        If cvxpy is not installed.
    """
    if repair not in (True, False, "lock", "zero"):
        raise ValueError(
            "The 'repair' parameter of solve_cvxpy must be True, False, 'lock' or 'zero'. "
            f"Got {repair!r} instead."
        )
    if not (isinstance(max_repair_rounds, int) and max_repair_rounds >= 1):
        raise ValueError(
            "The 'max_repair_rounds' parameter of solve_cvxpy must be an int >= 1. "
            f"Got {max_repair_rounds!r} instead."
        )
    t0 = time.perf_counter()
    model = build_cvxpy(problem)
    if customize is not None:
        out = customize(model)
        if out is not None:
            if not isinstance(out, CvxpyModel):
                raise TypeError(
                    f"customize must return None or a CvxpyModel. Got {type(out).__name__} instead."
                )
            model = out
    prob = model.cvxpy_problem()
    t_build = time.perf_counter() - t0
    status, objective, t_solve = _solve(prob, solver, time_limit_s, solver_kwargs)
    c, d = model.rates_kw()
    info: dict[str, Any] = {
        "solver": solver,
        "status": status,
        "relaxation_objective": objective,
        "build_time_s": t_build,
        "n_variables": int(sum(v.size for v in prob.variables())),
        "n_constraints": int(sum(k.size for k in prob.constraints)),
        "customized": customize is not None,
        "repaired_cells": 0,
        "repair_rounds": 0,
        "repair_strategy": None,
    }
    if repair:
        last_extra: list = []

        def resolve(extra: list) -> None:
            nonlocal status, objective, t_solve, last_extra
            status, objective, t2 = _solve(
                model.cvxpy_problem(extra), solver, time_limit_s, solver_kwargs
            )
            t_solve += t2
            last_extra = extra
            info["repair_rounds"] += 1

        relaxed = (c, d)
        modes = ["zero"] if repair == "zero" else ["lock", "lock_no_promotion", "zero"]
        for strategy in modes:
            try:
                c, d, n = _repair(model, *relaxed, resolve, strategy, max_repair_rounds)
                break
            except SolverError as err:
                # a locking round can be infeasible (capacity, V2G reserve, user
                # constraints): try the next mode
                if strategy != modes[-1] and err.status == "infeasible":
                    continue
                raise SolverError(f"min-current repair failed: {err}", status=err.status) from err
        info["repaired_cells"] = n
        info["repair_strategy"] = strategy if info["repair_rounds"] else None
        info["bid_repair"] = None
        # As lp.py: where the relaxation meets a bid by charging and discharging one cell,
        # with the charge the larger side, the repair keeps the charge and the bid is
        # lost. Repair again from the relaxation keeping the discharge in paid cells
        # (fixing only cells that break the rule, so the charge can move), keep the better.
        paid = paid_cells(model.problem)
        c0, d0 = relaxed
        tol = 1e-7
        if paid is not None and ((c0 > tol) & (d0 > tol) & paid & (c0 >= d0)).any():
            obj_a, extra_a = objective, last_extra
            try:
                c_b, d_b, n_b = _repair(
                    model, c0, d0, resolve, "zero", max_repair_rounds, keep_discharge=paid
                )
            except SolverError:
                better = False
            else:
                better = objective < obj_a - 1e-9 * (1.0 + abs(obj_a))
            if better:
                c, d, n = c_b, d_b, n_b
                info["repaired_cells"] = n
                info["repair_strategy"] = "zero"
                info["bid_repair"] = "kept_discharge"
            else:
                resolve(extra_a)  # the model's values (and c, d) back to the first plan
                c, d = model.rates_kw()
                info["bid_repair"] = "tried"
        info["status"] = status
    info["objective"] = objective
    info["solve_time_s"] = t_solve
    info["model"] = model
    return c - d, info
