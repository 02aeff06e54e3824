"""LP build and solve time, direct HiGHS versus cvxpy -> HiGHS, and warm re-solves.

Issue requirement: LP build and solve time for N = 100, 1 000, 5 000 sessions x 96 slots,
and the same model solved through cvxpy -> HiGHS in the same run (ratio). Targets: model
build <= 5 % of solve time; >= 3x faster end to end than cvxpy -> HiGHS at N = 1 000; a
warm re-solve after one arrival >= 4x faster than a cold solve at N = 1 000.

What is measured (all on prebuilt :class:`~chargeplan.problem.ProblemArrays`, the LP
relaxation without the min-current repair, so both paths solve the same LP):

* direct: ``solve_lp(problem, repair=False)`` end to end, and the same steps timed one
  by one: ``build_lp`` (scipy.sparse arrays), ``passModel`` (load into HiGHS), HiGHS
  ``run`` and reading the solution back;
* cvxpy: ``solve_cvxpy(problem, repair=False)`` end to end (cvxpy model construction,
  cvxpy canonicalisation, HiGHS); objective values of both paths are compared;
* warm: :class:`chargeplan.solvers.warm.LpSession` solving N sessions cold versus
  re-solving after one arrival (N - 1 sessions solved first, then the N-th added; codes
  ``arange``; ``verify=False``), and the public :class:`chargeplan.Replanner` path
  (``add_session`` + ``plan()``, which adds validation, the min-current repair, rounding
  and the independent check);
* a V2G variant of ``loose`` (sessions with a described battery become V2G on
  bidirectional EVSEs, export paid at the import price), direct versus cvxpy.

The machine is shared: every number is the median of repeats, ratios are taken between
medians of the same run, and the load average is recorded.

Usage::

    python benchmarks/bench_lp.py            # full run, ~8-10 min (N = 100, 1 000, 5 000)
    python benchmarks/bench_lp.py --quick    # smoke test, N = 100 only, < 60 s

A full run writes ``benchmarks/results/lp.json`` and ``benchmarks/lp.md``; ``--quick``
only prints (unless ``--out`` / ``--md`` are given).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "chargeplan-bench-numba-cache")
)
for p in (str(ROOT / "src"), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import N_SLOTS, build_scenario, machine_info, median  # noqa: E402

import chargeplan as cp  # noqa: E402
from chargeplan.exceptions import SolverError  # noqa: E402
from chargeplan.problem import build_problem  # noqa: E402
from chargeplan.solvers.lp import _highs, _rates, _run, build_lp, solve_lp  # noqa: E402
from chargeplan.solvers.warm import LpSession  # noqa: E402

TARGET_BUILD_SHARE = 0.05  # build <= 5 % of solve time
TARGET_CVXPY_RATIO = 3.0  # direct >= 3x faster than cvxpy at N = 1 000
TARGET_WARM_RATIO = 4.0  # warm re-solve >= 4x faster than cold at N = 1 000


# -- inputs ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    """A scenario as solver input."""

    name: str
    n: int
    site: cp.Site
    sessions: list[cp.Session]
    tariff: cp.Tariff
    kwargs: dict[str, Any]
    meta: dict[str, Any]

    def problem(self, sessions: list[cp.Session] | None = None):
        """ProblemArrays of ``sessions`` (default: all)."""
        sessions = self.sessions if sessions is None else sessions
        kw = {k: v for k, v in self.kwargs.items() if k != "tariff"}
        grid = cp.validate(self.site, sessions, tariff=self.tariff, **kw)
        return build_problem(self.site, sessions, grid, self.tariff)


def charge_only_case(kind: str, n: int) -> Case:
    """The benchmark scenario with every session charge-only."""
    sc = build_scenario(kind, n)
    sessions = [dataclasses.replace(s, v2g=False) for s in sc.sessions]
    return Case(kind, n, sc.site, sessions, sc.tariff, sc.optimize_kwargs(), sc.meta)


def v2g_case(n: int) -> Case:
    """``loose`` with V2G: sessions with a described battery (about 30 %) may discharge.

    Their EVSEs become bidirectional, the driver's reserve is 20 % state of charge, and
    export is paid at the import price (so discharging at the evening peak pays).
    """
    sc = build_scenario("loose", n)
    v2g_evses = {
        s.evse
        for s in sc.sessions
        if s.battery_capacity_kwh is not None and s.soc_now_pct is not None
    }
    sessions = [
        dataclasses.replace(s, v2g=True, soc_min_pct=20.0) if s.evse in v2g_evses else s
        for s in sc.sessions
    ]
    evses = [
        dataclasses.replace(e, bidirectional=True) if e.id in v2g_evses else e
        for e in sc.site.evses
    ]
    site = dataclasses.replace(sc.site, evses=evses)
    price = sc.tariff.import_price_per_kwh
    tariff = cp.Tariff(import_price_per_kwh=price, export_price_per_kwh=price)
    meta = dict(sc.meta, v2g_sessions=len(v2g_evses))
    return Case("loose-v2g", n, site, sessions, tariff, sc.optimize_kwargs(), meta)


# -- timing helpers -------------------------------------------------------------------------
def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds and result of one call, with the garbage collector collected and paused."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out
    finally:
        gc.enable()


def _ms(xs: list[float]) -> dict[str, Any]:
    """Median and spread in ms of durations in seconds (None entries dropped)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"median_ms": None, "min_ms": None, "max_ms": None, "n": 0}
    a = np.asarray(xs) * 1e3
    return {
        "median_ms": float(np.median(a)),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "n": len(xs),
    }


def _load() -> float:
    return os.getloadavg()[0]


def _rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return abs(a - b) / max(abs(b), 1e-12)


# -- direct HiGHS ---------------------------------------------------------------------------
def _direct_parts(problem, time_limit_s: float | None, options: dict | None) -> dict[str, Any]:
    """The steps of ``solve_lp(repair=False)``, timed one by one (one run)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        model = build_lp(problem)
        t1 = time.perf_counter()
        h = _highs(model, time_limit_s, options)
        t2 = time.perf_counter()
        status = _run(h)
        t3 = time.perf_counter()
        x = np.asarray(h.getSolution().col_value)
        c, d = _rates(problem, model, x)
        t4 = time.perf_counter()
    finally:
        gc.enable()
    info = h.getInfo()
    return {
        "build": t1 - t0,
        "pass": t2 - t1,
        "run": t3 - t2,
        "read": t4 - t3,
        "total": t4 - t0,
        "status": status,
        "objective": float(info.objective_function_value),
        "iterations": int(info.simplex_iteration_count),
        "ipm_iterations": int(info.ipm_iteration_count),
        "n_rows": model.n_rows,
        "n_cols": model.n_cols,
        "nnz": int(model.matrix.nnz),
    }


def _node_rows_info(problem) -> dict[str, Any] | None:
    """``_formulation.node_rows`` inside ``build_lp``: seconds, rows kept and left out."""
    try:
        from chargeplan.solvers import _formulation as f

        model = build_lp(problem)
        cs, ct = model.c_cells
        ds, dtt = model.d_cells
        step = getattr(problem, "round_step_kw", None)  # as build_lp
        if step is None:
            step = np.where(problem.dc, 1e-4, problem.kw_per_a * 0.1)
        times = []
        for _ in range(3):
            t, rows = _timed(lambda: f.node_rows(problem, cs, ct, ds, dtt, step))
            times.append(t)
        return {
            "seconds": median(times),
            "kept": int(sum(len(b.upper) for b in rows.blocks)),
            "pruned": int(getattr(rows, "pruned", 0)),
        }
    except Exception:  # internals moved: optional
        return None


def _unpruned(problem, repeats: int) -> dict[str, Any] | None:
    """Size and build time of the model with every node row (no pruning), for reference."""
    try:
        times = []
        for _ in range(repeats):
            t, model = _timed(lambda: build_lp(problem, prune_rows=False))
            times.append(t)
    except TypeError:  # no pruning in this version
        return None
    return {"n_rows": model.n_rows, "nnz": int(model.matrix.nnz), "build_ms": _ms(times)}


def bench_direct(
    problem,
    repeats: int,
    time_limit_s: float | None,
    options: dict | None = None,
    e2e: bool = True,
) -> dict[str, Any]:
    """Direct path: parts and (``e2e``) ``solve_lp`` end to end, interleaved.

    Without ``e2e`` (large cases) the end-to-end time is the sum of the parts, which is
    what ``solve_lp(repair=False)`` does.
    """
    parts: list[dict[str, Any]] = []
    times: list[float] = []
    objective = None
    error = None
    for _ in range(repeats):
        try:
            parts.append(_direct_parts(problem, time_limit_s, options))
            if e2e:
                t, (_, info) = _timed(
                    lambda: solve_lp(
                        problem, repair=False, time_limit_s=time_limit_s, highs_options=options
                    )
                )
                times.append(t)
                objective = info["objective"]
            else:
                times.append(parts[-1]["total"])
        except SolverError as exc:
            error = f"{exc.status}: {exc}"
            break
    out: dict[str, Any] = {
        "highs_options": options or "defaults",
        "error": error,
        "repeats": len(times),
        "e2e_is_sum_of_parts": not e2e,
    }
    if parts:
        for k in ("build", "pass", "run", "read", "total"):
            out[f"{k}_ms"] = _ms([p[k] for p in parts])
        last = parts[-1]
        out.update(
            {k: last[k] for k in ("n_rows", "n_cols", "nnz", "iterations", "ipm_iterations")}
        )
        out["objective"] = objective if objective is not None else last["objective"]
    else:
        model = build_lp(problem)
        out.update(n_rows=model.n_rows, n_cols=model.n_cols, nnz=int(model.matrix.nnz))
    out["solve_lp_ms"] = _ms(times)
    return out


# -- cvxpy ----------------------------------------------------------------------------------
def bench_cvxpy(problem, repeats: int, time_limit_s: float | None) -> dict[str, Any]:
    """``solve_cvxpy(repair=False)`` end to end, with its parts from the info dict."""
    from chargeplan.solvers.custom import solve_cvxpy

    e2e, build, solver = [], [], []
    objective, error = None, None
    for _ in range(repeats):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t, (_, info) = _timed(
                    lambda: solve_cvxpy(problem, repair=False, time_limit_s=time_limit_s)
                )
        except SolverError as exc:
            error = f"{exc.status}: {exc}"
            break
        e2e.append(t)
        build.append(info["build_time_s"])
        solver.append(info["solve_time_s"])
        objective = info["objective"]
    other = [e - b - s for e, b, s in zip(e2e, build, solver, strict=True)]
    return {
        "error": error,
        "repeats": len(e2e),
        "e2e_ms": _ms(e2e),
        "model_ms": _ms(build),
        "canonicalize_ms": _ms(other),
        "highs_ms": _ms(solver),
        "objective": objective,
    }


def _warm_up_cvxpy() -> None:
    """Import cvxpy and solve a tiny model once (the first call costs ~1 s)."""
    from chargeplan.solvers.custom import solve_cvxpy

    case = charge_only_case("loose", 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solve_cvxpy(case.problem(), repair=False)
        solve_lp(case.problem(), repair=False)


# -- warm re-solve --------------------------------------------------------------------------
class _PartTimer:
    """Time ``build_lp`` and ``_run`` inside :mod:`chargeplan.solvers.warm` (by patching)."""

    def __init__(self) -> None:
        self.t = {"build": 0.0, "run": 0.0}

    def __enter__(self) -> _PartTimer:
        from chargeplan.solvers import warm

        self._saved = (warm.build_lp, warm._run)

        def build(*a, **k):
            t0 = time.perf_counter()
            try:
                return self._saved[0](*a, **k)
            finally:
                self.t["build"] += time.perf_counter() - t0

        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return self._saved[1](*a, **k)
            finally:
                self.t["run"] += time.perf_counter() - t0

        warm.build_lp, warm._run = build, run
        return self

    def __exit__(self, *exc: object) -> None:
        from chargeplan.solvers import warm

        warm.build_lp, warm._run = self._saved


def _timed_parts(fn: Callable[[], Any]) -> tuple[float, Any, dict[str, float]]:
    """Like :func:`_timed`, also returning build / HiGHS run / other seconds of an LpSession."""
    with _PartTimer() as pt:
        t, out = _timed(fn)
    parts = dict(pt.t)
    parts["other"] = t - parts["build"] - parts["run"]
    return t, out, parts


def bench_warm(case: Case, repeats: int) -> dict[str, Any]:
    """Cold LpSession solve of N sessions vs warm re-solve after the N-th arrives.

    Each is split into ``build_lp``, HiGHS ``run`` and the rest (loading the model cold;
    mapping keys and editing the loaded model warm; reading the solution).
    """
    n = case.n
    p_all = case.problem()
    p_before = case.problem(case.sessions[:-1])
    codes_all = np.arange(n, dtype=np.int64)
    codes_before = codes_all[:-1]
    cold, warm, before = [], [], []
    parts_c: list[dict[str, float]] = []
    parts_w: list[dict[str, float]] = []
    it_cold = it_warm = None
    obj_cold = obj_warm = None
    reason = None
    for _ in range(repeats):
        t, (_, info), pc = _timed_parts(lambda: LpSession().solve(p_all, codes_all, verify=False))
        cold.append(t)
        parts_c.append(pc)
        it_cold, obj_cold = info["simplex_iterations"], info["objective"]
        s = LpSession()
        tb, _ = _timed(lambda s=s: s.solve(p_before, codes_before, verify=False))
        before.append(tb)
        t, (_, info), pw = _timed_parts(lambda s=s: s.solve(p_all, codes_all, verify=False))
        warm.append(t)
        parts_w.append(pw)
        it_warm, obj_warm, reason = info["simplex_iterations"], info["objective"], info["reason"]
        if not info["warm"]:
            raise RuntimeError(f"the re-solve was not warm: {info['reason']}")
    c, w = _ms(cold), _ms(warm)
    return {
        "cold_parts_ms": {k: 1e3 * median([p[k] for p in parts_c]) for k in parts_c[0]},
        "warm_parts_ms": {k: 1e3 * median([p[k] for p in parts_w]) for k in parts_w[0]},
        "arrival": case.sessions[-1].id,
        "arrival_time": str(case.sessions[-1].arrival),
        "cold_ms": c,
        "solve_n_minus_1_ms": _ms(before),
        "warm_ms": w,
        "ratio_cold_to_warm": c["median_ms"] / w["median_ms"],
        "iterations_cold": it_cold,
        "iterations_warm": it_warm,
        "objective_cold": obj_cold,
        "objective_warm": obj_warm,
        "objective_rel_diff": _rel(obj_warm, obj_cold),
        "warm_reason": reason,
    }


def bench_replanner(case: Case, repeats: int) -> dict[str, Any]:
    """Public path: Replanner.plan() cold (first plan) vs after add_session (warm)."""
    kw = case.kwargs
    grid_kw = {"start": kw["start"], "horizon": kw["horizon"], "step": kw["step"]}
    cold, warm = [], []
    parts_cold: list[dict[str, float]] = []
    parts_warm: list[dict[str, float]] = []
    costs: dict[str, float] = {}
    warm_flag = None
    for _ in range(repeats):
        rp = cp.Replanner(case.site, case.sessions, tariff=case.tariff, **grid_kw)
        t, plan = _timed(rp.plan)
        cold.append(t)
        parts_cold.append(_report_parts(plan.report))
        costs["cold"] = plan.kpis["energy_cost"]
        costs["cold_delivered_kwh"] = plan.kpis["delivered_kwh"]
        rp = cp.Replanner(case.site, case.sessions[:-1], tariff=case.tariff, **grid_kw)
        rp.plan()
        rp.add_session(case.sessions[-1])
        t, plan = _timed(rp.plan)
        warm.append(t)
        parts_warm.append(_report_parts(plan.report))
        warm_flag = bool(plan.report.info.get("warm"))
        costs["warm"] = plan.kpis["energy_cost"]
        costs["warm_delivered_kwh"] = plan.kpis["delivered_kwh"]
    c, w = _ms(cold), _ms(warm)
    return {
        "cold_plan_ms": c,
        "warm_plan_ms": w,
        "ratio_cold_to_warm": c["median_ms"] / w["median_ms"],
        "parts_cold_ms": {k: median([p[k] for p in parts_cold]) for k in parts_cold[0]},
        "parts_warm_ms": {k: median([p[k] for p in parts_warm]) for k in parts_warm[0]},
        "warm": warm_flag,
        "plans": costs,
    }


def _report_parts(report) -> dict[str, float]:
    return {
        "validate_build": report.build_time_s * 1e3,
        "solve_repair": report.solve_time_s * 1e3,
        "check": report.check_time_s * 1e3,
    }


# -- driver ---------------------------------------------------------------------------------
def _repeats(n: int, quick: bool) -> int:
    if quick:
        return 3
    return 3 if n <= 1000 else 1


def run_case(
    case: Case,
    quick: bool,
    time_limit_s: float,
    cvxpy: bool,
    cvxpy_skip_note: str | None = None,
    ipm_time_limit_s: float | None = None,
) -> dict[str, Any]:
    """Direct and cvxpy timings of one case."""
    reps = _repeats(case.n, quick)
    load0 = _load()
    t0 = time.perf_counter()
    problem = case.problem()
    t_problem = time.perf_counter() - t0
    if case.n <= 1000:  # warm-up: first HiGHS call of a size allocates
        solve_lp(problem, repair=False, time_limit_s=time_limit_s)
    direct = bench_direct(problem, reps, time_limit_s, e2e=case.n <= 1000)
    nr = _node_rows_info(problem)
    if nr is not None:
        direct["node_rows_ms"] = nr["seconds"] * 1e3
        direct["node_rows_kept"] = nr["kept"]
        direct["node_rows_pruned"] = nr["pruned"]
    unpruned = _unpruned(problem, reps)
    if unpruned is not None:
        direct["unpruned"] = unpruned
    out: dict[str, Any] = {
        "scenario": case.name,
        "n_sessions": case.n,
        "n_slots": problem.n_slots,
        "meta": case.meta,
        "problem_build_ms": t_problem * 1e3,
        "time_limit_s": time_limit_s,
        "direct": direct,
    }
    if direct["error"] is not None and ipm_time_limit_s:
        # dual simplex did not finish: interior point without crossover (design.md 7)
        out["direct_ipm"] = bench_direct(
            problem, 1, ipm_time_limit_s, {"solver": "ipm", "run_crossover": "off"}, e2e=False
        )
    if cvxpy and direct["error"] is None:
        out["cvxpy"] = bench_cvxpy(problem, reps, time_limit_s)
        cv = out["cvxpy"]
        if cv["error"] is None:
            out["ratio_cvxpy_to_direct"] = (
                cv["e2e_ms"]["median_ms"] / direct["solve_lp_ms"]["median_ms"]
            )
            out["objective_rel_diff"] = _rel(cv["objective"], direct["objective"])
    else:
        out["cvxpy"] = {
            "skipped": cvxpy_skip_note
            or ("the direct solve failed" if direct["error"] else "not run")
        }
    if direct.get("build_ms") and direct.get("run_ms"):
        out["build_share_of_solve"] = (
            direct["build_ms"]["median_ms"] / direct["run_ms"]["median_ms"]
        )
        out["build_share_of_e2e"] = (
            direct["build_ms"]["median_ms"] / direct["total_ms"]["median_ms"]
        )
    out["load_average_1m"] = [load0, _load()]
    return out


def _added(reason: str) -> str:
    """'+15 columns, +43 rows' from LpSession's warm reason."""
    added = [x.strip() for x in reason.split(":", 1)[-1].split(",") if x.strip().startswith("+")]
    return ", ".join(added) or reason


def _parts(p: dict[str, float]) -> str:
    return f"{p['build']:.1f} / {p['run']:.1f} / {p['other']:.1f}"


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _med(d: dict[str, Any] | None) -> float | None:
    return None if not d else d.get("median_ms")


def markdown(res: dict[str, Any]) -> str:
    """Result tables and target assessment in markdown."""
    lines = [
        "### LP relaxation: direct HiGHS (scipy.sparse -> passModel) vs cvxpy -> HiGHS",
        "",
        "Medians in ms. *build* = `build_lp`, *pass* = `passModel`, *HiGHS* = `run()`, "
        "*direct e2e* = `solve_lp(repair=False)`; *cvxpy e2e* = "
        "`solve_cvxpy(repair=False)`, of which *cvxpy model*, *canon.* (cvxpy "
        "canonicalisation and data passing) and *HiGHS in cvxpy* (solver time cvxpy "
        "reports).",
        "",
        "| scenario | N | rows | cols | nnz | build | pass | HiGHS | direct e2e "
        "| build / HiGHS | cvxpy e2e | cvxpy model | canon. | HiGHS in cvxpy | cvxpy / direct "
        "| obj. rel. diff | reps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for c in res["cases"]:
        rows.append((c, c["scenario"], c["direct"], c.get("cvxpy", {})))
        if "direct_ipm" in c:
            rows.append((c, f"{c['scenario']} (IPM, no crossover)", c["direct_ipm"], None))
    for c, label, d, cv in rows:
        if d.get("error") and not d.get("run_ms"):
            lines.append(
                f"| {label} | {c['n_sessions']} | {_f(d.get('n_rows'), 0)} "
                f"| {_f(d.get('n_cols'), 0)} | {_f(d.get('nnz'), 0)} "
                f"| - | - | **not solved in {c['time_limit_s']:.0f} s ({d['error']})** "
                "| - | - | - | - | - | - | - | - | 0 |"
            )
            continue
        if cv is None:  # IPM row: no cvxpy, share from its own parts
            lines.append(
                f"| {label} | {c['n_sessions']} | {d['n_rows']:,} | {d['n_cols']:,} "
                f"| {d['nnz']:,} | {_f(_med(d['build_ms']))} | {_f(_med(d['pass_ms']))} "
                f"| {_f(_med(d['run_ms']))} | {_f(_med(d['solve_lp_ms']))} "
                f"| {_f(100 * _med(d['build_ms']) / _med(d['run_ms']))} % "
                f"| - | - | - | - | - | - | {d['repeats']} |"
            )
            continue
        share = c.get("build_share_of_solve")
        ratio = c.get("ratio_cvxpy_to_direct")
        rel = c.get("objective_rel_diff")
        if "skipped" in cv:
            cvx = f"skipped ({cv['skipped']}) | - | - | - | - | -"
        elif cv.get("error"):
            cvx = f"failed ({cv['error']}) | - | - | - | - | -"
        else:
            cvx = (
                f"{_f(_med(cv['e2e_ms']))} | {_f(_med(cv['model_ms']))} "
                f"| {_f(_med(cv['canonicalize_ms']))} | {_f(_med(cv['highs_ms']))} "
                f"| {_f(ratio, 2)}x | {'-' if rel is None else f'{rel:.1e}'}"
            )
        lines.append(
            f"| {label} | {c['n_sessions']} | {d['n_rows']:,} | {d['n_cols']:,} "
            f"| {d['nnz']:,} | {_f(_med(d['build_ms']))} | {_f(_med(d['pass_ms']))} "
            f"| {_f(_med(d['run_ms']))} | {_f(_med(d['solve_lp_ms']))} "
            f"| {_f(None if share is None else 100 * share)} % | {cvx} | {d['repeats']} |"
        )
    warm = res.get("warm", [])
    if warm:
        lines += [
            "",
            "### Warm re-solve after one arrival (LpSession) and the public Replanner path",
            "",
            "Medians in ms. *cold* = a fresh `LpSession` solving all N sessions (build + "
            "load + HiGHS); *warm* = the same after N - 1 sessions were solved, the N-th "
            "added (`verify=False`). *Replanner* = `plan()` cold (first plan) vs after "
            "`add_session` (adds validation, repair, rounding and the check).",
            "",
            "| scenario | N | arriving session (LP grows by) | LpSession cold | warm | cold / warm "
            "| simplex it. cold -> warm "
            "| LpSession cold: build / HiGHS / other | warm: build / HiGHS / other "
            "| obj. rel. diff | Replanner cold | Replanner warm | cold / warm "
            "| warm plan: validate+build / solve+repair / check |",
            "|---|---:|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|",
        ]
        for w in warm:
            lp, rp = w["lp_session"], w["replanner"]
            pw = rp["parts_warm_ms"]
            lines.append(
                f"| {w['scenario']} | {w['n_sessions']} "
                f"| {lp['arrival']} at {lp['arrival_time'][11:16]} "
                f"({_added(lp['warm_reason'])}) | {_f(_med(lp['cold_ms']))} "
                f"| {_f(_med(lp['warm_ms']))} | {_f(lp['ratio_cold_to_warm'], 2)}x "
                f"| {lp['iterations_cold']} -> {lp['iterations_warm']} "
                f"| {_parts(lp['cold_parts_ms'])} | {_parts(lp['warm_parts_ms'])} "
                f"| {lp['objective_rel_diff']:.1e} | {_f(_med(rp['cold_plan_ms']))} "
                f"| {_f(_med(rp['warm_plan_ms']))} | {_f(rp['ratio_cold_to_warm'], 2)}x "
                f"| {_f(pw['validate_build'])} / {_f(pw['solve_repair'])} / {_f(pw['check'])} |"
            )
    return "\n".join(lines)


def assessment(res: dict[str, Any]) -> list[str]:
    """Target verdicts computed from the results."""
    out = []
    cases = {(c["scenario"], c["n_sessions"]): c for c in res["cases"]}
    # build share
    shares = [
        (k, c["build_share_of_solve"]) for k, c in cases.items() if "build_share_of_solve" in c
    ]
    if shares:
        met = [f"{k[0]} N={k[1]}" for k, s in shares if s <= TARGET_BUILD_SHARE]
        not_met = [
            f"{k[0]} N={k[1]} ({100 * s:.0f} %)" for k, s in shares if s > TARGET_BUILD_SHARE
        ]
        out.append(
            f"- **Model build <= 5 % of HiGHS solve time**: met for {', '.join(met) or 'none'}; "
            f"not met for {', '.join(not_met) or 'none'}."
        )
    for kind in ("loose", "congested"):
        c = cases.get((kind, 1000))
        if c and c.get("ratio_cvxpy_to_direct") is not None:
            r = c["ratio_cvxpy_to_direct"]
            verdict = "met" if r >= TARGET_CVXPY_RATIO else "**not met**"
            out.append(
                f"- **>= 3x faster end to end than cvxpy -> HiGHS at N = 1 000 ({kind})**: "
                f"{verdict}: {r:.2f}x (direct {_f(_med(c['direct']['solve_lp_ms']))} ms, "
                f"cvxpy {_f(_med(c['cvxpy']['e2e_ms']))} ms; objectives agree to "
                f"{c['objective_rel_diff']:.1e})."
            )
    for w in res.get("warm", []):
        if w["n_sessions"] != 1000:
            continue
        r = w["lp_session"]["ratio_cold_to_warm"]
        pc, pw = w["lp_session"]["cold_parts_ms"], w["lp_session"]["warm_parts_ms"]
        rr = w["replanner"]["ratio_cold_to_warm"]
        verdict = "met" if r >= TARGET_WARM_RATIO else "**not met**"
        out.append(
            f"- **Warm re-solve after one arrival >= 4x faster than cold at N = 1 000 "
            f"({w['scenario']})**: {verdict}: {r:.2f}x for LpSession "
            f"({_f(_med(w['lp_session']['cold_ms']))} -> "
            f"{_f(_med(w['lp_session']['warm_ms']))} ms); through the public Replanner "
            f"{rr:.2f}x ({_f(_med(w['replanner']['cold_plan_ms']))} -> "
            f"{_f(_med(w['replanner']['warm_plan_ms']))} ms). HiGHS run alone: "
            f"{pc['run']:.1f} -> {pw['run']:.1f} ms ({pc['run'] / pw['run']:.1f}x); "
            f"the warm re-solve still rebuilds the arrays ({pw['build']:.1f} ms, "
            f"{100 * pw['build'] / _med(w['lp_session']['warm_ms']):.0f} % of it) and "
            f"edits the loaded model ({pw['other']:.1f} ms)."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print markdown, write JSON and the markdown report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 100 only (smoke test, < 60 s)")
    ap.add_argument("--sizes", type=int, nargs="+", help="session counts (default 100 1000 5000)")
    ap.add_argument(
        "--time-limit",
        type=float,
        default=120.0,
        help="HiGHS time limit per run in s (default 120; N = 5 000 congested hits it)",
    )
    ap.add_argument(
        "--ipm-time-limit",
        type=float,
        default=400.0,
        help="N > 1 000 cases the default simplex does not finish are retried with "
        "IPM (no crossover) under this limit in s (default 400; 0 = skip)",
    )
    ap.add_argument("--no-cvxpy", action="store_true", help="skip the cvxpy path")
    ap.add_argument("--out", type=Path, help="JSON path (default results/lp.json; none if --quick)")
    ap.add_argument("--md", type=Path, help="markdown report (default lp.md; none if --quick)")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the markdown report from the JSON results (no measurements)",
    )
    args = ap.parse_args(argv)
    if args.report_only:
        src = args.out or HERE / "results" / "lp.json"
        res = json.loads(src.read_text())
        res["assessment"] = assessment(res)
        header, body = _header(res), markdown(res)
        (args.md or HERE / "lp.md").write_text(report_md(res, header, body))
        print(f"wrote {args.md or HERE / 'lp.md'} from {src}")
        return 0
    sizes = args.sizes or ([100] if args.quick else [100, 1000, 5000])
    out = args.out or (None if args.quick else HERE / "results" / "lp.json")
    md_path = args.md or (None if args.quick else HERE / "lp.md")

    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "benchmark": "lp",
        "machine": machine_info(),
        "config": {
            "quick": args.quick,
            "sizes": sizes,
            "n_slots": N_SLOTS,
            "time_limit_s": args.time_limit,
            "ipm_time_limit_s": args.ipm_time_limit,
            "highs_options": "defaults (dual simplex), presolve off on separable LPs",
        },
        "load_average_start": list(os.getloadavg()),
        "cases": [],
        "warm": [],
    }
    from importlib.metadata import version

    res["machine"]["highspy"] = version("highspy")
    res["machine"]["git"] = git_state()
    if not args.no_cvxpy:
        import cvxpy

        res["machine"]["cvxpy"] = cvxpy.__version__
        _warm_up_cvxpy()
    else:
        solve_lp(charge_only_case("loose", 20).problem(), repair=False)

    for n in sizes:
        for kind in ("loose", "congested"):
            print(f"... {kind} N={n}", file=sys.stderr, flush=True)
            note = None
            run_cv = not args.no_cvxpy
            if n > 1000 and kind == "congested":
                run_cv, note = False, "the direct LP alone exceeds the time limit"
            res["cases"].append(
                run_case(
                    charge_only_case(kind, n),
                    args.quick,
                    args.time_limit,
                    run_cv,
                    note,
                    ipm_time_limit_s=args.ipm_time_limit if n > 1000 else None,
                )
            )
            _flush(res, out)
        if n <= 1000:
            print(f"... loose-v2g N={n}", file=sys.stderr, flush=True)
            res["cases"].append(
                run_case(v2g_case(n), args.quick, args.time_limit, not args.no_cvxpy)
            )
    for n in [x for x in sizes if x <= 1000]:
        for kind in ("loose", "congested"):
            print(f"... warm {kind} N={n}", file=sys.stderr, flush=True)
            case = charge_only_case(kind, n)
            reps = _repeats(n, args.quick)
            load0 = _load()
            res["warm"].append(
                {
                    "scenario": kind,
                    "n_sessions": n,
                    "lp_session": bench_warm(case, reps),
                    "replanner": bench_replanner(case, reps),
                    "load_average_1m": [load0, _load()],
                }
            )
            _flush(res, out)
    res["load_average_end"] = list(os.getloadavg())
    res["total_runtime_s"] = time.perf_counter() - t_start
    res["assessment"] = assessment(res)

    m = res["machine"]
    header = _header(res)
    body = markdown(res)
    print(f"## LP benchmark ({m['date']})\n\n{header}\n\n{body}\n")
    print("\n".join(res["assessment"]))
    print(f"\ntotal runtime {res['total_runtime_s']:.0f} s")
    _flush(res, out)
    if out:
        print(f"wrote {out}")
    if md_path:
        md_path.write_text(report_md(res, header, body))
        print(f"wrote {md_path}")
    return 0


def git_state() -> str:
    """Commit of the library measured, with ``+dirty`` if ``src`` has local changes."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def _header(res: dict[str, Any]) -> str:
    m = res["machine"]
    return (
        f"{m['cpu']}, {m['cpu_count']} cores, {m['platform']}; Python {m['python']}, "
        f"numpy {m['numpy']}, highspy {m['highspy']}, cvxpy {m.get('cvxpy', '-')}; "
        f"chargeplan at commit {m.get('git', 'unknown')}; "
        f"load average {res['load_average_start'][0]:.2f} -> {res['load_average_end'][0]:.2f}"
    )


def _flush(res: dict[str, Any], out: Path | None) -> None:
    """Write the results so far (a long run keeps what it measured)."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, pd.Timestamp):
        return str(x)
    return str(x)


def report_md(res: dict[str, Any], header: str, body: str) -> str:
    """The full benchmarks/lp.md text."""
    m = res["machine"]
    notes = where_time_goes(res)
    return "\n".join(
        [
            "# LP benchmark: build and solve time, cvxpy comparison, warm re-solves",
            "",
            f"Generated by `benchmarks/bench_lp.py` on {m['date']} "
            f"(total run time {res['total_runtime_s']:.0f} s).",
            "",
            f"Machine: {header}. The machine is shared with other processes: numbers are "
            "medians of the repeats shown, and every ratio is between medians of the same "
            "run.",
            "",
            "Run: `PYTHONPATH=src python benchmarks/bench_lp.py` (full, writes "
            "`benchmarks/results/lp.json` and this file) or `--quick` (N = 100 only, "
            "prints). Scenarios: `benchmarks/_common.py` (`loose`: only the site root "
            "limited, never binding much; `congested`: root, transformer and charger "
            "limits bind), N sessions x 96 slots of 15 min, every session charge-only; "
            "`loose-v2g` is `loose` with the sessions that describe their battery made V2G "
            "on bidirectional EVSEs (export paid at the import price). Every solve is the "
            "LP relaxation (no min-current repair) with HiGHS defaults (dual simplex), "
            "except that the library turns presolve off on separable LPs (only energy "
            "rows left: `LpModel.presolve`), on both paths' own terms: the direct path "
            'as `method="lp"` runs it, cvxpy -> HiGHS with cvxpy\'s defaults. Where the '
            "site can only import, the direct model substitutes the import (no balance "
            "row); the cvxpy model keeps its `import_kw` and `export_kw` variables in every "
            "slot, for users' terms.",
            "",
            "## Target assessment",
            "",
            *res["assessment"],
            "",
            "## Results",
            "",
            body,
            "",
            "## Where the time goes",
            "",
            *notes,
            "",
            *reading_notes(res),
            "",
        ]
    )


def reading_notes(res: dict[str, Any]) -> list[str]:
    """How to read the results, with the numbers taken from them."""
    cases = {(c["scenario"], c["n_sessions"]): c for c in res["cases"]}
    out = ["Reading the results:", ""]
    kept = [
        (k, c["direct"])
        for k, c in cases.items()
        if c["direct"].get("node_rows_pruned") is not None
    ]
    if kept:
        none_left = [f"{k[0]} N={k[1]}" for k, d in kept if d["node_rows_kept"] == 0]
        some = [
            f"{k[0]} N={k[1]} {d['node_rows_kept']:,} of "
            f"{d['node_rows_kept'] + d['node_rows_pruned']:,}"
            for k, d in kept
            if d["node_rows_kept"]
        ]
        out.append(
            "- Node rows that can never bind (their left-hand side stays below the bound "
            "with every rate at its maximum) are left out of both the HiGHS and the cvxpy "
            "model, so both solve the same LP, with the same optimum as with every row "
            "(`tests/test_lp_pruning.py` checks that; *obj. rel. diff* compares the two "
            "paths). No node row is left in "
            f"{', '.join(none_left) or 'no case'}; node rows kept: "
            f"{'; '.join(some) or 'none'}. The kept rows are built from per-row sums over "
            "(S, T) maps (one COO block per base-load variant for the 48-side phasor "
            "polygon), so *build* no longer grows with the rows left out."
        )
    c = cases.get(("loose", 1000))
    if c and c.get("cvxpy", {}).get("e2e_ms") and c["direct"].get("run_ms"):
        d, cv = c["direct"], c["cvxpy"]
        run, e2e = _med(d["run_ms"]), _med(d["total_ms"])
        over = _med(cv["e2e_ms"]) - _med(cv["highs_ms"])
        out.append(
            "- cvxpy's overhead over the direct path is its model construction and "
            "canonicalisation; both hand HiGHS the same LP (cvxpy in its own row order "
            "and scaling). Where HiGHS dominates "
            f"the direct path (loose N=1000: HiGHS {run:,.1f} of the {e2e:,.1f} ms its "
            "steps take), the "
            "ratio is about 1 + cvxpy's overhead / the direct time: for 3x, cvxpy's "
            f"overhead there ({over:,.1f} ms) would have to be twice the direct path's "
            "whole time. Leaving out the rows that never bind shrinks cvxpy's model and "
            "canonicalisation as much as the direct build (both solve the same, smaller "
            "LP). On "
            "`congested` the ratio is set by how fast HiGHS solves the model as cvxpy "
            "passes it (different row order / scaling; same objective)."
        )
    for w in res.get("warm", []):
        if w["n_sessions"] != 1000 or w["scenario"] != "loose":
            continue
        lp = w["lp_session"]
        pw = lp["warm_parts_ms"]
        out.append(
            "- The warm LpSession re-solve rebuilds the LpModel with `build_lp` "
            f"({pw['build']:.1f} ms at loose N=1000), finds every key in a sorted index "
            "of the loaded model, appends the new rows and columns with their "
            "coefficients in one call each and sends HiGHS only the bounds and costs "
            f"that changed ({pw['other']:.1f} ms with reading the solution); HiGHS needs "
            f"{lp['iterations_warm']} of the {lp['iterations_cold']} cold iterations. Rows "
            "and columns that disappear are relaxed and their keys retired, so a key "
            "that comes back is loaded afresh."
        )
    big = cases.get(("congested", 5000))
    if big and not big["direct"].get("run_ms"):
        d = big["direct"]
        ipm = big.get("direct_ipm") or {}
        ipm_txt = (
            f"; IPM without crossover solved it in {_med(ipm['run_ms']) / 1e3:,.0f} s"
            if ipm.get("run_ms")
            else ""
        )
        out.append(
            f"- `congested` N = 5 000 ({d.get('n_rows', 0):,} rows) is out of reach of the "
            f"default dual simplex within {big['time_limit_s']:.0f} s{ipm_txt}. The "
            'Replanner and `method="lp"` use the default, so at that size the greedy path '
            "(or a time limit with the auto fallback) is what a CSMS should use."
        )
    out.append(
        "- The scenario generator has no V2G sessions; `loose-v2g` is a variant built here "
        "(see the set-up) so the V2G formulation (discharge, state of energy, export rows) "
        "is timed too."
    )
    return out


def where_time_goes(res: dict[str, Any]) -> list[str]:
    """Observations computed from the results."""
    lines = []
    for c in res["cases"]:
        d = c["direct"]
        if not d.get("run_ms"):
            lines.append(
                f"- {c['scenario']} N={c['n_sessions']}: HiGHS did not finish within "
                f"{c['time_limit_s']:.0f} s ({d.get('error')}); model {d.get('n_rows', 0):,} "
                f"rows x {d.get('n_cols', 0):,} columns."
            )
            ipm = c.get("direct_ipm")
            if ipm and ipm.get("run_ms"):
                lines.append(
                    f"  HiGHS IPM without crossover solved it in "
                    f"{_med(ipm['run_ms']) / 1e3:,.0f} s ({ipm['ipm_iterations']} iterations; "
                    f"build {_med(ipm['build_ms']) / 1e3:.1f} s); the library's default "
                    "(simplex) path would time out here."
                )
            elif ipm:
                lines.append(f"  IPM without crossover did not finish either ({ipm['error']}).")
            continue
        tot = _med(d["total_ms"])
        parts = {k: _med(d[f"{k}_ms"]) for k in ("build", "pass", "run", "read")}
        txt = ", ".join(f"{k} {100 * v / tot:.0f} %" for k, v in parts.items())
        nr = d.get("node_rows_ms")
        nr_txt = (
            f"; node-limit rows take {nr:.1f} of the {parts['build']:.1f} ms of build"
            if nr is not None
            else ""
        )
        if d.get("node_rows_kept") is not None:
            nr_txt += (
                f" ({d['node_rows_kept']:,} node rows kept, {d['node_rows_pruned']:,} left "
                "out as never binding"
            )
            up = d.get("unpruned")
            if up:
                nr_txt += (
                    f"; with every node row: {up['n_rows']:,} rows, {up['nnz']:,} nnz, "
                    f"build {_med(up['build_ms']):.1f} ms"
                )
            nr_txt += ")"
        cv = c.get("cvxpy", {})
        cv_txt = ""
        if cv.get("e2e_ms") and cv["e2e_ms"]["median_ms"]:
            e = _med(cv["e2e_ms"])
            cv_txt = (
                f"; cvxpy: model {100 * _med(cv['model_ms']) / e:.0f} %, canonicalisation "
                f"{100 * _med(cv['canonicalize_ms']) / e:.0f} %, HiGHS "
                f"{100 * _med(cv['highs_ms']) / e:.0f} % of its {e:,.0f} ms"
            )
        lines.append(
            f"- {c['scenario']} N={c['n_sessions']} (direct {tot:,.0f} ms): {txt}{nr_txt}{cv_txt}."
        )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
