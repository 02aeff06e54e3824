"""Fuzzing: one field of a valid random scenario set to a bad value.

``optimize`` must then either return a plan (the value was odd but valid: the plan
passed the independent checker before it was returned) or raise ``InputError`` with
a field path for each problem, never another exception. The first runs of this test
found a TypeError for each of: ``Tariff.demand_charge_per_kw=None``, an unhashable
node id, EVSE parent or session EVSE, ``Session.phases=3.0`` and a session's phases
checked against an EVSE's phases given as a string; and a ``Node.station_id`` of NaN
or a ``Session.transaction_id`` of True, that ``optimize`` accepted and
``Plan.to_ocpp`` then rejected.
"""

import dataclasses

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chargeplan as cp
from test_properties import HOURS, T0, scenarios

# wrong in value, wrong in type, or right only by accident (bools, floats for ints)
_BAD_ANY = [
    np.nan,
    np.inf,
    -np.inf,
    -1.0,
    0.0,
    -1e-9,
    1e-300,
    1e300,
    10**20,
    2,
    3.0,
    True,
    False,
    None,
    "7",
    "",
    b"x",
    [1.0],
    {},
    complex(1, 1),
    np.float32("nan"),
    np.int64(-3),
    pd.Timedelta("1h"),
    pd.Timestamp("2024-01-01", tz="UTC"),
]


def _bad_values(value):
    out = list(_BAD_ANY)
    if isinstance(value, pd.Series):
        s = value.copy()
        s.iloc[0] = np.nan
        out += [s, value.iloc[1:], value.iloc[::-1], -value, pd.Series([], dtype=float)]
        out.append(value.tz_localize(None))
        out.append(value.astype(object).where(value > value.median(), "x"))
    if isinstance(value, pd.DataFrame):
        d = value.copy()
        d.iloc[0, 0] = np.nan
        out += [d, value.iloc[:, :2], value.rename(columns={"L1": "A"})]
    if isinstance(value, pd.Timestamp):
        out += [value.tz_localize(None), pd.NaT, "2024-06-01", value + pd.Timedelta(days=3650)]
    if isinstance(value, tuple):
        out += [(1.0, 2.0), (np.nan, 1.0, 1.0), (1.0, -1.0, 2.0), ()]
    return out


@st.composite
def corrupted(draw):
    site, sessions, prices, forecast = draw(scenarios())
    tariff = cp.Tariff(import_price_per_kwh=prices)
    objs = {"site": site, "tariff": tariff}
    objs |= {f"node{i}": n for i, n in enumerate(site.nodes)}
    objs |= {f"evse{i}": e for i, e in enumerate(site.evses)}
    objs |= {f"session{i}": s for i, s in enumerate(sessions)}
    if forecast is not None:
        objs["forecast"] = forecast
    key = draw(st.sampled_from(sorted(objs)))
    obj = objs[key]
    name = draw(
        st.sampled_from(
            [f.name for f in dataclasses.fields(obj) if f.name not in ("nodes", "evses")]
        )
    )
    value = draw(st.sampled_from(_bad_values(getattr(obj, name))))
    new = dataclasses.replace(obj, **{name: value})
    if key.startswith("node"):
        nodes = [new if n is obj else n for n in site.nodes]
        site = dataclasses.replace(site, nodes=nodes)
    elif key.startswith("evse"):
        site = dataclasses.replace(site, evses=[new if e is obj else e for e in site.evses])
    elif key.startswith("session"):
        sessions = [new if s is obj else s for s in sessions]
    elif key == "site":
        site = new
    elif key == "tariff":
        tariff = new
    else:
        forecast = new
    return site, sessions, tariff, forecast


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted(), st.sampled_from(["greedy", "auto"]))
def test_a_bad_field_gives_a_verified_plan_or_an_input_error(scenario, method):
    site, sessions, tariff, forecast = scenario
    try:
        plan = cp.optimize(
            site,
            sessions,
            start=T0,
            horizon=f"{HOURS}h",
            step="15min",
            tariff=tariff,
            forecast=forecast,
            method=method,
        )
    except cp.InputError as e:
        assert e.problems and all(p.path for p in e.problems)
        return
    plan.check()  # optimize ran it already: a violation there would have raised
    plan.to_ocpp("2.0.1")  # the export validates its own input: nothing may be left to it
