"""Plan many sites in parallel on a Dask cluster (optional extra ``chargeplan[dask]``).

:func:`plan_many` maps :func:`chargeplan.optimize` over a sequence of scenarios (one
per site) on a ``dask.distributed`` client and returns one :class:`SiteResult` per
scenario, in input order. A site whose planning fails (bad input, solver failure, a
plan the checker rejects, even a worker that dies) gets a result carrying the error;
the other sites are unaffected.

Dask is imported only inside :func:`plan_many`: ``import chargeplan`` never imports it,
and this module can be imported without it.

Notes
-----
*What travels back from the workers.* With ``return_plans=True`` (default) each
result holds the full :class:`~chargeplan.plan.Plan` (its inputs, arrays and the KPIs
computed on the worker), typically a few kB to a few MB per site. For large fleets
pass ``return_plans=False``: only the KPI ``summary`` and, with ``ocpp_version``,
the OCPP payloads come back.

*Cold start.* The greedy solver's numba kernels are compiled with ``cache=True``: a
fresh worker process loads them from the on-disk cache (about 0.3 s) or, without a
cache, compiles them on its first site (several seconds). ``warm_up=True`` plans a
tiny site on every worker before the real work, so per-site ``elapsed_s`` measure
planning only.

*Thousands of sites.* By default every site is submitted at once. ``batch_size=k``
keeps at most ``k`` sites in flight and submits the next one as each finishes, which
bounds the memory held by the scheduler and by finished-but-uncollected results.
"""

from __future__ import annotations

import time
import traceback as _tb
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .exceptions import ChargeplanError

if TYPE_CHECKING:
    import pandas as pd

    from .ocpp import ChargingProfileRequest, StationCapabilities
    from .plan import Plan

__all__ = [
    "DEFAULT_CLUSTER_KWARGS",
    "SiteResult",
    "SupportsOptimize",
    "plan_many",
    "summary_frame",
]

_INSTALL_HINT = (
    "chargeplan.distributed.plan_many needs dask.distributed; install the optional extra "
    'with `pip install chargeplan[dask]` (or `pip install "dask[distributed]"`).'
)

#: Defaults of the LocalCluster made when no client is passed (override with
#: ``cluster_kwargs``). Everything listens on loopback only, on ephemeral ports, and no
#: dashboard is served: with ``dashboard_address=None`` dask still starts the scheduler's
#: HTTP server on port 8787 (on every interface when ``processes=False``), and without
#: ``worker_dashboard_address`` the in-process workers' HTTP servers bind 0.0.0.0.
DEFAULT_CLUSTER_KWARGS: dict[str, Any] = {
    "n_workers": 2,
    "threads_per_worker": 1,
    "processes": True,
    "dashboard_address": "127.0.0.1:0",
    "worker_dashboard_address": "127.0.0.1:0",
    "scheduler_kwargs": {"dashboard": False},
}


@runtime_checkable
class SupportsOptimize(Protocol):
    """Anything with an ``optimize()`` method returning a Plan (e.g. a scenario object)."""

    def optimize(self) -> Plan:
        """Plan this scenario."""
        ...


@dataclass(frozen=True)
class SiteResult:
    """The outcome of planning one scenario of :func:`plan_many`.

    Parameters
    ----------
    index : int
        Position of the scenario in the input.
    ok : bool
        True if planning (and the OCPP export, when asked for) succeeded.
    plan : Plan or None
        The verified plan; ``None`` if planning failed or ``return_plans=False``.
    error : BaseException or None
        The exception raised for this scenario (e.g.
        :class:`~chargeplan.InputError` with its ``problems``), else ``None``.
    summary : dict or None
        Flat dict of the plan's :attr:`~chargeplan.plan.Plan.kpis` plus ``method``,
        ``solver_status``, ``solver_reason`` (e.g. why ``"auto"`` fell back),
        ``n_sessions``, ``n_slots`` and the solver timings; ``None`` if planning failed.
        Warnings raised on a worker are not sent back (they go to the worker's log).
    profiles : list of ChargingProfileRequest or None
        ``plan.to_ocpp(ocpp_version)`` when ``ocpp_version`` was given, else ``None``.
    traceback : str or None
        The formatted traceback of ``error`` as seen where it was raised (tracebacks do
        not survive pickling).
    elapsed_s : float
        Wall-clock seconds spent on this scenario where it ran.
    """

    index: int
    ok: bool
    plan: Plan | None = None
    error: BaseException | None = None
    summary: dict[str, Any] | None = None
    profiles: list[ChargingProfileRequest] | None = None
    traceback: str | None = None
    elapsed_s: float = 0.0

    def result(self) -> Plan:
        """Return the plan, or raise the scenario's error.

        Raises
        ------
        BaseException
            ``self.error`` if this scenario failed.
        ValueError
            If it succeeded but the plan was not returned (``return_plans=False``).
        """
        if self.error is not None:
            raise self.error
        if self.plan is None:
            raise ValueError(
                f"Site {self.index} was planned with return_plans=False; use .summary "
                "and .profiles instead."
            )
        return self.plan

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Exceptions pickle as ``cls(*args)``, which garbles errors whose __init__ does
        # not take their message (InputError, LimitViolationError): ship the error's
        # class, args and attributes instead and rebuild it without calling __init__.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        err = state.pop("error")
        packed = None if err is None else (type(err), err.args, dict(vars(err)))
        return (_rebuild_site_result, (state, packed))


def _rebuild_site_result(
    state: dict[str, Any], packed: tuple[type, tuple, dict] | None
) -> SiteResult:
    error = None
    if packed is not None:
        cls, args, attrs = packed
        try:
            error = cls.__new__(cls, *args)
            error.args = args
            error.__dict__.update(attrs)
        except Exception:  # an exotic exception class: keep its name and message
            error = RuntimeError(f"{cls.__module__}.{cls.__qualname__}: {args!r}")
    return SiteResult(error=error, **state)


def _summarize(plan: Plan) -> dict[str, Any]:
    report = plan.report
    return {
        **plan.kpis,
        "method": report.method,
        "solver_status": report.status,
        "solver_reason": report.reason,
        "n_sessions": len(plan.session_inputs),
        "n_slots": plan.grid.n_slots,
        "solve_time_s": report.solve_time_s,
        "build_time_s": report.build_time_s,
        "check_time_s": report.check_time_s,
    }


def _run_one(
    index: int,
    scenario: Any,
    return_plans: bool,
    ocpp_version: str | None,
    ocpp_capabilities: Any,
) -> SiteResult:
    """Plan one scenario; every exception becomes part of the result (runs on a worker)."""
    t0 = time.perf_counter()
    plan = None
    summary = None
    try:
        if isinstance(scenario, Mapping):
            from .api import optimize

            plan = optimize(**scenario)
        else:
            plan = scenario.optimize()
        summary = _summarize(plan)
        profiles = None
        if ocpp_version is not None:
            own = None if isinstance(scenario, Mapping) else getattr(scenario, "to_ocpp", None)
            if ocpp_capabilities is None and callable(own):
                profiles = own(plan, ocpp_version)  # e.g. Scenario: its station capabilities
            else:
                profiles = plan.to_ocpp(ocpp_version, capabilities=ocpp_capabilities)
    except Exception as exc:  # one site's failure must not end the batch
        return SiteResult(
            index=index,
            ok=False,
            plan=plan if return_plans else None,
            error=exc,
            summary=summary,
            traceback=_tb.format_exc(),
            elapsed_s=time.perf_counter() - t0,
        )
    return SiteResult(
        index=index,
        ok=True,
        plan=plan if return_plans else None,
        summary=summary,
        profiles=profiles,
        elapsed_s=time.perf_counter() - t0,
    )


def _warm_up() -> float:
    """Load (or compile) the numba kernels on a worker; returns seconds."""
    from .warmup import warm_up

    return warm_up()


def plan_many(
    scenarios: Sequence[Mapping[str, Any] | SupportsOptimize],
    client: Any = None,
    *,
    return_plans: bool = True,
    ocpp_version: str | None = None,
    ocpp_capabilities: StationCapabilities | Mapping[str, StationCapabilities] | None = None,
    batch_size: int | None = None,
    warm_up: bool = False,
    cluster_kwargs: Mapping[str, Any] | None = None,
) -> list[SiteResult]:
    """Plan many sites on a ``dask.distributed`` cluster; one result per site, in order.

    Parameters
    ----------
    scenarios : sequence
        One per site: mappings or objects with an ``optimize()`` method. A mapping
        holds the keyword arguments of :func:`chargeplan.optimize` (``{"site": ...,
        "sessions": ..., "start": ..., "horizon": ..., ...}``); any other object's
        ``optimize()`` returns a :class:`~chargeplan.plan.Plan` (e.g.
        ``chargeplan.scenario.Scenario``).
        Scenarios are pickled to the workers.
    client : distributed.Client, optional
        A synchronous client to run on; it is left open. Without one a
        ``distributed.LocalCluster`` is started (``DEFAULT_CLUSTER_KWARGS``: 2 worker
        processes of 1 thread, listening on 127.0.0.1 only, no dashboard) and closed
        afterwards.
    return_plans : bool, default True
        Send each :class:`~chargeplan.plan.Plan` back. ``False`` returns only
        ``summary`` (and ``profiles``), which is much smaller for large fleets.
    ocpp_version : {"1.6", "2.0.1", "2.1"}, optional
        Also build the OCPP payloads on the worker (``SiteResult.profiles``); a failing
        export makes the site's result ``ok=False``.
    ocpp_capabilities : StationCapabilities or mapping of station id to it, optional
        Passed to :meth:`~chargeplan.plan.Plan.to_ocpp`. Without it, a scenario object
        with a ``to_ocpp(plan, version)`` method (like ``chargeplan.scenario.Scenario``,
        which knows its stations' capabilities) builds its own profiles.
    batch_size : int, optional
        Most sites in flight at once (sliding window); ``None`` submits all at once.
    warm_up : bool, default False
        Plan a tiny site on every worker first, so numba kernels are loaded before the
        sites are timed.
    cluster_kwargs : mapping, optional
        Overrides of ``DEFAULT_CLUSTER_KWARGS`` for the LocalCluster made when ``client``
        is None (e.g. ``{"processes": False}`` for threads in this process).

    Returns
    -------
    list of SiteResult
        ``results[i]`` belongs to ``scenarios[i]``. A failed site has ``ok=False`` and
        the exception in ``error`` (``InputError``, ``SolverError``,
        ``LimitViolationError``, ..., or the worker's failure such as
        ``KilledWorker``); the others are unaffected.

    Raises
    ------
    ImportError
        If ``dask.distributed`` is not installed.
    TypeError
        If a scenario is neither a mapping nor has an ``optimize()`` method (raised
        before anything is submitted).
    ValueError
        If ``batch_size`` is not a positive int.

    Examples
    --------
    >>> import pandas as pd, chargeplan as cp
    >>> from chargeplan.distributed import plan_many
    >>> t0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")
    >>> site = cp.Site(nodes=[cp.Node("grid", limit_a=32)],
    ...                evses=[cp.Evse("cp1", parent="grid", max_current_a=32)])
    >>> ok = {"site": site, "start": t0, "horizon": "4h", "sessions": [
    ...     cp.Session("s1", evse="cp1", arrival=t0, departure=t0 + pd.Timedelta("4h"),
    ...                energy_kwh=10)]}
    >>> bad = {**ok, "horizon": "-4h"}
    >>> results = plan_many([ok, bad, ok], return_plans=False)  # doctest: +SKIP
    >>> [(r.ok, type(r.error).__name__) for r in results]  # doctest: +SKIP
    [(True, 'NoneType'), (False, 'InputError'), (True, 'NoneType')]
    >>> results[1].error.paths  # doctest: +SKIP
    ['optimize.horizon']
    """
    scenarios = list(scenarios)
    bad = [
        i
        for i, s in enumerate(scenarios)
        if not isinstance(s, Mapping) and not callable(getattr(s, "optimize", None))
    ]
    if bad:
        raise TypeError(
            "Each scenario of plan_many must be a mapping of optimize() keyword arguments "
            f"or have an optimize() method. Got {type(scenarios[bad[0]]).__name__!r} at "
            f"index {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "") + "."
        )
    if batch_size is not None and (
        not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
    ):
        raise ValueError(
            f"The 'batch_size' parameter of plan_many must be None or an int >= 1. "
            f"Got {batch_size!r} instead."
        )
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    if not scenarios:
        return []

    args = (scenarios, return_plans, ocpp_version, ocpp_capabilities, batch_size, warm_up)
    if client is not None:
        return _run(distributed, client, *args)
    kwargs = {**DEFAULT_CLUSTER_KWARGS, **(cluster_kwargs or {})}
    with distributed.LocalCluster(**kwargs) as cluster, distributed.Client(cluster) as own:
        return _run(distributed, own, *args)


def _run(
    distributed: Any,
    client: Any,
    scenarios: list[Any],
    return_plans: bool,
    ocpp_version: str | None,
    ocpp_capabilities: Any,
    batch_size: int | None,
    warm_up: bool,
) -> list[SiteResult]:
    if warm_up:
        client.run(_warm_up)
    token = uuid.uuid4().hex[:12]
    results: list[SiteResult | None] = [None] * len(scenarios)
    todo = iter(enumerate(scenarios))
    index_of: dict[Any, int] = {}

    def submit(i: int, scenario: Any) -> Any:
        fut = client.submit(
            _run_one,
            i,
            scenario,
            return_plans,
            ocpp_version,
            ocpp_capabilities,
            key=f"chargeplan-site-{i}-{token}",
            pure=False,
        )
        index_of[fut.key] = i
        return fut

    window = len(scenarios) if batch_size is None else batch_size
    # as_completed holds the in-flight futures; each is released once collected
    queue = distributed.as_completed(
        [submit(i, s) for i, s in (next(todo) for _ in range(min(window, len(scenarios))))]
    )
    for fut in queue:
        i = index_of.pop(fut.key)
        results[i] = _collect(fut, i)
        fut.release()
        nxt = next(todo, None)
        if nxt is not None:
            queue.add(submit(*nxt))
    out = [r for r in results if r is not None]
    if len(out) != len(scenarios):  # pragma: no cover - as_completed yields every future
        raise ChargeplanError("plan_many lost a result; this is a bug.")
    return out


def _collect(fut: Any, index: int) -> SiteResult:
    """Return the future's SiteResult, or one carrying the task's own failure."""
    try:
        if fut.status == "error":
            exc = fut.exception()
            tb = fut.traceback()
            text = "".join(_tb.format_exception(type(exc), exc, tb)) if tb else None
            return SiteResult(index=index, ok=False, error=exc, traceback=text)
        res = fut.result()
    except Exception as exc:  # e.g. a result that cannot be unpickled
        return SiteResult(index=index, ok=False, error=exc, traceback=_tb.format_exc())
    return res


def summary_frame(results: Sequence[SiteResult]) -> pd.DataFrame:
    """One row per site: ``ok``, the error's type and message, and the summary KPIs.

    Parameters
    ----------
    results : sequence of SiteResult
        As returned by :func:`plan_many`.

    Returns
    -------
    pandas.DataFrame
        Indexed by the scenario index.
    """
    import pandas as pd

    rows = []
    for r in results:
        row: dict[str, Any] = {"index": r.index, "ok": r.ok, "elapsed_s": r.elapsed_s}
        row["error_type"] = None if r.error is None else type(r.error).__name__
        row["error"] = None if r.error is None else str(r.error)
        row.update(r.summary or {})
        rows.append(row)
    return pd.DataFrame(rows).set_index("index")
