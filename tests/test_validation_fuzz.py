"""Fuzzing: one field of a valid random scenario, or one argument, set to a bad value.

``optimize`` must then either return a plan (the value was odd but valid: the plan
passed the independent checker before it was returned) or raise ``InputError`` with a
field path for each problem, never another exception; a plan it returned must export to
OCPP unless the bad value is an argument of ``to_ocpp`` (then an ``InputError`` is
fine). Scenarios with V2G sessions and bids are solved by the LP too. The first runs of
this test (and of its V2G and argument part) found a TypeError for each of:
``Tariff.demand_charge_per_kw=None``, an unhashable node id, EVSE parent or session
EVSE, ``Session.phases=3.0`` and a session's phases checked against an EVSE's phases
given as a string; and a ``Node.station_id`` of NaN or a ``Session.transaction_id`` of
True, that ``optimize`` accepted and ``Plan.to_ocpp`` then rejected; ``v2g_bids=False``,
``V2GBid.sessions=7`` and ``profile_ids=7`` raised TypeErrors, and ``capabilities=7`` an
AttributeError; and demand charges or bid penalties of 1e20 and more, or a site voltage
of 1e-300, made HiGHS fail (now at most 1e6, at least 1 V).
"""

import dataclasses

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import chargeplan as cp
from chargeplan.exceptions import SolverError
from chargeplan.ocpp import StationCapabilities
from test_lp_properties import v2g_scenarios
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
    2e6,
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
    """A random scenario (V2G or not) with one field of one input, or one argument, bad.

    Returns the keyword arguments of ``optimize`` and of ``Plan.to_ocpp``, and whether
    the bad value is an argument of ``to_ocpp`` (which may then reject it).
    """
    v2g = draw(st.booleans())
    if v2g:
        site, sessions, tariff, forecast, bids = draw(v2g_scenarios())
    else:
        site, sessions, prices, forecast = draw(scenarios())
        tariff, bids = cp.Tariff(import_price_per_kwh=prices), []
    method = draw(st.sampled_from(["greedy", "auto", "lp"] if bids else ["greedy", "auto"]))
    kw = dict(start=T0, horizon=f"{HOURS}h", step="15min", method=method)
    # discharge needs 2.1 (1.6 and 2.0.1 reject it: rule 31)
    export = dict(version=draw(st.sampled_from(["2.1"] if v2g else ["1.6", "2.0.1", "2.1"])))
    objs = {"site": site, "tariff": tariff, "capabilities": StationCapabilities()}
    objs |= {f"node{i}": n for i, n in enumerate(site.nodes)}
    objs |= {f"evse{i}": e for i, e in enumerate(site.evses)}
    objs |= {f"session{i}": x for i, x in enumerate(sessions)}
    objs |= {f"bid{i}": b for i, b in enumerate(bids)}
    if forecast is not None:
        objs["forecast"] = forecast
    key = draw(st.sampled_from(sorted(objs) + ["optimize", "to_ocpp"]))
    if key == "optimize":
        name = draw(st.sampled_from(["start", "horizon", "step", "time_limit_s", "v2g_bids"]))
        kw[name] = draw(st.sampled_from(_bad_values(kw.get(name))))
    elif key == "to_ocpp":
        name = draw(st.sampled_from(["version", "profile_ids", "capabilities"]))
        export[name] = draw(st.sampled_from(_bad_values(None) + [{"tx:x": -1}, {"tx:x": True}]))
    else:
        obj = objs[key]
        fields = [f.name for f in dataclasses.fields(obj) if f.name not in ("nodes", "evses")]
        name = draw(st.sampled_from(fields))
        value = draw(st.sampled_from(_bad_values(getattr(obj, name))))
        try:
            new = dataclasses.replace(obj, **{name: value})
        except cp.InputError:  # StationCapabilities checks itself when built
            assume(False)
        if key.startswith("node"):
            nodes = [new if n is obj else n for n in site.nodes]
            site = dataclasses.replace(site, nodes=nodes)
        elif key.startswith("evse"):
            site = dataclasses.replace(site, evses=[new if e is obj else e for e in site.evses])
        elif key.startswith("session"):
            sessions = [new if x is obj else x for x in sessions]
        elif key.startswith("bid"):
            bids = [new if b is obj else b for b in bids]
        elif key == "capabilities":
            export["capabilities"] = new
        elif key == "site":
            site = new
        elif key == "tariff":
            tariff = new
        else:
            forecast = new
    kw.setdefault("v2g_bids", bids)
    kw |= dict(site=site, sessions=sessions, tariff=tariff, forecast=forecast)
    return kw, export, key in ("to_ocpp", "capabilities")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted())
def test_a_bad_field_gives_a_verified_plan_or_an_input_error(case):
    kw, export, export_arg = case
    try:
        plan = cp.optimize(**kw)
    except cp.InputError as e:
        assert e.problems and all(p.path for p in e.problems)
        return
    except SolverError as e:
        # a valid but tiny time limit (1e-300 s): an explicit "lp" says it ran out of time
        assert e.status == "time_limit" and kw["method"] == "lp", e
        assert 0 < kw.get("time_limit_s") < 1e-3
        return
    plan.check()  # optimize ran it already: a violation there would have raised
    try:
        plan.to_ocpp(**export)
    except cp.InputError as e:
        # only for its own arguments: what optimize accepted must export
        assert export_arg, e
        assert e.problems and all(p.path for p in e.problems)
