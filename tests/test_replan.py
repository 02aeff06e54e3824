"""Replanner: warm re-solves after events give the same optimum as a cold solve."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import chargeplan as cp

T0 = pd.Timestamp("2024-05-06 06:00", tz="Europe/Amsterdam")


def h(x):
    return pd.Timedelta(hours=x)


def inputs(seed=0, n=12):
    rng = np.random.default_rng(seed)
    site = cp.Site(
        nodes=[
            cp.Node("grid", limit_a=63),
            cp.Node("f1", parent="grid", limit_a=40),
            cp.Node("f2", parent="grid", limit_a=(32, 25, 40)),
        ],
        evses=[
            cp.Evse(
                f"e{i}",
                parent="f1" if i % 2 else "f2",
                max_current_a=32,
                phase_rotation=["RST", "STR", "TRS"][i % 3],
            )
            for i in range(n)
        ],
    )
    sessions = [
        cp.Session(
            f"s{i}",
            evse=f"e{i}",
            arrival=T0 + h(rng.uniform(0, 3)),
            departure=T0 + h(rng.uniform(4, 8)),
            energy_kwh=float(rng.uniform(5, 40)),
            phases=int(rng.choice([1, 3])),
        )
        for i in range(n)
    ]
    prices = pd.Series(rng.uniform(0.05, 0.4, 8), index=pd.date_range(T0, periods=8, freq="1h"))
    return site, sessions, cp.Tariff(import_price_per_kwh=prices)


def cold(site, sessions, tariff):
    return cp.Replanner(site, sessions, start=T0, horizon="8h", step="15min", tariff=tariff).plan()


def assert_same_optimum(warm, cold_plan):
    assert warm.violations() == [] and cold_plan.violations() == []
    assert warm.report.info["objective"] == pytest.approx(
        cold_plan.report.info["objective"], rel=1e-7, abs=1e-7
    )


@pytest.mark.parametrize("seed", range(3))
def test_arrival_departure_update_limits_prices(seed):
    site, sessions, tariff = inputs(seed)
    rp = cp.Replanner(site, sessions[:-2], start=T0, horizon="8h", step="15min", tariff=tariff)
    first = rp.plan()
    assert first.report.info["warm"] is False
    # arrival
    rp.add_session(sessions[-2])
    p = rp.plan()
    assert p.report.info["warm"] is True
    assert_same_optimum(p, cold(site, sessions[:-1], tariff))
    # departure
    rp.remove_session("s0")
    p = rp.plan()
    assert p.report.info["warm"] is True
    assert_same_optimum(p, cold(site, sessions[1:-1], tariff))
    # new energy request
    changed = replace(sessions[1], energy_kwh=sessions[1].energy_kwh / 2)
    rp.update_session(changed)
    p = rp.plan()
    assert p.report.info["warm"] is True
    now = [changed] + sessions[2:-1]
    assert_same_optimum(p, cold(site, now, tariff))
    # new limit on a feeder
    nodes = [replace(n, limit_a=20) if n.id == "f1" else n for n in site.nodes]
    site2 = cp.Site(nodes=nodes, evses=site.evses)
    rp.set_site(site2)
    p = rp.plan()
    assert p.report.info["warm"] is True
    assert_same_optimum(p, cold(site2, now, tariff))
    assert (p.node_current_a["f1"].to_numpy() <= 20 + 1e-9).all()
    # new prices: solved cold
    tariff2 = cp.Tariff(
        import_price_per_kwh=tariff.import_price_per_kwh[::-1].set_axis(
            tariff.import_price_per_kwh.index
        )
    )
    rp.set_tariff(tariff2)
    p = rp.plan()
    assert p.report.info["warm"] is False and "prices" in p.report.info["reason"]
    assert_same_optimum(p, cold(site2, now, tariff2))


def test_replanner_errors():
    site, sessions, tariff = inputs()
    rp = cp.Replanner(site, sessions, start=T0, horizon="8h", step="15min", tariff=tariff)
    with pytest.raises(cp.InputError):
        rp.add_session(sessions[0])
    with pytest.raises(cp.InputError):
        rp.remove_session("nope")
    with pytest.raises(cp.InputError):
        cp.Replanner(
            site, [replace(sessions[0], energy_kwh=-1)], start=T0, horizon="8h", step="15min"
        )
    # an EVSE reference of another type (found by a bug hunt: it raised a ValueError)
    bad = replace(sessions[0], id="new", evse=np.array(["a", "b"]))
    with pytest.raises(cp.InputError) as e:
        rp.add_session(bad)
    assert e.value.paths == ["session (id='new').evse"]


def test_rejected_events_leave_the_replanner_as_it_was():
    """Each event is checked before it changes anything (before, a bad session was stored
    and every plan() failed until it was removed; an unhashable id raised a TypeError)."""
    site, sessions, tariff = inputs()
    rp = cp.Replanner(site, sessions[:-1], start=T0, horizon="8h", step="15min", tariff=tariff)
    before = rp.plan()
    last = sessions[-1]
    cases = [
        (rp.add_session, replace(last, energy_kwh=float("nan")), "session (id='s11').energy_kwh"),
        (rp.add_session, replace(last, evse="nowhere"), "session (id='s11').evse"),
        (rp.add_session, replace(last, id=["s11"]), "session.id"),
        (rp.add_session, "s11", "session"),
        # on s0's EVSE while s0 is plugged in
        (rp.add_session, replace(sessions[0], id="x"), "session (id='x').arrival"),
        (
            rp.update_session,
            replace(sessions[0], departure=T0 - h(1)),
            "session (id='s0').departure",
        ),
        (rp.remove_session, ["s0"], "session_id"),
        (
            rp.set_tariff,
            cp.Tariff(import_price_per_kwh=float("inf")),
            "tariff.import_price_per_kwh",
        ),
        (rp.set_site, replace(site, voltage_v=-230.0), "site.voltage_v"),
        (rp.set_forecast, cp.Forecast(pv_kw=-1.0), "forecast.pv_kw"),
    ]
    for method, arg, path in cases:
        with pytest.raises(cp.InputError) as e:
            method(arg)
        assert path in e.value.paths, (method.__name__, e.value.paths)
    assert [s.id for s in rp.sessions] == [s.id for s in sessions[:-1]]
    assert rp.sessions[0] is sessions[0]
    assert rp.tariff is tariff and rp.site is site and rp.forecast is None
    after = rp.plan()
    np.testing.assert_array_equal(after.power_kw.to_numpy(), before.power_kw.to_numpy())
    rp.add_session(last)  # a good event still works
    assert rp.plan().sessions.shape[0] == len(sessions)


def _feeder_site(voltage_v=230.0, rotation="RST"):
    """cp1 under the grid only; cp2 and cp3 under feeder fa (16 A on L1)."""
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=40), cp.Node("fa", parent="grid", limit_a=(16, None, None))],
        evses=[
            cp.Evse("cp1", parent="grid", max_current_a=32, phases=1, phase="L1"),
            cp.Evse("cp2", parent="fa", max_current_a=32, phases=1, phase="L1"),
            cp.Evse("cp3", parent="fa", max_current_a=32, phase_rotation=rotation),
        ],
        voltage_v=voltage_v,
    )


def _session(sid, evse, kwh=20.0, phases=None):
    return cp.Session(
        sid, evse=evse, arrival=T0, departure=T0 + h(4), energy_kwh=kwh, phases=phases
    )


def test_session_removed_and_added_again_on_another_evse_gets_that_evses_limits():
    """Found by a bug hunt: the session kept its old code, so the loaded LP kept the
    columns of cp1 (grid only) for it on cp2 (under a 16 A feeder): every plan() raised
    LimitViolationError (39.9 A > 16 A on fa)."""
    site = _feeder_site()
    rp = cp.Replanner(site, [_session("s1", "cp1"), _session("s3", "cp3")], start=T0, horizon="4h")
    rp.plan()
    rp.remove_session("s1")
    rp.add_session(_session("s1", "cp2"))  # re-plugged, events coalesced
    plan = rp.plan()  # verified: raised before the fix
    cold = cp.optimize(
        site, [_session("s1", "cp2"), _session("s3", "cp3")], start=T0, horizon="4h", method="lp"
    )
    assert plan.kpis["delivered_kwh"] == pytest.approx(cold.kpis["delivered_kwh"], abs=0.05)


def _voltage_case():
    def site(voltage_v):
        return cp.Site(
            nodes=[
                cp.Node("grid", limit_a=100),
                cp.Node("fa", parent="grid", limit_a=(16, 100, 100)),
            ],
            evses=[cp.Evse("cp1", parent="fa", max_current_a=32)],
            voltage_v=voltage_v,
        )

    return site(230.0), site(120.0), [_session("s1", "cp1", 100.0)]


def _rotation_case():
    def site(rotation):
        return cp.Site(
            nodes=[cp.Node("grid", limit_a=(20, 20, 100))],
            evses=[
                cp.Evse("cp1", parent="grid", max_current_a=32, phase_rotation=rotation),
                cp.Evse("cp2", parent="grid", max_current_a=32, phase_rotation="RST"),
            ],
        )

    # 1-phase EVs: the rotation decides which line each loads
    sessions = [_session("s1", "cp1", 100.0, phases=1), _session("s2", "cp2", 100.0, phases=1)]
    return site("STR"), site("RST"), sessions


@pytest.mark.parametrize("case", [_voltage_case, _rotation_case], ids=["voltage", "rotation"])
def test_set_site_with_new_voltage_or_rotation_replans_with_the_new_coefficients(case):
    """Found by a bug hunt: set_site kept the loaded LP's coefficients (no check), so a
    lower voltage or another rotation planned currents over the limits."""
    old_site, new_site, sessions = case()
    rp = cp.Replanner(old_site, sessions, start=T0, horizon="2h")
    rp.plan()
    rp.set_site(new_site)
    plan = rp.plan()  # verified: raised LimitViolationError before the fix
    assert plan.report.info["warm"] is False and "coefficients" in plan.report.info["reason"]
    cold = cp.optimize(new_site, sessions, start=T0, horizon="2h", method="lp")
    assert plan.kpis["delivered_kwh"] == pytest.approx(cold.kpis["delivered_kwh"], abs=0.05)
    root = new_site.nodes[0]
    rp.set_site(replace(new_site, nodes=[replace(root, limit_a=19), *new_site.nodes[1:]]))
    assert rp.plan().report.info["warm"] is True  # new limits alone: warm again


@pytest.mark.parametrize("bad", [-1, 0, float("nan"), "1", "abc", [1], True])
def test_replanner_time_limit_is_validated_with_the_other_inputs(bad):
    site, sessions, tariff = inputs()
    with pytest.raises(cp.InputError) as e:
        cp.Replanner(site, sessions, start=T0, horizon="8h", time_limit_s=bad)
    assert e.value.paths == ["Replanner.time_limit_s"]
    with pytest.raises(cp.InputError) as e:  # together with the inputs' problems
        cp.Replanner(site, sessions, start=T0, horizon="7min", time_limit_s=bad)
    assert "Replanner.time_limit_s" in e.value.paths and len(e.value.paths) >= 2
