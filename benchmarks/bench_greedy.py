"""Greedy planning time, memory, cold start and plan quality.

Issue requirement: greedy planning time for N = 100, 1 000, 10 000 sessions x 96 slots on
a 3-level site, median of repeated runs, reported with the ratio to one numpy pass over an
N x 96 float64 array measured in the same run, plus peak memory and cold start (fresh
process: import + first call, with and without numba cache). Target: <= 2 ms at N=1 000
and <= 25 ms at N=10 000 on a 2-core machine.

Usage::

    python benchmarks/bench_greedy.py            # full run, a few minutes
    python benchmarks/bench_greedy.py --quick    # CI smoke test, N <= 1 000, < 60 s

Results are printed as markdown tables and written as JSON to ``benchmarks/results/``
(``greedy.json`` for a full run, ``greedy-quick.json`` for ``--quick``). See
``benchmarks/README.md`` for what each column means.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Keep numba's cache for this process out of the source tree (cold-start runs use their
# own fresh directories); set before numba is imported.
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "chargeplan-bench-numba-cache")
)
for p in (str(ROOT / "src"), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    N_SLOTS,
    SCENARIOS,
    machine_info,
    median,
    numpy_pass,
    source_fingerprint,
    summarize,
    time_calls,
)

import chargeplan as cp  # noqa: E402
from chargeplan.problem import build_problem  # noqa: E402
from chargeplan.solvers.greedy import solve_greedy  # noqa: E402

TARGET_MS = {1000: 2.0, 10000: 25.0}
SERVED_TOL_KWH = 0.05  # a session counts as served if at most this much energy is unmet


def _repeats(n: int, quick: bool) -> dict[str, int]:
    """Repeat counts per measurement for a problem of n sessions."""
    if quick:
        return {"solve": 10, "build": 3, "optimize": 3, "baseline": 200}
    if n <= 100:
        return {"solve": 100, "build": 30, "optimize": 20, "baseline": 2000}
    if n <= 1000:
        return {"solve": 40, "build": 20, "optimize": 20, "baseline": 1000}
    return {"solve": 15, "build": 7, "optimize": 7, "baseline": 200}


def _peak_mb(fn) -> float:
    """Peak memory (MB) traced by tracemalloc while ``fn`` runs, above what was live before."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / 1e6


def _solver_breakdown(problem, repeats: int) -> dict[str, Any]:
    """Where solve_greedy spends its time, by the functions it calls directly.

    Every function and numba kernel in :mod:`chargeplan.solvers.greedy` is wrapped for
    the duration of the measurement with a timer that counts only top-level calls (a
    call made while another wrapped call is running is part of that one). The wrapping
    is undone afterwards. Kernels are compiled by then, so no compilation sees the
    wrappers. Returns the median per solve of each function's total in ms, its call
    count, and the unattributed rest (Python glue, small numpy operations).
    """
    import inspect

    from chargeplan.solvers import greedy as g

    names = [
        k
        for k, v in vars(g).items()
        if k != "solve_greedy"
        and (
            hasattr(v, "py_func")
            or (inspect.isfunction(v) and getattr(v, "__module__", "") == g.__name__)
        )
    ]
    originals = {k: getattr(g, k) for k in names}
    acc: dict[str, float] = {}
    calls: dict[str, int] = {}
    depth = [0]

    def wrap(name, fn):
        def timed(*args, **kwargs):
            if depth[0]:
                return fn(*args, **kwargs)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0
                calls[name] = calls.get(name, 0) + 1
                depth[0] -= 1

        return timed

    per_run: list[dict[str, float]] = []
    totals: list[float] = []
    n_calls: dict[str, int] = {}
    try:
        for k, fn in originals.items():
            setattr(g, k, wrap(k, fn))
        g.solve_greedy(problem)  # warm-up through the wrappers
        for _ in range(repeats):
            acc.clear()
            calls.clear()
            t0 = time.perf_counter()
            g.solve_greedy(problem)
            totals.append(time.perf_counter() - t0)
            per_run.append(dict(acc))
            n_calls = dict(calls)
    except Exception as exc:  # the breakdown is optional
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    finally:
        for k, fn in originals.items():
            setattr(g, k, fn)
    out: dict[str, Any] = {"total_ms": median(totals) * 1e3}
    for k in sorted(n_calls, key=lambda k: -median([r.get(k, 0.0) for r in per_run])):
        out[k] = {
            "ms": median([r.get(k, 0.0) for r in per_run]) * 1e3,
            "calls": n_calls[k],
        }
    out["unattributed_ms"] = out["total_ms"] - sum(
        v["ms"] for v in out.values() if isinstance(v, dict)
    )
    return out


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bench_baseline(n: int, quick: bool) -> dict[str, float]:
    """One numpy pass over an n x 96 float64 array (allocate, fill, reduce), median etc."""
    return summarize(time_calls(lambda: numpy_pass(n), _repeats(n, quick)["baseline"], warmup=10))


def bench_case(
    kind: str, n: int, quick: bool, baseline: dict[str, float] | None = None
) -> dict[str, Any]:
    """Time, memory and quality of one scenario.

    ``baseline`` is the numpy pass measured at the start of the run (before the heap has
    been shaped by large allocations); it is measured here if not given.
    """
    reps = _repeats(n, quick)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    sc = SCENARIOS[kind](n, 0)
    t_scenario = time.perf_counter() - t0
    kw = sc.optimize_kwargs()
    site, sessions, tariff = sc.site, sc.sessions, sc.tariff

    grid = cp.validate(site, sessions, **kw)
    kw["method"] = "greedy"  # "auto" may add the LP when greedy leaves energy unmet
    problem = build_problem(site, sessions, grid, tariff)

    solve_greedy(problem)  # warm-up (first call of the process loads the numba cache)
    solve_greedy(problem)
    f0 = _minor_faults()
    solve = summarize(time_calls(lambda: solve_greedy(problem), reps["solve"], warmup=0))
    solve["minor_page_faults_per_call"] = (_minor_faults() - f0) / reps["solve"]
    baseline_here = bench_baseline(n, quick)
    if baseline is None:
        baseline = baseline_here
    vkw = {k: v for k, v in kw.items() if k != "method"}
    validate_t = summarize(time_calls(lambda: cp.validate(site, sessions, **vkw), reps["build"]))
    build = summarize(
        time_calls(lambda: build_problem(site, sessions, grid, tariff), reps["build"])
    )
    reports = []

    def run_optimize():
        plan = cp.optimize(site, sessions, **kw)
        reports.append(plan.report)
        return plan

    optimize = summarize(time_calls(run_optimize, reps["optimize"]))
    reports = reports[1:]  # drop the warm-up call
    check_ms = median([r.check_time_s for r in reports]) * 1e3
    solve_in_optimize_ms = median([r.solve_time_s for r in reports]) * 1e3
    other_ms = optimize["median_ms"] - (
        validate_t["median_ms"] + build["median_ms"] + solve_in_optimize_ms + check_ms
    )

    mem_solve = _peak_mb(lambda: solve_greedy(problem))
    plan_box: list = []
    mem_optimize = _peak_mb(lambda: plan_box.append(cp.optimize(site, sessions, **kw)))
    plan = plan_box[0]

    k = plan.kpis
    unmet = plan.sessions["unmet_kwh"].to_numpy()
    root = next(x for x in site.nodes if x.parent is None)
    root_load = plan.node_current_a[root.id].to_numpy()
    binding = float((root_load >= 0.99 * float(root.limit_a)).any(axis=1).mean())
    # energy each session could take alone (its own limits, presence), an upper bound
    alone_kwh = np.minimum(
        (problem.pmax_kw * problem.present).sum(axis=1) * problem.grid.step_h,
        problem.energy_kwh,
    ).sum()
    quality = {
        "requested_kwh": k["requested_kwh"],
        "delivered_kwh": k["delivered_kwh"],
        "share_delivered": k["share_delivered"],
        "share_deliverable_alone": float(alone_kwh / k["requested_kwh"]),
        "unmet_kwh": k["unmet_kwh"],
        "energy_cost": k["energy_cost"],
        "peak_import_kw": k["peak_import_kw"],
        "share_sessions_served_kpi": k.get("share_sessions_served"),
        f"share_sessions_unmet_le_{SERVED_TOL_KWH}kwh": float((unmet <= SERVED_TOL_KWH).mean()),
        "share_slots_root_at_limit": binding,
        "ordering": plan.report.info.get("ordering"),
    }
    target = TARGET_MS.get(n)
    return {
        "scenario": kind,
        "n_sessions": n,
        "n_slots": problem.n_slots,
        "meta": sc.meta,
        "scenario_build_s": t_scenario,
        "repeats": reps,
        "solve_greedy": solve,
        "numpy_pass": baseline,
        "numpy_pass_after_case": baseline_here,
        "ratio_solve_to_numpy_pass": solve["median_ms"] / baseline["median_ms"],
        "validate": validate_t,
        "build_problem": build,
        "optimize": optimize,
        "optimize_parts_ms": {
            "validate": validate_t["median_ms"],
            "build_problem": build["median_ms"],
            "solve": solve_in_optimize_ms,
            "check": check_ms,
            "other (rounding, Plan)": other_ms,
        },
        "solver_breakdown_ms": _solver_breakdown(problem, max(5, reps["solve"] // 2)),
        "peak_mb": {
            "solve_greedy": mem_solve,
            "optimize": mem_optimize,
            "rate_matrix": n * N_SLOTS * 8 / 1e6,
        },
        "quality": quality,
        "target_ms": target,
        "target_met": None if target is None else solve["median_ms"] <= target,
        "load_average_1m": [load_start, os.getloadavg()[0]],
    }


_COLD_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import chargeplan
t_import = time.perf_counter() - t0
numba_on_import = "numba" in sys.modules
sys.path.insert(0, {bench_dir!r})
from _common import SCENARIOS
sc = SCENARIOS[{kind!r}]({n}, 0)
t1 = time.perf_counter()
plan = chargeplan.optimize(sc.site, sc.sessions, method="greedy", **sc.optimize_kwargs())
t_first = time.perf_counter() - t1
solve_first = plan.report.solve_time_s
t2 = time.perf_counter()
plan = chargeplan.optimize(sc.site, sc.sessions, method="greedy", **sc.optimize_kwargs())
t_second = time.perf_counter() - t2
print(json.dumps(dict(import_s=t_import, first_optimize_s=t_first, first_solve_s=solve_first,
                      second_optimize_s=t_second, numba_imported_by_import=numba_on_import)))
"""


def _cold_run(cache_dir: str, kind: str, n: int) -> dict[str, Any]:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    script = _COLD_SCRIPT.format(bench_dir=str(HERE), kind=kind, n=n)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"cold-start process failed:\n{res.stderr[-2000:]}")
    wall = time.perf_counter() - t0
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def bench_cold_start(repeats: int, kind: str = "congested", n: int = 1000) -> dict[str, Any]:
    """Fresh processes: import time and first optimize, with an empty and a warm numba cache.

    Each repeat uses a new empty ``NUMBA_CACHE_DIR`` (so the source tree's own
    ``__pycache__`` is neither used nor touched): the first process compiles and fills
    it, a second process with the same directory loads from it.
    """
    runs: dict[str, list[dict[str, Any]]] = {"no_cache": [], "warm_cache": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="chargeplan-numba-") as d:
            runs["no_cache"].append(_cold_run(d, kind, n))
            runs["warm_cache"].append(_cold_run(d, kind, n))
    summary = {}
    for mode, rs in runs.items():
        summary[mode] = {
            key: median([r[key] for r in rs])
            for key in (
                "import_s",
                "first_optimize_s",
                "first_solve_s",
                "second_optimize_s",
                "process_wall_s",
            )
        }
        summary[mode]["numba_imported_by_import"] = rs[0]["numba_imported_by_import"]
    return {
        "scenario": kind,
        "n_sessions": n,
        "repeats": repeats,
        "load_average_1m_end": os.getloadavg()[0],
        "median": summary,
        "runs": runs,
    }


# -- output -----------------------------------------------------------------------------
def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """The result tables in markdown."""
    lines = [
        "### Solver time (solve_greedy on prebuilt arrays)",
        "",
        "| scenario | N | solve median ms | p10-p90 ms | page faults/call | numpy pass ms "
        "| ratio | target ms | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for c in results["cases"]:
        s, b = c["solve_greedy"], c["numpy_pass"]
        tgt = "-" if c["target_ms"] is None else _fmt(c["target_ms"], 0)
        met = "-" if c["target_met"] is None else ("yes" if c["target_met"] else "**no**")
        lines.append(
            f"| {c['scenario']} | {c['n_sessions']} | {_fmt(s['median_ms'], 3)} "
            f"| {_fmt(s['p10_ms'], 3)}-{_fmt(s['p90_ms'], 3)} "
            f"| {_fmt(s['minor_page_faults_per_call'], 0)} | {_fmt(b['median_ms'], 4)} "
            f"| {_fmt(c['ratio_solve_to_numpy_pass'], 0)}x | {tgt} | {met} |"
        )
    lines += [
        "",
        "### End to end (optimize) and its parts, medians in ms",
        "",
        "| scenario | N | optimize | p10-p90 | validate | build_problem | solve "
        "| check | other | peak MB solve | peak MB optimize |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in results["cases"]:
        o, parts, mem = c["optimize"], c["optimize_parts_ms"], c["peak_mb"]
        lines.append(
            f"| {c['scenario']} | {c['n_sessions']} | {_fmt(o['median_ms'], 1)} "
            f"| {_fmt(o['p10_ms'], 1)}-{_fmt(o['p90_ms'], 1)} | {_fmt(parts['validate'], 1)} "
            f"| {_fmt(parts['build_problem'], 1)} | {_fmt(parts['solve'], 2)} "
            f"| {_fmt(parts['check'], 1)} | {_fmt(parts['other (rounding, Plan)'], 1)} "
            f"| {_fmt(mem['solve_greedy'], 1)} | {_fmt(mem['optimize'], 1)} |"
        )
    lines += [
        "",
        "### Plan quality",
        "",
        "| scenario | N | requested kWh | deliverable alone % | delivered % | unmet kWh | cost "
        f"| sessions with unmet <= {SERVED_TOL_KWH} kWh | root at limit (% slots) "
        "| ordering |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in results["cases"]:
        q = c["quality"]
        lines.append(
            f"| {c['scenario']} | {c['n_sessions']} | {_fmt(q['requested_kwh'], 1)} "
            f"| {_fmt(100 * q['share_deliverable_alone'], 2)} "
            f"| {_fmt(100 * q['share_delivered'], 2)} | {_fmt(q['unmet_kwh'], 1)} "
            f"| {_fmt(q['energy_cost'], 2)} "
            f"| {_fmt(100 * q[f'share_sessions_unmet_le_{SERVED_TOL_KWH}kwh'], 1)} % "
            f"| {_fmt(100 * q['share_slots_root_at_limit'], 0)} | {q['ordering']} |"
        )
    brk = [c for c in results["cases"] if "skipped" not in c.get("solver_breakdown_ms", {})]
    if brk:
        lines += [
            "",
            "### Inside solve_greedy (top-level calls, median ms per solve, x calls)",
            "",
            "| scenario | N | total | parts |",
            "|---|---:|---:|---|",
        ]
        for c in brk:
            b = c["solver_breakdown_ms"]
            parts = [
                f"{k} {_fmt(v['ms'], 2)} (x{v['calls']})"
                for k, v in b.items()
                if isinstance(v, dict)
            ]
            parts.append(f"other {_fmt(b['unattributed_ms'], 2)}")
            lines.append(
                f"| {c['scenario']} | {c['n_sessions']} | {_fmt(b['total_ms'], 2)} "
                f"| {'; '.join(parts)} |"
            )
    cs = results.get("cold_start")
    if cs and "error" in cs:
        lines += ["", "### Cold start", "", "failed: " + cs["error"].splitlines()[-1]]
    elif cs:
        lines += [
            "",
            f"### Cold start (fresh process, optimize on {cs['scenario']} "
            f"N={cs['n_sessions']}, median of {cs['repeats']}), seconds",
            "",
            "| numba cache | import chargeplan | first optimize | of which solve "
            "| second optimize | process wall |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for mode, m in cs["median"].items():
            lines.append(
                f"| {mode.replace('_', ' ')} | {_fmt(m['import_s'], 3)} "
                f"| {_fmt(m['first_optimize_s'], 3)} | {_fmt(m['first_solve_s'], 3)} "
                f"| {_fmt(m['second_optimize_s'], 3)} | {_fmt(m['process_wall_s'], 2)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print markdown, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="fewer repeats and N <= 1000 (CI smoke test, < 60 s)"
    )
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="session counts (default 100 1000 10000; --quick: 100 1000)",
    )
    ap.add_argument(
        "--scenarios", nargs="+", choices=sorted(SCENARIOS), default=["congested", "loose"]
    )
    ap.add_argument("--no-cold-start", action="store_true", help="skip the subprocess runs")
    ap.add_argument(
        "--out",
        type=Path,
        help="JSON output path (default "
        "benchmarks/results/greedy.json, greedy-quick.json with --quick)",
    )
    args = ap.parse_args(argv)
    sizes = args.sizes or ([100, 1000] if args.quick else [100, 1000, 10000])
    out = args.out or HERE / "results" / ("greedy-quick.json" if args.quick else "greedy.json")

    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "greedy",
        "machine": machine_info(),
        "source": source_fingerprint(),
        "config": {
            "quick": args.quick,
            "sizes": sizes,
            "scenarios": args.scenarios,
            "n_slots": N_SLOTS,
            "step": "15min",
            "horizon": "24h",
        },
        "load_average_start": list(os.getloadavg()),
        "cases": [],
    }
    # the baseline first, on a heap not yet shaped by the benchmark's large allocations
    baselines = {n: bench_baseline(n, args.quick) for n in sizes}
    results["numpy_pass"] = {str(n): b for n, b in baselines.items()}
    for n in sizes:
        for kind in args.scenarios:
            print(f"... {kind} N={n}", file=sys.stderr, flush=True)
            results["cases"].append(bench_case(kind, n, args.quick, baselines[n]))
    if not args.no_cold_start:
        print("... cold start", file=sys.stderr, flush=True)
        try:
            results["cold_start"] = bench_cold_start(1 if args.quick else 3)
        except RuntimeError as exc:  # keep the other results
            print(exc, file=sys.stderr)
            results["cold_start"] = {"error": str(exc)}
    results["load_average_end"] = list(os.getloadavg())
    results["total_runtime_s"] = time.perf_counter() - t_start

    m = results["machine"]
    print(f"## Greedy benchmark ({m['date']})\n")
    print(
        f"{m['cpu']}, {m['cpu_count']} cores, {m['platform']}; Python {m['python']}, "
        f"numpy {m['numpy']}, pandas {m['pandas']}, numba {m['numba']}; load average "
        f"{results['load_average_start'][0]:.2f} -> {results['load_average_end'][0]:.2f}\n"
    )
    src = results["source"]
    print(
        f"chargeplan {m['chargeplan']} at git {str(src.get('git_head'))[:10]}"
        f"{' (+ uncommitted changes)' if src.get('git_dirty') else ''}; source sha256 "
        f"{src['sha256_all_py']}, greedy.py {src['sha256_solvers_greedy_py']}\n"
    )
    print(markdown(results))
    print(f"\ntotal runtime {results['total_runtime_s']:.0f} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    print(f"wrote {out}")
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


if __name__ == "__main__":
    raise SystemExit(main())
