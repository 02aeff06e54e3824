"""chargeplan.distributed.plan_many on small LocalClusters (threads and processes)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import chargeplan as cp
from chargeplan.distributed import (
    DEFAULT_CLUSTER_KWARGS,
    SiteResult,
    _collect,
    plan_many,
    summary_frame,
)
from chargeplan.exceptions import (
    InputError,
    LimitViolationError,
    Problem,
    SolverError,
    Violation,
)

distributed = pytest.importorskip("distributed")

T0 = pd.Timestamp("2024-03-01 06:00", tz="Europe/Amsterdam")
#: what plan_many uses without a client: 2 workers x 1 thread, loopback only
CLUSTER = {k: v for k, v in DEFAULT_CLUSTER_KWARGS.items() if k != "processes"}


def scenario(n_evse: int, seed: int, *, method: str = "greedy", bad: bool = False) -> dict:
    """A congested site: n EVSEs under one feeder, staggered sessions, a price curve."""
    rng = np.random.default_rng(seed)
    evses = [
        cp.Evse(f"e{k}", parent="feeder", max_current_a=32, station_id=f"CS{k}")
        for k in range(n_evse)
    ]
    if bad:
        evses[0] = cp.Evse("e0", parent="feeder", max_current_a=-16, station_id="CS0")
    site = cp.Site(
        nodes=[
            cp.Node("grid", limit_a=max(16.0, 10.0 * n_evse)),
            cp.Node("feeder", parent="grid", limit_a=max(16.0, 8.0 * n_evse)),
        ],
        evses=evses,
    )
    sessions = []
    for k in range(n_evse):
        arrival = T0 + pd.Timedelta(minutes=int(rng.integers(0, 2)) * 15 * k % 240)
        sessions.append(
            cp.Session(
                f"s{k}",
                evse=f"e{k}",
                arrival=arrival if k % 3 else T0,
                departure=arrival + pd.Timedelta(hours=int(rng.integers(3, 9))),
                energy_kwh=float(rng.uniform(5, 40)),
                transaction_id=f"tx-{seed}-{k}",
            )
        )
    idx = pd.date_range(T0, periods=48, freq="15min")
    prices = pd.Series(0.2 + 0.1 * np.sin(np.arange(48) / 6.0 + seed), index=idx)
    return {
        "site": site,
        "sessions": sessions,
        "start": T0,
        "horizon": "12h",
        "step": "15min",
        "tariff": cp.Tariff(import_price_per_kwh=prices),
        "method": method,
    }


# big sites first so they finish after the small ones submitted later; index 2 is bad
SIZES = [60, 3, 5, 1, 30, 8, 2, 45]
BAD = 2


def scenarios() -> list[dict]:
    methods = ["greedy", "lp", "greedy", "auto", "greedy", "lp", "auto", "greedy"]
    return [scenario(n, seed=i, method=methods[i], bad=(i == BAD)) for i, n in enumerate(SIZES)]


def assert_same_plan(got: cp.Plan, want: cp.Plan) -> None:
    assert np.array_equal(got.rate_kw, want.rate_kw)
    assert np.array_equal(got.current_a_array, want.current_a_array)
    assert got.report.method == want.report.method
    pd.testing.assert_frame_equal(got.sessions, want.sessions)
    assert got.kpis == pytest.approx(want.kpis)


@pytest.fixture(scope="module")
def local_plans():
    out = {}
    for i, sc in enumerate(scenarios()):
        if i != BAD:
            out[i] = cp.optimize(**sc)
    return out


@pytest.fixture(scope="module")
def thread_client():
    with (
        distributed.LocalCluster(processes=False, **CLUSTER) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def process_client():
    with (
        distributed.LocalCluster(processes=True, **CLUSTER) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def check_results(results, local_plans, *, plans=True):
    assert [r.index for r in results] == list(range(len(SIZES)))
    assert [r.ok for r in results] == [i != BAD for i in range(len(SIZES))]
    bad = results[BAD]
    assert isinstance(bad.error, InputError)
    assert bad.plan is None and bad.summary is None
    assert any("max_current_a" in p for p in bad.error.paths)
    assert "must be" in str(bad.error) and "max_current_a" in str(bad.error)
    assert "InputError" in bad.traceback
    with pytest.raises(InputError):
        bad.result()
    for i, r in enumerate(results):
        if i == BAD:
            continue
        assert r.error is None
        assert r.summary["n_sessions"] == SIZES[i]
        assert r.summary["delivered_kwh"] == pytest.approx(local_plans[i].kpis["delivered_kwh"])
        if plans:
            assert_same_plan(r.plan, local_plans[i])
            assert r.result() is r.plan


# --------------------------------------------------------------------------- clusters


def test_threads_in_order_errors_isolated_equal_to_local(thread_client, local_plans):
    results = plan_many(scenarios(), thread_client)
    check_results(results, local_plans)
    assert thread_client.status == "running"  # a passed client is left open


def test_processes_pickle_plans_and_errors(process_client, local_plans):
    results = plan_many(scenarios(), process_client, warm_up=True)
    check_results(results, local_plans)
    # the error crossed a process boundary with its data and message intact
    err = results[BAD].error
    assert type(err) is InputError and all(isinstance(p, Problem) for p in err.problems)
    assert str(err).startswith(f"{len(err.problems)} problem")


def test_processes_summaries_and_ocpp_only(process_client, local_plans):
    results = plan_many(
        scenarios(), process_client, return_plans=False, ocpp_version="2.0.1", batch_size=3
    )
    check_results(results, local_plans, plans=False)
    for i, r in enumerate(results):
        assert r.plan is None
        if i == BAD:
            assert r.profiles is None
            continue
        want = local_plans[i].to_ocpp("2.0.1")
        assert [p.payload for p in r.profiles] == [p.payload for p in want]
        assert [p.station_id for p in r.profiles] == [p.station_id for p in want]
        with pytest.raises(ValueError, match="return_plans=False"):
            r.result()
    frame = summary_frame(results)
    assert list(frame.index) == list(range(len(SIZES)))
    assert frame.loc[BAD, "error_type"] == "InputError"
    assert frame["ok"].sum() == len(SIZES) - 1


def test_sliding_window_keeps_order(thread_client, local_plans):
    results = plan_many(scenarios(), thread_client, batch_size=2)
    check_results(results, local_plans)


def _listening_addresses() -> list[str]:
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    out = []
    for p in procs:
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                out.append(c.laddr.ip)
    return out


@pytest.mark.parametrize("processes", [False, True])
def test_default_cluster_listens_on_loopback_only(processes):
    kwargs = {**DEFAULT_CLUSTER_KWARGS, "processes": processes}
    with distributed.LocalCluster(**kwargs) as cluster, distributed.Client(cluster):
        addresses = _listening_addresses()
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses), addresses


def test_default_cluster_is_created_and_closed(local_plans, monkeypatch):
    made = {}

    class Cluster(distributed.LocalCluster):
        def __init__(self, **kwargs):
            made["kwargs"] = kwargs
            super().__init__(**kwargs)
            made["cluster"] = self

    class Client(distributed.Client):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made["client"] = self

    monkeypatch.setattr(distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(distributed, "Client", Client)
    results = plan_many(scenarios()[:2], cluster_kwargs={"processes": False})
    assert [r.ok for r in results] == [True, True]
    assert_same_plan(results[0].plan, local_plans[0])
    assert made["kwargs"] == {**DEFAULT_CLUSTER_KWARGS, "processes": False}
    assert made["client"].status == "closed"
    assert made["cluster"].status.name == "closed"


@dataclass(frozen=True)
class DuckScenario:
    """Stands in for chargeplan.scenario.Scenario: anything with optimize()."""

    kwargs: dict
    fail: type[BaseException] | None = None

    def optimize(self) -> cp.Plan:
        if self.fail is not None:
            raise self.fail("boom")
        return cp.optimize(**self.kwargs)


def test_objects_with_optimize_and_unexpected_errors(thread_client, local_plans):
    sc = scenarios()
    items = [DuckScenario(sc[1]), DuckScenario(sc[3], fail=RuntimeError), sc[4]]
    results = plan_many(items, thread_client)
    assert [r.ok for r in results] == [True, False, True]
    assert_same_plan(results[0].plan, local_plans[1])
    assert isinstance(results[1].error, RuntimeError)
    assert_same_plan(results[2].plan, local_plans[4])


@pytest.mark.filterwarnings("ignore::chargeplan.OcppExportWarning")
def test_scenario_objects_on_processes(process_client, local_plans):
    """chargeplan.scenario.Scenario pickles to worker processes and exports its profiles."""
    scenario_mod = pytest.importorskip("chargeplan.scenario")
    from chargeplan.ocpp import StationCapabilities

    caps = {"*": StationCapabilities(rate_units=("A",), max_periods=4)}
    items = [scenario_mod.Scenario(**sc, capabilities=caps) for sc in scenarios()[:4]]
    results = plan_many(items, process_client, ocpp_version="2.0.1")
    assert [r.ok for r in results] == [i != BAD for i in range(4)]
    assert isinstance(results[BAD].error, InputError) and results[BAD].error.problems
    for i in (0, 1, 3):
        assert_same_plan(results[i].plan, local_plans[i])
        want = items[i].to_ocpp(local_plans[i], "2.0.1")  # the scenario's capabilities
        assert [p.payload for p in results[i].profiles] == [p.payload for p in want]
        for req in results[i].profiles:
            sched = req.payload["chargingProfile"]["chargingSchedule"][0]
            assert len(sched["chargingSchedulePeriod"]) <= 4


def test_unknown_optimize_keyword_is_a_per_site_error(thread_client):
    good = scenario(2, seed=0)
    results = plan_many([good, {**good, "horizn": "4h"}], thread_client)
    assert [r.ok for r in results] == [True, False]
    assert isinstance(results[1].error, TypeError)


def _explode():
    raise RuntimeError("worker-side failure outside _run_one")


def test_collect_turns_a_failed_task_into_a_result(thread_client):
    fut = thread_client.submit(_explode, pure=False)
    distributed.wait(fut)
    res = _collect(fut, 7)
    assert (res.index, res.ok, res.plan) == (7, False, None)
    assert isinstance(res.error, RuntimeError) and "_explode" in res.traceback


# --------------------------------------------------------------------------- no cluster


@pytest.mark.parametrize(
    "error",
    [
        InputError([Problem("site.evses[0] (id='e0').max_current_a", "must be >= 0", -16)]),
        LimitViolationError([Violation("node_current", "grid L1", 3, 33.0, 32.0)]),
        SolverError("HiGHS failed", status="time_limit"),
        RuntimeError("plain"),
    ],
)
def test_site_result_pickles_errors_intact(error):
    res = SiteResult(index=4, ok=False, error=error, traceback="tb", elapsed_s=1.5)
    back = pickle.loads(pickle.dumps(res))
    assert type(back.error) is type(error)
    assert str(back.error) == str(error) and back.error.args == error.args
    assert vars(back.error) == vars(error)
    assert (back.index, back.ok, back.traceback, back.elapsed_s) == (4, False, "tb", 1.5)


def test_plan_pickles(local_plans):
    for plan in local_plans.values():
        assert_same_plan(pickle.loads(pickle.dumps(plan)), plan)


def test_bad_arguments_fail_before_any_cluster():
    t = time.perf_counter()
    with pytest.raises(TypeError, match="index 1"):
        plan_many([scenario(1, 0), object()])
    with pytest.raises(ValueError, match="batch_size"):
        plan_many([scenario(1, 0)], batch_size=0)
    assert plan_many([]) == []
    assert time.perf_counter() - t < 2.0  # no cluster was started


def test_missing_dask_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install chargeplan\[dask\]"):
        plan_many([scenario(1, 0)])


def test_core_does_not_import_dask():
    code = (
        "import sys, chargeplan, chargeplan.distributed; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
