"""Every bad input raises InputError naming the field; nothing is mutated."""

import copy

import numpy as np
import pandas as pd
import pytest

import chargeplan as cp
from chargeplan import validation

T0 = pd.Timestamp("2024-03-04 08:00", tz="Europe/Amsterdam")
H = pd.Timedelta("1h")


def site(**evse_kw):
    kw = dict(max_current_a=32)
    kw.update(evse_kw)
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=100), cp.Node("f", parent="grid", limit_a=50)],
        evses=[cp.Evse("cp1", parent="f", **kw)],
    )


def sess(**kw):
    base = dict(id="s1", evse="cp1", arrival=T0, departure=T0 + 4 * H, energy_kwh=10.0)
    base.update(kw)
    return cp.Session(**base)


def run(site_=None, sessions=None, **kw):
    args = dict(start=T0, horizon="4h", step="15min")
    args.update(kw)
    return cp.optimize(site_ or site(), [sess()] if sessions is None else sessions, **args)


def paths(exc_info):
    return " | ".join(exc_info.value.paths)


@pytest.mark.parametrize(
    "make, expected_path",
    [
        (lambda: run(site(max_current_a=float("nan"))), "site.evses[0] (id='cp1').max_current_a"),
        (lambda: run(site(max_current_a=-16)), "site.evses[0] (id='cp1').max_current_a"),
        (lambda: run(site(max_current_a=np.inf)), "site.evses[0] (id='cp1').max_current_a"),
        (lambda: run(sessions=[sess(energy_kwh=-1)]), "sessions[0] (id='s1').energy_kwh"),
        (lambda: run(sessions=[sess(energy_kwh=float("nan"))]), "sessions[0] (id='s1').energy_kwh"),
        (
            lambda: run(sessions=[sess(arrival=pd.Timestamp("2024-03-04 08:00"))]),
            "sessions[0] (id='s1').arrival",
        ),
        (lambda: run(start=pd.Timestamp("2024-03-04 08:00")), "optimize.start"),
        (lambda: run(sessions=[sess(departure=T0)]), "sessions[0] (id='s1').departure"),
        (lambda: run(sessions=[sess(evse="nope")]), "sessions[0] (id='s1').evse"),
        (lambda: run(sessions=[sess(), sess()]), "sessions[1].id"),
        (
            lambda: run(sessions=[sess(), sess(id="s2", arrival=T0 + H)]),
            "sessions[1] (id='s2').arrival",
        ),
        (
            lambda: run(site(phases=3, dc=True, max_power_kw=50, max_current_a=None)),
            "site.evses[0] (id='cp1').phases",
        ),
        (lambda: run(site(phases=2)), "site.evses[0] (id='cp1').phases"),
        # found by fuzzing: a bad Node.station_id passed optimize and failed in to_ocpp
        (
            lambda: run(
                cp.Site(
                    nodes=[cp.Node("grid", station_id=float("nan"))],
                    evses=[cp.Evse("cp1", parent="grid", max_current_a=16)],
                )
            ),
            "site.nodes[0] (id='grid').station_id",
        ),
        (lambda: run(sessions=[sess(transaction_id=True)]), "sessions[0] (id='s1').transaction_id"),
        # found by fuzzing: each raised a TypeError instead
        (lambda: run(v2g_bids=False), "v2g_bids"),
        (
            lambda: run(v2g_bids=[cp.V2GBid("b", T0, T0 + H, 0.3, 5.0, sessions=7)]),
            "v2g_bids[0] (id='b').sessions",
        ),
        (lambda: run(sessions=[sess(id=["s1"])], v2g_bids=[]), "sessions[0].id"),
        (lambda: run(sessions=[sess(phases=3.0)]), "sessions[0] (id='s1').phases"),
        (lambda: run(sessions=[sess(evse={})]), "sessions[0] (id='s1').evse"),
        (
            lambda: run(
                cp.Site(
                    nodes=[cp.Node("grid")],
                    evses=[cp.Evse("cp1", parent=["grid"], max_current_a=16)],
                )
            ),
            "site.evses[0] (id='cp1').parent",
        ),
        (
            lambda: run(
                cp.Site(
                    nodes=[cp.Node("grid"), cp.Node(["f"], parent="grid")],
                    evses=[cp.Evse("cp1", parent="grid", max_current_a=16)],
                )
            ),
            "site.nodes[1].id",
        ),
        (
            lambda: run(
                cp.Site(
                    nodes=[cp.Node("grid"), cp.Node("f", parent={"id": "grid"})],
                    evses=[cp.Evse("cp1", parent="grid", max_current_a=16)],
                )
            ),
            "site.nodes[1] (id='f').parent",
        ),
        (
            lambda: run(site(phases="3"), sessions=[sess(phases=1)]),
            "site.evses[0] (id='cp1').phases",
        ),
        (lambda: run(site(phase_rotation="XYZ")), "site.evses[0] (id='cp1').phase_rotation"),
        (lambda: run(site(phases=1, phase="L4")), "site.evses[0] (id='cp1').phase"),
        (lambda: run(site(max_current_a=None)), "site.evses[0] (id='cp1').max_current_a"),
        (lambda: run(horizon="100min"), "optimize.horizon"),
        (lambda: run(step="0min"), "optimize.step"),
        (lambda: run(step="1500ms"), "optimize.step"),
        (lambda: run(step="900"), "optimize.step"),  # no unit: pandas would read 900 ns
        (lambda: run(method="magic"), "optimize.method"),
        (
            lambda: run(
                tariff=cp.Tariff(
                    import_price_per_kwh=pd.Series(
                        [0.1, 0.2], index=pd.date_range(T0, periods=2, freq="1h")
                    )
                )
            ),
            "tariff.import_price_per_kwh",
        ),
        (
            lambda: run(
                tariff=cp.Tariff(
                    import_price_per_kwh=pd.Series(
                        [0.1] * 4, index=pd.date_range("2024-03-04 08:00", periods=4, freq="1h")
                    )
                )
            ),
            "tariff.import_price_per_kwh",
        ),
        (
            lambda: run(
                tariff=cp.Tariff(
                    import_price_per_kwh=pd.Series(
                        [0.1, np.nan, 0.1, 0.1, 0.1], index=pd.date_range(T0, periods=5, freq="1h")
                    )
                )
            ),
            "tariff.import_price_per_kwh",
        ),
        # the demand-charge terms (found by fuzzing: None raised a TypeError, NaN reached HiGHS)
        (lambda: run(tariff=cp.Tariff(demand_charge_per_kw=None)), "tariff.demand_charge_per_kw"),
        (
            lambda: run(tariff=cp.Tariff(demand_charge_per_kw=float("nan"))),
            "tariff.demand_charge_per_kw",
        ),
        (lambda: run(tariff=cp.Tariff(demand_charge_per_kw=-5.0)), "tariff.demand_charge_per_kw"),
        (lambda: run(tariff=cp.Tariff(peak_already_kw=np.inf)), "tariff.peak_already_kw"),
        (lambda: run(tariff=cp.Tariff(peak_already_kw="7")), "tariff.peak_already_kw"),
        # magnitudes the solvers cannot take (HiGHS ended with status Unknown, or rejected
        # the model, when fuzzing found them)
        (lambda: run(tariff=cp.Tariff(demand_charge_per_kw=1e20)), "tariff.demand_charge_per_kw"),
        (lambda: run(sessions=[sess(energy_kwh=2e6)]), "sessions[0] (id='s1').energy_kwh"),
        (
            lambda: run(
                tariff=cp.Tariff(
                    import_price_per_kwh=pd.Series(
                        [0.1, 1e12, 0.1, 0.1], index=pd.date_range(T0, periods=4, freq="1h")
                    )
                )
            ),
            "tariff.import_price_per_kwh",
        ),
        (
            lambda: run(
                cp.Site(nodes=[cp.Node("g")], evses=[cp.Evse("cp1", "g", 16)], voltage_v=1e-300)
            ),
            "site.voltage_v",
        ),
        (lambda: run(forecast=cp.Forecast(pv_kw=-3.0)), "forecast.pv_kw"),
        (
            lambda: run(
                forecast=cp.Forecast(
                    base_load_kw=pd.Series(
                        [1.0, 2.0], index=pd.date_range(T0 + H, periods=2, freq="2h")
                    )
                )
            ),
            "forecast.base_load_kw",
        ),
    ],
)
def test_bad_input_names_the_field(make, expected_path):
    with pytest.raises(cp.InputError) as e:
        make()
    assert expected_path in e.value.paths, paths(e)
    assert isinstance(e.value, cp.ChargeplanError)
    assert expected_path in str(e.value)


def test_message_template():
    with pytest.raises(cp.InputError) as e:
        run(site(max_current_a=-16))
    assert "The 'max_current_a' parameter of Evse must be >= 0. Got -16 instead." in str(e.value)


def test_unknown_parent_duplicate_node_cycle_and_roots():
    s = cp.Site(
        nodes=[
            cp.Node("grid"),
            cp.Node("a", parent="b"),
            cp.Node("b", parent="a"),
            cp.Node("grid"),
            cp.Node("c", parent="ghost"),
        ],
        evses=[cp.Evse("cp1", parent="nowhere", max_current_a=16)],
    )
    with pytest.raises(cp.InputError) as e:
        run(s)
    text = str(e.value)
    assert "site.nodes[3].id" in e.value.paths  # duplicate
    assert "site.nodes[4] (id='c').parent" in e.value.paths  # unknown parent
    assert "cycle" in text and "a -> b -> a" in text
    assert "site.evses[0] (id='cp1').parent" in e.value.paths


def test_two_roots_rejected():
    s = cp.Site(
        nodes=[cp.Node("g1"), cp.Node("g2")], evses=[cp.Evse("cp1", parent="g1", max_current_a=16)]
    )
    with pytest.raises(cp.InputError) as e:
        run(s)
    assert "site.nodes" in e.value.paths


def test_dc_evse_given_phases_and_current():
    s = cp.Site(
        nodes=[cp.Node("g")],
        evses=[cp.Evse("dc", parent="g", dc=True, phases=3, max_current_a=100)],
    )
    with pytest.raises(cp.InputError) as e:
        run(s, sessions=[sess(evse="dc")])
    p = e.value.paths
    assert "site.evses[0] (id='dc').phases" in p
    assert "site.evses[0] (id='dc').max_current_a" in p
    assert "site.evses[0] (id='dc').max_power_kw" in p


def test_all_problems_reported_at_once():
    with pytest.raises(cp.InputError) as e:
        run(site(max_current_a=-1), sessions=[sess(energy_kwh=-1, departure=T0)])
    assert len(e.value.problems) >= 3


def test_time_varying_limits_validated():
    idx = pd.date_range(T0, periods=5, freq="1h")
    bad_df = pd.DataFrame({"L1": [10.0] * 5, "L4": [1.0] * 5}, index=idx)
    naive = pd.Series([10.0] * 5, index=idx.tz_localize(None))
    neg = pd.Series([10.0, -1, 10, 10, 10], index=idx)
    s = cp.Site(
        nodes=[
            cp.Node("g", limit_a=bad_df),
            cp.Node("a", parent="g", limit_a=naive),
            cp.Node("b", parent="g", limit_kw=neg),
        ],
        evses=[cp.Evse("cp1", parent="a", max_current_a=16)],
    )
    with pytest.raises(cp.InputError) as e:
        run(s)
    p = e.value.paths
    assert "site.nodes[0] (id='g').limit_a" in p
    assert "site.nodes[1] (id='a').limit_a" in p
    assert "site.nodes[2] (id='b').limit_kw" in p


def test_size_bound_rejected_before_allocating(monkeypatch):
    monkeypatch.setattr(validation, "MAX_CELLS", 1000)
    many = [
        sess(id=f"s{i}", evse="cp1", arrival=T0 + i * 5 * H, departure=T0 + (i * 5 + 1) * H)
        for i in range(20)
    ]
    with pytest.raises(cp.InputError) as e:
        run(sessions=many, horizon="24h")  # 20 x 96 > 1000
    assert "sessions" in e.value.paths


def test_slots_bound():
    with pytest.raises(cp.InputError) as e:
        run(horizon="3650D", step="1min")
    assert "optimize.horizon" in e.value.paths


def test_nothing_is_mutated_when_rejected():
    limit = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0], index=pd.date_range(T0, periods=5, freq="1h"))
    prices = pd.Series([0.1, np.nan, 0.3], index=pd.date_range(T0, periods=3, freq="2h"))
    s = cp.Site(
        nodes=[cp.Node("g", limit_a=limit)], evses=[cp.Evse("cp1", parent="g", max_current_a=-5)]
    )
    sessions = [sess()]
    before = (limit.copy(), prices.copy(), copy.deepcopy(sessions), copy.deepcopy(s.evses))
    with pytest.raises(cp.InputError):
        run(s, sessions=sessions, tariff=cp.Tariff(import_price_per_kwh=prices))
    assert limit.equals(before[0]) and prices.equals(before[1])
    assert sessions == before[2] and list(s.evses) == list(before[3])


def test_session_energy_from_soc():
    s = sess(energy_kwh=None, battery_capacity_kwh=60, soc_now_pct=20, soc_target_pct=80)
    assert s.requested_energy_kwh() == pytest.approx(36)
    # energy and SoC both given: the smaller applies
    s2 = sess(energy_kwh=10, battery_capacity_kwh=60, soc_now_pct=20, soc_target_pct=80)
    assert s2.requested_energy_kwh() == pytest.approx(10)
    with pytest.raises(cp.InputError) as e:
        run(sessions=[sess(energy_kwh=None, battery_capacity_kwh=60, soc_now_pct=120)])
    assert "sessions[0] (id='s1').soc_now_pct" in e.value.paths
    with pytest.raises(cp.InputError) as e:
        run(sessions=[sess(energy_kwh=None)])
    assert "sessions[0] (id='s1').energy_kwh" in e.value.paths


def _chain_site(depth):
    """A site whose EVSE hangs ``depth`` nodes below the root."""
    nodes = [cp.Node("n0")] + [cp.Node(f"n{k}", parent=f"n{k - 1}") for k in range(1, depth)]
    return cp.Site(nodes=nodes, evses=[cp.Evse("cp1", parent=f"n{depth - 1}", max_current_a=16)])


def _dc_site(**kw):
    return site(dc=True, max_power_kw=50.0, max_current_a=None, **kw)


def _prices(values, index):
    return cp.Tariff(import_price_per_kwh=pd.Series(values, index=index))


_E = "site.evses[0] (id='cp1')"
_S = "sessions[0] (id='s1')"
_B = "v2g_bids[0] (id='b')"


@pytest.mark.parametrize(
    "make, expected_path",
    [
        # series: index, length, values
        (lambda: run(tariff=_prices([0.1, 0.2], None)), "tariff.import_price_per_kwh"),
        (lambda: run(tariff=_prices([0.1], [T0])), "tariff.import_price_per_kwh"),
        (
            lambda: run(tariff=_prices(["a", "b"], pd.date_range(T0, periods=2, freq="4h"))),
            "tariff.import_price_per_kwh",
        ),
        # the site
        (
            lambda: run(
                cp.Site(
                    nodes=[cp.Node("grid"), cp.Node("f", parent="grid", limit_a=(10, 10))],
                    evses=[cp.Evse("cp1", parent="f", max_current_a=16)],
                )
            ),
            "site.nodes[1] (id='f').limit_a",
        ),
        (lambda: run(cp.Site(nodes=[cp.Node("grid"), "f"], evses=[])), "site.nodes[1]"),
        (lambda: run(cp.Site(nodes=[cp.Node("grid")], evses=["cp1"])), "site.evses[0]"),
        (lambda: run(_chain_site(validation.MAX_DEPTH + 2)), "site.nodes"),
        (lambda: run(_dc_site(max_discharge_current_a=10.0)), f"{_E}.max_discharge_current_a"),
        (lambda: run(site(phases=1, phase_rotation="RST")), f"{_E}.phase_rotation"),
        (lambda: run(site(phases=3, phase="L1")), f"{_E}.phase"),
        (lambda: validation.validate("grid", [], start=T0, horizon="4h", step="1h"), "site"),
        # the sessions
        (lambda: run(sessions=5), "sessions"),
        (lambda: run(sessions=["s1"]), "sessions[0]"),
        (lambda: run(sessions=[sess(min_current_a=20, max_current_a=10)]), f"{_S}.min_current_a"),
        (lambda: run(sessions=[sess(min_power_kw=20, max_power_kw=10)]), f"{_S}.min_power_kw"),
        (lambda: run(_dc_site(), sessions=[sess(phases=3)]), f"{_S}.phases"),
        (lambda: run(site(phases=1), sessions=[sess(phases=3)]), f"{_S}.phases"),
        (lambda: run(sessions=[sess(v2g="yes")]), f"{_S}.v2g"),
        (lambda: run(sessions=[sess(soc_min_pct=20.0)]), f"{_S}.soc_min_pct"),
        (
            lambda: run(_dc_site(), sessions=[sess(max_discharge_current_a=10.0)]),
            f"{_S}.max_discharge_current_a",
        ),
        # the other inputs
        (lambda: run(horizon="-1h"), "optimize.horizon"),
        (lambda: run(tariff=0.3), "tariff"),
        (lambda: run(forecast=1.0), "forecast"),
        (lambda: run(v2g_bids=["b"]), "v2g_bids[0]"),
        (lambda: run(v2g_bids=[cp.V2GBid("b", T0 + H, T0, 0.3, 5.0)]), f"{_B}.end"),
        (
            lambda: run(v2g_bids=[cp.V2GBid("b", T0, T0 + H, 0.3, 5.0, committed_kw=10.0)]),
            f"{_B}.committed_kw",
        ),
    ],
)
def test_each_rule_names_the_field(make, expected_path):
    """One case per rule of the validator not reached by the cases above."""
    with pytest.raises(cp.InputError) as e:
        make()
    assert expected_path in e.value.paths, paths(e)


_HOURS = pd.date_range(T0, periods=5, freq="1h")
_CP1 = [cp.Evse("cp1", parent="grid", max_current_a=32)]


def _node_limit_site(limit_a):
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=limit_a)],
        evses=[cp.Evse("cp1", parent="grid", max_current_a=32)],
    )


@pytest.mark.parametrize(
    "make, expected_path",
    [
        # flags must be bools: "false" is truthy, and was planned as bidirectional
        (lambda: run(site(bidirectional="false")), f"{_E}.bidirectional"),
        (lambda: run(site(bidirectional=pd.Series(1.0, index=_HOURS))), f"{_E}.bidirectional"),
        (lambda: run(site(dc=np.array([1.0, 2.0]))), f"{_E}.dc"),
        (lambda: run(site(dc="no")), f"{_E}.dc"),
        (
            lambda: run(cp.Site(nodes=[cp.Node("grid")], evses=_CP1, phasor_limits="no")),
            "site.phasor_limits",
        ),
        # ids and wirings of other types
        (
            lambda: run(
                cp.Site(nodes=[cp.Node("grid"), cp.Node("f", parent=np.array([1, 2]))], evses=_CP1)
            ),
            "site.nodes[1] (id='f').parent",
        ),
        (lambda: run(site(phase_rotation=np.array([1, 2]))), f"{_E}.phase_rotation"),
        (lambda: run(site(phases=1, phase=["L1"])), f"{_E}.phase"),
        (lambda: run(site(phases=np.array([1, 3]))), f"{_E}.phases"),
        # an int beyond any float (was an OverflowError)
        (lambda: run(sessions=[sess(energy_kwh=10**400)]), "sessions[0] (id='s1').energy_kwh"),
        (lambda: run(cp.Site(nodes=float("nan"), evses=[])), "site.nodes"),
        (lambda: run(cp.Site(nodes=[cp.Node("grid")], evses=7)), "site.evses"),
        # series: one column per phase, numbers only
        (
            lambda: run(
                _node_limit_site(
                    pd.DataFrame([[10.0, 20.0]] * 5, index=_HOURS, columns=["L1", "L1"])
                )
            ),
            "site.nodes[0] (id='grid').limit_a",
        ),
        (
            lambda: run(_node_limit_site(pd.Series(True, index=_HOURS))),
            "site.nodes[0] (id='grid').limit_a",
        ),
        (
            lambda: run(_node_limit_site(pd.Series(["10", "20", "30", "40", "50"], index=_HOURS))),
            "site.nodes[0] (id='grid').limit_a",
        ),
    ],
)
def test_inputs_of_the_wrong_type_name_the_field(make, expected_path):
    """Found by a bug hunt: these raised TypeError/ValueError, or were accepted."""
    with pytest.raises(cp.InputError) as e:
        make()
    assert expected_path in e.value.paths, paths(e)
    assert "sessions[0] (id='s1').evse" not in e.value.paths  # not an unknown EVSE


def test_an_empty_series_of_bids_is_no_bids():
    plan = run(v2g_bids=pd.Series([], dtype=float))
    assert plan.report.status  # planned, without bids


def test_node_and_session_count_bounds(monkeypatch):
    monkeypatch.setattr(validation, "MAX_NODES", 1)
    with pytest.raises(cp.InputError) as e:
        run()  # 2 nodes
    assert "site.nodes" in e.value.paths
    monkeypatch.setattr(validation, "MAX_NODES", 2)
    monkeypatch.setattr(validation, "MAX_SESSIONS", 1)
    two = [sess(), sess(id="s2", arrival=T0 + 4 * H, departure=T0 + 5 * H)]
    with pytest.raises(cp.InputError) as e:
        run(sessions=two)
    assert "sessions" in e.value.paths


def test_overlap_is_reported_on_the_later_arrival_whatever_the_order():
    early = sess(id="a", arrival=T0, departure=T0 + 3 * H)
    late = sess(id="b", arrival=T0 + H, departure=T0 + 4 * H)
    for order in ([early, late], [late, early]):
        with pytest.raises(cp.InputError) as e:
            run(sessions=order)
        assert [p for p in e.value.paths if p.endswith(".arrival")] == [
            f"sessions[{order.index(late)}] (id='b').arrival"
        ], paths(e)


@pytest.mark.parametrize("owner", ["optimize", "edf", "simulate", "Replanner"])
def test_sessions_that_are_no_sequence_raise_input_error(owner):
    """Found by coverage: ``optimize(site, 5)`` raised a TypeError from ``list()``."""
    from chargeplan.baselines import earliest_deadline_first
    from chargeplan.replan import Replanner
    from chargeplan.simulate import simulate

    call = {
        "optimize": lambda: cp.optimize(site(), 5, start=T0, horizon="4h"),
        "edf": lambda: earliest_deadline_first(site(), 5, start=T0, horizon="4h"),
        "simulate": lambda: simulate(site(), 5, start=T0, end=T0 + H),
        "Replanner": lambda: Replanner(site(), 5, start=T0, horizon="4h"),
    }[owner]
    with pytest.raises(cp.InputError) as e:
        call()
    assert e.value.paths == ["sessions"]
    assert "must be a sequence of Session. Got int instead." in str(e.value)
