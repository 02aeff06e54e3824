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
