"""warm_up(): after it, real plans compile no numba kernel (fresh processes, own cache)."""

import os
import subprocess
import sys
from pathlib import Path

import chargeplan as cp

SRC = str(Path(__file__).resolve().parents[1] / "src")

# a real day on the Caltech model (line-to-line EVSEs, PV, day-ahead prices) with every
# solver that runs a kernel, and the CSMS path (Replanner)
REAL_WORK = """
import pandas as pd
import chargeplan as cp
from chargeplan import datasets
day = pd.Timestamp("2019-09-10", tz="America/Los_Angeles")
site = datasets.caltech_site(transformer_cap_kw=50.0)
sessions = datasets.acn_to_sessions(
    datasets.load_acn_sessions(day, day + pd.Timedelta("1D")), site, energy="delivered"
)
end = day + pd.Timedelta("30h")
kw = dict(
    start=day, horizon="30h", step="5min",
    tariff=cp.Tariff(import_price_per_kwh=datasets.load_nl_day_ahead_prices(
        day, end, source_start=pd.Timestamp("2023-09-12", tz="America/Los_Angeles"))),
    forecast=cp.Forecast(pv_kw=30.0 * datasets.load_pv_kw_per_kwp(day, end)),
)
for method in ("greedy", "lp", "auto"):
    cp.optimize(site, sessions, method=method, **kw)
rp = cp.Replanner(site, sessions[:10], **kw)
rp.plan()
rp.add_session(sessions[10])
rp.plan()
# the greedy's large-problem passes (price-ordered pass stopped on a tight site)
from chargeplan.problem import build_problem
from chargeplan.solvers.greedy import solve_greedy
tight = datasets.caltech_site(transformer_cap_kw=15.0)
problem = build_problem(tight, sessions, cp.validate(tight, sessions, **kw), kw["tariff"],
                        kw["forecast"])
_, info = solve_greedy(problem, orderings_max_cells=0)
assert info["orderings"]["edf"] == {"stopped": True}, info["orderings"]
"""


def _kernels(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")}


def _run(code: str, cache: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": SRC}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=600)


def test_warm_up_compiles_every_kernel_real_plans_use(tmp_path):
    _run("import chargeplan; chargeplan.warm_up()", tmp_path)
    after_warm_up = _kernels(tmp_path)
    assert any(n.endswith(".nbc") for n in after_warm_up)  # it did compile into the cache
    _run(REAL_WORK, tmp_path)
    assert _kernels(tmp_path) == after_warm_up  # nothing new compiled


def test_warm_up_returns_seconds_and_cache_dir_is_reported():
    assert cp.warm_up() > 0.0
    from chargeplan.warmup import cache_dir

    assert cache_dir()
