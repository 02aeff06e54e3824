"""Compile (or load) the numba kernels ahead of the first real plan.

The greedy solver, the LP's min-current repair and the rounding top-up are numba
kernels compiled with ``cache=True``. In a fresh environment the first plan compiles
them (about 25 s on a 2-core machine, ``benchmarks/README.md``); later processes load
them from the on-disk cache (about 0.4 s). :func:`warm_up` plans a tiny site with
every solver that uses a kernel, so that cost is paid at a moment of the caller's
choosing: when building a container image (``RUN chargeplan warmup``), at worker
start-up, or before the first event a CSMS must answer quickly.

Numba writes the cache next to the installed package (``__pycache__``) or into
``NUMBA_CACHE_DIR`` when that is set; the directory must be writable when the kernels
are compiled and readable afterwards.
"""

from __future__ import annotations

import os
import time

__all__ = ["warm_up", "cache_dir"]


def warm_up() -> float:
    """Plan a tiny site with the greedy and LP solvers so every numba kernel is ready.

    The site has a three-phase, a line-to-line single-phase and a DC EVSE, PV and a
    price curve, so the same kernels (with the same argument types) run as for any
    real site; the greedy also runs once as on a large problem (the passes it uses
    above ``ORDERINGS_MAX_CELLS`` cells). Kernels already in the on-disk cache are
    only loaded.

    Returns
    -------
    float
        Seconds taken (compilation or cache loading, plus three tiny plans).

    Examples
    --------
    >>> import chargeplan
    >>> seconds = chargeplan.warm_up()  # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    from .api import optimize
    from .model import Evse, Forecast, Node, Session, Site, Tariff
    from .problem import build_problem
    from .solvers.greedy import solve_greedy
    from .validation import validate

    t0 = time.perf_counter()
    start = pd.Timestamp("2024-01-01", tz="UTC")
    site = Site(
        nodes=[Node("grid", limit_a=40), Node("feeder", parent="grid", limit_a=32)],
        evses=[
            Evse("ac3", parent="feeder", max_current_a=32, phase_rotation="RST"),
            Evse("ac1", parent="feeder", max_current_a=32, phases=1, phase="L1-L2"),
            Evse("dc", parent="grid", max_power_kw=50.0, dc=True),
        ],
    )
    end = start + pd.Timedelta("2h")
    sessions = [
        Session("s1", evse="ac3", arrival=start, departure=end, energy_kwh=30.0),
        Session(
            "s2",
            evse="ac1",
            arrival=start + pd.Timedelta("10min"),
            departure=end,
            energy_kwh=10.0,
        ),
        Session("s3", evse="dc", arrival=start, departure=end, energy_kwh=40.0),
    ]
    index = pd.date_range(start, periods=8, freq="15min")
    tariff = Tariff(import_price_per_kwh=pd.Series(np.linspace(0.3, 0.1, 8), index=index))
    forecast = Forecast(pv_kw=pd.Series([0, 0, 5, 20, 20, 5, 0, 0], index=index, dtype=float))
    kw = dict(start=start, horizon="2h", step="15min", tariff=tariff, forecast=forecast)
    for method in ("greedy", "lp", "auto"):
        optimize(site, sessions, method=method, **kw)
    # the greedy's large-problem passes (a stopped pass, taken back) on the same site
    grid = validate(site, sessions, **kw)
    solve_greedy(build_problem(site, sessions, grid, tariff, forecast), orderings_max_cells=0)
    return time.perf_counter() - t0


def cache_dir() -> str:
    """Where numba keeps the compiled kernels (``NUMBA_CACHE_DIR`` or the package)."""
    import numba

    from . import solvers

    configured = numba.config.CACHE_DIR
    if configured:
        return str(configured)
    return os.path.join(os.path.dirname(solvers.__file__), "__pycache__")
