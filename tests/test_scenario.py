"""JSON scenario files: exact round trips, named errors with JSON paths, OCPP needs."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import dateutil.tz
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for

import chargeplan as cp
from chargeplan.exceptions import InputError
from chargeplan.ocpp import StationCapabilities
from chargeplan.scenario import (
    Scenario,
    check_plan_dict,
    load_scenario,
    loads_scenario,
    plan_to_dict,
    save_scenario,
    scenario_from_dict,
    scenario_schema,
    scenario_to_dict,
    session_from_notify_ev_charging_needs,
)
from test_properties import HOURS, STEP_MIN, T0, scenarios

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenario-format.md"


def doc_example() -> dict:
    """The full example of docs/scenario-format.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Full example", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    return json.loads(block)


# --------------------------------------------------------------------------- equality


def tz_key(tz) -> str:
    key = getattr(tz, "key", None)
    if key is not None:
        return key
    return str(tz.utcoffset(None)) if isinstance(tz, dt.timezone) else repr(tz)


def assert_same(a, b, where="scenario"):
    """Objects equal field by field, including series values, dtype and time zone."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame), where
        pd.testing.assert_frame_equal(a, b, check_freq=False, obj=where)
        assert tz_key(a.index.tz) == tz_key(b.index.tz), where
    elif isinstance(a, pd.Series):
        assert isinstance(b, pd.Series), where
        pd.testing.assert_series_equal(a, b, check_freq=False, obj=where)
        assert tz_key(a.index.tz) == tz_key(b.index.tz), where
    elif isinstance(a, pd.Timestamp):
        assert isinstance(b, pd.Timestamp), where
        assert a == b, where
        assert tz_key(a.tz) == tz_key(b.tz), where
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
        assert isinstance(b, bool) == isinstance(a, bool), where


def round_trip(sc: Scenario) -> tuple[dict, str, Scenario]:
    d = scenario_to_dict(sc)
    text = json.dumps(d, indent=2, allow_nan=False)
    back = load_scenario(text)
    d2 = scenario_to_dict(back)
    assert d2 == d
    assert json.dumps(d2, indent=2, allow_nan=False) == text
    assert_same(sc, back)
    return d, text, back


# --------------------------------------------------------------------------- round trips

ZONES = [
    ZoneInfo("Europe/Amsterdam"),
    ZoneInfo("America/New_York"),
    ZoneInfo("UTC"),
    dt.UTC,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(dt.timedelta(hours=-3)),
]


def in_zone(value, tz):
    if isinstance(value, pd.Timestamp):
        return value.tz_convert(tz)
    if isinstance(value, (pd.Series, pd.DataFrame)):
        out = value.copy()
        out.index = out.index.tz_convert(tz)
        return out
    return value


def retz(obj, zones):
    """Put the time values of each kind of object in its own zone."""
    kinds = {cp.Node: 0, cp.Session: 1, cp.Tariff: 2, cp.Forecast: 3, cp.V2GBid: 4}
    tz = zones[kinds[type(obj)]]
    changes = {
        f.name: in_zone(getattr(obj, f.name), tz)
        for f in dataclasses.fields(obj)
        if isinstance(getattr(obj, f.name), (pd.Timestamp, pd.Series, pd.DataFrame))
    }
    return dataclasses.replace(obj, **changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=scenarios(),
    zones=st.lists(st.sampled_from(ZONES), min_size=6, max_size=6),
    extras=st.booleans(),
)
def test_random_scenarios_round_trip_exactly(scenario, zones, extras):
    site, sessions, prices, forecast = scenario
    site = cp.Site(
        nodes=[retz(n, zones) for n in site.nodes], evses=site.evses, voltage_v=site.voltage_v
    )
    sessions = [retz(s, zones) for s in sessions]
    tariff = retz(cp.Tariff(import_price_per_kwh=prices), zones)
    forecast = None if forecast is None else retz(forecast, zones)
    kw = {}
    if extras:
        kw = dict(
            capabilities={"*": StationCapabilities(rate_units=("W",), max_periods=7)},
            v2g_bids=[],
            description="random",
            time_limit_s=5.0,
            delay_cost_per_kwh_h=0.02,
        )
    sc = Scenario(
        site=site,
        sessions=sessions,
        start=T0.tz_convert(zones[5]),
        horizon=f"{HOURS}h",
        step=f"{STEP_MIN}min",
        tariff=tariff,
        forecast=forecast,
        **kw,
    )
    round_trip(sc)


def test_doc_example_is_canonical_and_round_trips():
    d = doc_example()
    sc = scenario_from_dict(d)
    assert scenario_to_dict(sc) == d
    round_trip(sc)
    assert isinstance(sc.site.nodes[1].limit_a, pd.DataFrame)
    assert list(sc.site.nodes[1].limit_a.columns) == ["L1", "L2", "L3"]
    assert sc.site.nodes[2].limit_a == (32, 32, 32)
    assert str(sc.start.tz) == "Europe/Amsterdam"
    assert sc.sessions[0].arrival == pd.Timestamp("2024-06-03 05:30", tz="Europe/Amsterdam")
    assert sc.capabilities["CS-DC"] == StationCapabilities(rate_units=("W",), max_periods=48)


def test_doc_example_matches_the_schema_file():
    schema = scenario_schema()
    validator_for(schema).check_schema(schema)
    assert validator_for(schema)(schema).is_valid(doc_example())


def test_rich_scenario_round_trips_every_field():
    t0 = pd.Timestamp("2024-03-31 00:00", tz="Europe/Berlin")  # DST change inside
    idx = pd.date_range(t0, periods=6, freq="1h")
    site = cp.Site(
        nodes=[
            cp.Node(
                "grid", limit_a=pd.Series([100, 90, 80, 90, 100, 100], index=idx), limit_kw=60.5
            ),
            cp.Node("f1", parent="grid", limit_a=(40.0, None, 35.5), station_id="ST"),
            cp.Node(
                "f2",
                parent="grid",
                limit_a=pd.DataFrame({"L3": [10.0, 20.0], "L1": [5.0, 6.0]}, index=idx[::3]),
                limit_kw=pd.Series([9.5, 9.0], index=idx[::3], name="dso"),
            ),
        ],
        evses=[
            cp.Evse(
                "a",
                parent="f1",
                max_current_a=np.float64(32),
                phase_rotation="STR",
                station_id="ST",
                connector_id=np.int64(2),
                min_current_a=8,
            ),
            cp.Evse("b", parent="f2", max_current_a=16, phases=1, phase="L3-L1", voltage_v=400.0),
            cp.Evse(
                "d",
                parent="grid",
                max_power_kw=50,
                dc=True,
                bidirectional=True,
                max_discharge_power_kw=20,
            ),
        ],
        voltage_v=230,
        export_limit_kw=15.0,
    )
    sessions = [
        cp.Session(
            "s1",
            evse="a",
            arrival=t0 - pd.Timedelta("1h"),
            departure=t0 + pd.Timedelta("3h"),
            energy_kwh=20,
            max_current_a=16,
            min_current_a=10,
            phases=1,
            priority=2.5,
            transaction_id=77,
        ),
        cp.Session(
            "s2",
            evse="d",
            arrival=t0,
            departure=t0 + pd.Timedelta("5h"),
            battery_capacity_kwh=75.0,
            soc_now_pct=np.float64(20),
            soc_target_pct=90,
            v2g=True,
            soc_min_pct=15.0,
            max_power_kw=40,
            min_power_kw=2.0,
            max_discharge_power_kw=11.0,
            round_trip_efficiency=0.85,
            degradation_cost_per_kwh=0.03,
            transaction_id="tx-2",
        ),
    ]
    sc = Scenario(
        site=site,
        sessions=sessions,
        start=t0,
        horizon=5 * 3600,
        step=900,
        method="lp",
        tariff=cp.Tariff(
            import_price_per_kwh=pd.Series(np.linspace(-0.1, 0.4, 6), index=idx, name="da"),
            export_price_per_kwh=0.02,
            demand_charge_per_kw=3.0,
            peak_already_kw=12,
            currency="USD",
        ),
        forecast=cp.Forecast(pv_kw=pd.Series([0, 1, 2, 3, 2, 1], index=idx), base_load_kw=4),
        v2g_bids=[
            cp.V2GBid(
                "b1",
                start=t0 + pd.Timedelta("1h"),
                end=t0 + pd.Timedelta("2h"),
                price_per_kwh=0.5,
                max_discharge_kw=10,
                sessions=("s2",),
                committed_kw=5,
                penalty_per_kwh=0.1,
            ),
        ],
        capabilities={
            "ST": StationCapabilities(
                rate_units=("A",), max_periods=5, stack_level=2, max_external_constraints_id=100
            )
        },
        description="every field",
    )
    sc.validate()
    d, _, back = round_trip(sc)
    assert d["site"]["nodes"][2]["limit_a"] == {
        "index": ["2024-03-31T00:00:00+01:00", "2024-03-31T04:00:00+02:00"],
        "L3": [10.0, 20.0],
        "L1": [5.0, 6.0],
    }
    assert d["site"]["nodes"][0]["limit_a"]["values"] == [100, 90, 80, 90, 100, 100]
    assert back.site.nodes[0].limit_a.dtype == np.int64
    assert d["planning"] == {
        "start": "2024-03-31T00:00:00+01:00",
        "horizon": 18000,
        "step": 900,
        "method": "lp",
    }
    assert d["sessions"][1]["v2g"] is True
    assert back.v2g_bids[0].sessions == ("s2",)
    plan = back.optimize()
    assert plan.kpis["delivered_kwh"] > 0


def test_timestamps_in_other_zones_get_a_suffix():
    d = doc_example()
    sc = scenario_from_dict(d)
    s0 = dataclasses.replace(sc.sessions[0], arrival=sc.sessions[0].arrival.tz_convert("UTC"))
    sc2 = dataclasses.replace(sc, sessions=[s0, *sc.sessions[1:]])
    out = scenario_to_dict(sc2)
    assert out["sessions"][0]["arrival"] == "2024-06-03T03:30:00+00:00[+00:00]"
    back = scenario_from_dict(out)
    assert back.sessions[0].arrival.tz == dt.UTC
    # a hand-written 'Z' stamp is put in the file's zone
    d["sessions"][0]["arrival"] = "2024-06-03T03:30:00Z"
    assert scenario_from_dict(d).sessions[0].arrival.isoformat() == "2024-06-03T05:30:00+02:00"
    # a named zone suffix
    d["sessions"][0]["arrival"] = "2024-06-03T03:30:00Z[America/New_York]"
    assert str(scenario_from_dict(d).sessions[0].arrival.tz) == "America/New_York"


def test_without_timezone_stamps_keep_their_offset():
    d = doc_example()
    del d["timezone"]
    sc = scenario_from_dict(d)
    assert sc.start.tz == dt.timezone(dt.timedelta(hours=2))
    assert scenario_to_dict(sc) == d


@pytest.mark.parametrize(
    ("zone", "name"),
    [
        (dateutil.tz.gettz("America/New_York"), "America/New_York"),
        (dateutil.tz.tzutc(), "UTC"),
        (dateutil.tz.tzoffset(None, 19800), "UTC+05:30"),
        ("/usr/share/zoneinfo/Europe/Paris", "Europe/Paris"),  # a tzfile read from a path
    ],
)
def test_dateutil_zones_are_written_by_name(zone, name):
    """A dateutil zone is written as its IANA name or offset and read back as that zone."""
    if isinstance(zone, str):
        if not Path(zone).is_file():
            pytest.skip(f"no system time zone file {zone}")
        zone = dateutil.tz.tzfile(zone)  # has no 'key', only its file name
    t0 = pd.Timestamp("2024-03-31", tz="Europe/Amsterdam").tz_convert(zone)  # a DST day
    idx = pd.date_range(t0, periods=8, freq="h")
    limit = pd.DataFrame({ph: [32.0] * 8 for ph in ("L1", "L2", "L3")}, index=idx)
    site = cp.Site(
        nodes=[cp.Node("g", limit_a=limit)], evses=[cp.Evse("e", parent="g", max_current_a=32)]
    )
    sc = Scenario(
        site=site,
        sessions=[cp.Session("s", "e", t0, t0 + pd.Timedelta("3h"), energy_kwh=5.0)],
        start=t0,
        horizon="8h",
        step="15min",
        tariff=cp.Tariff(import_price_per_kwh=pd.Series(np.linspace(0.1, 0.3, 8), index=idx)),
    )
    back = load_scenario(json.dumps(scenario_to_dict(sc)))
    for a, b in [
        (sc.site.nodes[0].limit_a, back.site.nodes[0].limit_a),
        (sc.tariff.import_price_per_kwh, back.tariff.import_price_per_kwh),
    ]:
        assert str(b.index.tz) == name
        assert [t.isoformat() for t in b.index] == [t.isoformat() for t in a.index]
        np.testing.assert_array_equal(b.to_numpy(), a.to_numpy())
    assert str(back.start.tz) == name and back.start == t0
    assert back.sessions[0].arrival.isoformat() == t0.isoformat()


def test_phasor_limits_off_round_trips():
    """Found by a bug hunt: the format had no field for it, so the conservative
    sum-of-magnitudes setting came back as the default (exact phasors)."""
    sc = scenario_from_dict(doc_example())
    off = dataclasses.replace(sc, site=dataclasses.replace(sc.site, phasor_limits=False))
    d, _, back = round_trip(off)
    assert d["site"]["phasor_limits"] is False
    assert back.site.phasor_limits is False
    assert "phasor_limits" not in scenario_to_dict(sc)["site"]  # the default is not written
    d["site"]["phasor_limits"] = "no"
    with pytest.raises(InputError) as err:
        scenario_from_dict(d)
    assert err.value.paths == ["$.site.phasor_limits"]


def test_save_and_load_file(tmp_path):
    sc = scenario_from_dict(doc_example())
    path = save_scenario(sc, tmp_path / "s.json")
    assert json.loads(path.read_text()) == doc_example()
    assert_same(load_scenario(path), sc)
    assert_same(load_scenario(str(path)), sc)
    assert_same(loads_scenario(path.read_bytes()), sc)


def test_nothing_is_written_for_an_invalid_scenario(tmp_path):
    sc = scenario_from_dict(doc_example())
    bad = dataclasses.replace(sc, sessions=[dataclasses.replace(sc.sessions[0], energy_kwh=-1)])
    target = tmp_path / "s.json"
    with pytest.raises(InputError) as err:
        save_scenario(bad, target)
    assert err.value.paths == ["$.sessions[0].energy_kwh"]
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    naive = dataclasses.replace(sc, start=pd.Timestamp("2024-06-03 06:00"))
    with pytest.raises(InputError) as err:
        save_scenario(naive, target, validate=False)
    assert err.value.paths == ["$.planning.start"]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


# --------------------------------------------------------------------------- bad files


def mutate(fn):
    d = doc_example()
    fn(d)
    return d


BAD = {
    "wrong type": (
        lambda d: d["sessions"][1].update(energy_kwh="12"),
        "$.sessions[1].energy_kwh",
        "must be a number or null. Got '12' instead",
    ),
    "missing field": (
        lambda d: d["sessions"][2].pop("departure"),
        "$.sessions[2].departure",
        "The 'departure' field of Session is required.",
    ),
    "unknown field": (
        lambda d: d["sessions"][0].update(energy_kw=3),
        "$.sessions[0].energy_kw",
        "did you mean 'energy_kwh'?",
    ),
    "naive timestamp": (
        lambda d: d["sessions"][0].update(arrival="2024-06-03T05:30:00"),
        "$.sessions[0].arrival",
        "naive timestamp '2024-06-03T05:30:00'",
    ),
    "naive series index": (
        lambda d: d["tariff"]["import_price_per_kwh"]["index"].__setitem__(3, "2024-06-03 09:00"),
        "$.tariff.import_price_per_kwh.index[3]",
        "time-zone aware",
    ),
    "series length": (
        lambda d: d["forecast"]["pv_kw"]["values"].pop(),
        "$.forecast.pv_kw.values",
        "one value per time stamp of 'index' (4). Got 3 instead",
    ),
    "limit_a array": (
        lambda d: d["site"]["nodes"][2].update(limit_a=[32, 32]),
        "$.site.nodes[2].limit_a",
        "exactly 3 items",
    ),
    "limit_a type": (
        lambda d: d["site"]["nodes"][0].update(limit_a="80A"),
        "$.site.nodes[0].limit_a",
        "a number, an [L1, L2, L3] array or a time series",
    ),
    "series typo": (
        lambda d: d["tariff"].update(import_price_per_kwh={"index": [], "value": []}),
        "$.tariff.import_price_per_kwh.value",
        "did you mean 'values'?",
    ),
    "unknown zone": (
        lambda d: d.update(timezone="Mars/Olympus"),
        "$.timezone",
        "known IANA time zone",
    ),
    "format version": (lambda d: d.update(format_version=2), "$.format_version", "must be 1"),
    "missing planning": (lambda d: d.pop("planning"), "$.planning", "required"),
    "departure before arrival": (
        lambda d: d["sessions"][0].update(departure="2024-06-03T05:00:00+02:00"),
        "$.sessions[0].departure",
        "The 'departure' parameter of Session must be after arrival",
    ),
    "unknown evse": (
        lambda d: d["sessions"][2].update(evse="dc9"),
        "$.sessions[2].evse",
        "The 'evse' parameter of Session must name an EVSE. Got unknown id 'dc9' instead.",
    ),
    "negative energy": (
        lambda d: d["sessions"][1].update(energy_kwh=-3),
        "$.sessions[1].energy_kwh",
        "The 'energy_kwh' parameter of Session must be >= 0. Got -3 instead.",
    ),
    "per-phase limit": (
        lambda d: d["site"]["nodes"][2].update(limit_a=[32, -1, 32]),
        "$.site.nodes[2].limit_a[1]",
        "must be >= 0",
    ),
    "unknown parent": (
        lambda d: d["site"]["evses"][1].update(parent="charger-b"),
        "$.site.evses[1].parent",
        "must name a node",
    ),
    "series coverage": (
        lambda d: d["forecast"]["pv_kw"].update(
            index=d["forecast"]["pv_kw"]["index"][:2], values=[1.0, 2.0]
        ),
        "$.forecast.pv_kw",
        "must cover the horizon",
    ),
    "bid session": (
        lambda d: d["v2g_bids"][0].update(sessions=["tx-1003", "tx-9"]),
        "$.v2g_bids[0].sessions[1]",
        "Got unknown id 'tx-9' instead",
    ),
    "method": (
        lambda d: d["planning"].update(method="fast"),
        "$.planning.method",
        "The 'method' parameter of optimize must be one of",
    ),
    "delay cost": (
        lambda d: d["planning"].update(delay_cost_per_kwh_h=-0.01),
        "$.planning.delay_cost_per_kwh_h",
        "-0.01",
    ),
    "horizon": (
        lambda d: d["planning"].update(horizon="12h10min"),
        "$.planning.horizon",
        "whole number of steps",
    ),
    "capabilities value": (
        lambda d: d["capabilities"]["CS-DC"].update(max_periods=0),
        "$.capabilities['CS-DC'].max_periods",
        "must be an int >= 1",
    ),
    "capabilities station": (
        lambda d: d["capabilities"].update({"CS-X": {}}),
        "$.capabilities['CS-X']",
        "Got unknown station id 'CS-X'",
    ),
    "time limit": (
        lambda d: d["planning"].update(time_limit_s=0),
        "$.planning.time_limit_s",
        "must be > 0. Got 0 instead",
    ),
    "impossible date": (
        lambda d: d["sessions"][0].update(arrival="2024-13-45T00:00:00+02:00"),
        "$.sessions[0].arrival",
        "is not a valid date and time. Got '2024-13-45T00:00:00+02:00'",
    ),
    "timestamp type": (
        lambda d: d["sessions"][0].update(arrival=5),
        "$.sessions[0].arrival",
        "must be a string. Got 5 instead",
    ),
    "unknown zone suffix": (
        lambda d: d["sessions"][0].update(arrival="2024-06-03T05:30:00+02:00[Mars/Olympus]"),
        "$.sessions[0].arrival",
        "known IANA time zone or an offset '+HH:MM'. Got 'Mars/Olympus'",
    ),
    "unknown series zone": (
        lambda d: d["tariff"]["import_price_per_kwh"].update(tz="Mars/Olympus"),
        "$.tariff.import_price_per_kwh.tz",
        "Got 'Mars/Olympus'",
    ),
    "unknown index zone suffix": (
        lambda d: d["tariff"]["import_price_per_kwh"]["index"].__setitem__(
            0, "2024-06-03T06:00:00+02:00[Mars/Olympus]"
        ),
        "$.tariff.import_price_per_kwh.index[0]",
        "Got 'Mars/Olympus'",
    ),
    "impossible index time": (
        lambda d: d["tariff"]["import_price_per_kwh"]["index"].__setitem__(
            1, "2024-06-03T99:00:00+02:00"
        ),
        "$.tariff.import_price_per_kwh.index[1]",
        "is not a valid date and time",
    ),
    "empty series": (
        lambda d: d["tariff"].update(import_price_per_kwh={"index": [], "values": []}),
        "$.tariff.import_price_per_kwh",
        "must have at least 2 time stamps",
    ),
    "integer beyond int64": (
        lambda d: d["tariff"]["import_price_per_kwh"]["values"].__setitem__(0, 2**70),
        "$.tariff.import_price_per_kwh",
        "must be at most 1e+06 in magnitude",
    ),
    "offset out of range": (
        lambda d: d.update(timezone="+24:00"),
        "$.timezone",
        "Got '+24:00'",
    ),
    "empty id": (
        lambda d: d["sessions"][0].update(id=""),
        "$.sessions[0].id",
        "must be a non-empty string",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_names_the_json_path(case, tmp_path):
    fn, path, message = BAD[case]
    d = mutate(fn)
    with pytest.raises(InputError) as err:
        load_scenario(json.dumps(d))
    assert path in err.value.paths, err.value
    problem = next(p for p in err.value.problems if p.path == path)
    assert message in problem.message
    assert all(p.path.startswith("$") for p in err.value.problems)
    # the same through a file, and nothing is written by a failed round trip
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(InputError):
        load_scenario(f)


def test_semantic_errors_have_the_python_api_messages():
    sc = scenario_from_dict(doc_example())
    s1 = dataclasses.replace(sc.sessions[1], energy_kwh=-3)
    with pytest.raises(InputError) as api:
        cp.validate(
            sc.site,
            [sc.sessions[0], s1, sc.sessions[2]],
            start=sc.start,
            horizon=sc.horizon,
            step=sc.step,
        )
    d = mutate(lambda d: d["sessions"][1].update(energy_kwh=-3))
    with pytest.raises(InputError) as file:
        load_scenario(d)
    assert api.value.paths == ["sessions[1] (id='tx-1002').energy_kwh"]
    assert file.value.paths == ["$.sessions[1].energy_kwh"]
    assert [p.message for p in file.value.problems] == [p.message for p in api.value.problems]
    # a Scenario built in Python reports JSON paths too
    with pytest.raises(InputError) as err:
        dataclasses.replace(sc, sessions=[sc.sessions[0], s1, sc.sessions[2]]).optimize()
    assert err.value.paths == ["$.sessions[1].energy_kwh"]


def test_every_problem_is_listed():
    def many(d):
        d["sessions"][0]["energy_kwh"] = "x"
        d["sessions"][1].pop("evse")
        d["site"]["evses"][0]["dc"] = "no"
        d["planning"]["start"] = "2024-06-03T06:00"

    with pytest.raises(InputError) as err:
        load_scenario(mutate(many))
    assert err.value.paths == [
        "$.planning.start",
        "$.sessions[0].energy_kwh",
        "$.sessions[1].evse",
        "$.site.evses[0].dc",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"site": {', "not valid JSON"),
        ('{"site": 1, "site": 2}', "has the key 'site' twice"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_not_a_scenario(text, message):
    with pytest.raises(InputError) as err:
        loads_scenario(text)
    assert err.value.paths == ["$"]
    assert message in err.value.problems[0].message


def test_nan_is_a_value_error_with_a_path():
    text = json.dumps(doc_example()).replace('"energy_kwh": 12', '"energy_kwh": NaN')
    with pytest.raises(InputError) as err:
        loads_scenario(text)
    assert err.value.paths == ["$.sessions[1].energy_kwh"]


# --------------------------------------------------------------------------- planning


def test_scenario_plans_and_exports_with_station_capabilities():
    sc = scenario_from_dict(doc_example())
    plan = sc.optimize(method="lp")
    requests = sc.to_ocpp(plan, "2.1")
    by_station = {}
    for r in requests:
        by_station.setdefault(r.station_id, []).append(r.payload)
    assert set(by_station) == {"CS-A", "CS-DC"}
    for payload in by_station["CS-DC"]:
        sched = payload["chargingProfile"]["chargingSchedule"][0]
        assert sched["chargingRateUnit"] == "W"
    for payload in by_station["CS-A"]:
        sched = payload["chargingProfile"]["chargingSchedule"][0]
        assert len(sched["chargingSchedulePeriod"]) <= 12
    assert sc.station_capabilities()["CS-A"].max_periods == 12


def test_plan_dict_rechecks_and_catches_tampering():
    sc = scenario_from_dict(doc_example())
    plan = sc.optimize(method="greedy")
    d = json.loads(json.dumps(plan_to_dict(plan, sc, ocpp_version="2.1")))
    assert check_plan_dict(d) == []
    assert d["kind"] == "chargeplan-plan" and len(d["index"]) == 48
    assert d["evses"]["dc1"]["current_a"] == [0.0] * 48
    assert d["sessions"][2]["current_a"] is None
    t = next(k for k, v in enumerate(d["sessions"][0]["current_a"]) if v > 0)
    bad = copy.deepcopy(d)
    bad["sessions"][0]["current_a"][t] = 40.0
    kinds = {v.kind for v in check_plan_dict(bad)}
    assert "max_current" in kinds
    bad = copy.deepcopy(d)
    bad["evses"]["cp1"]["current_a"][t] = 40.0
    kinds = {v.kind for v in check_plan_dict(bad)}
    assert kinds == {"evse_view_mismatch", "evse_max_current"}
    bad = copy.deepcopy(d)
    bad["grid"]["n_slots"] = 47
    with pytest.raises(InputError) as err:
        check_plan_dict(bad)
    assert err.value.paths == ["$.grid"]
    bad = copy.deepcopy(d)
    bad["scenario"]["sessions"][0]["energy_kwh"] = -1
    with pytest.raises(InputError) as err:
        check_plan_dict(bad)
    assert err.value.paths == ["$.scenario.sessions[0].energy_kwh"]


def _drop_session_entry(d):
    d["sessions"].pop(0)


def _short_power(d):
    d["sessions"][0]["power_kw"] = d["sessions"][0]["power_kw"][:-1]


def _none_in_power(d):
    d["sessions"][0]["power_kw"][3] = None


def _no_current_on_ac(d):
    d["sessions"][0]["current_a"] = None


def _foreign_session(d):
    d["sessions"].append(dict(d["sessions"][0], id="stranger"))


def _huge_power(d):  # found by a bug hunt: an OverflowError
    d["sessions"][0]["power_kw"][0] = 10**400


def _nan_power(d):
    d["sessions"][0]["power_kw"][0] = float("nan")


def _session_twice(d):  # found by a bug hunt: the last entry was the one checked
    d["sessions"].append(dict(d["sessions"][0], power_kw=[0.0] * len(d["index"])))


def _session_moved(d):  # a reader of the file would apply the plan to this EVSE
    d["sessions"][0]["evse"] = d["sessions"][1]["evse"]


def _index_shifted(d):
    d["index"] = d["index"][1:] + d["index"][:1]


def _unknown_evse_view(d):
    d["evses"]["nope"] = d["evses"]["cp1"]


def _short_evse_view(d):
    d["evses"]["cp1"]["power_kw"] = d["evses"]["cp1"]["power_kw"][:-1]


@pytest.mark.parametrize(
    "corrupt, path",
    [
        (_drop_session_entry, "$.sessions"),
        (_short_power, "$.sessions[0].power_kw"),
        (_none_in_power, "$.sessions[0].power_kw"),
        (_no_current_on_ac, "$.sessions[0].current_a"),
        (_foreign_session, "$.sessions[3].id"),
        (_huge_power, "$.sessions[0].power_kw"),
        (_nan_power, "$.sessions[0].power_kw"),
        (_session_twice, "$.sessions[3].id"),
        (_session_moved, "$.sessions[0].evse"),
        (_index_shifted, "$.index"),
        (_unknown_evse_view, "$.evses.nope"),
        (_short_evse_view, "$.evses.cp1.power_kw"),
    ],
)
def test_plan_dict_names_each_malformed_field(corrupt, path):
    """A plan file that does not fit its scenario is rejected, naming the field."""
    sc = scenario_from_dict(doc_example())
    d = json.loads(json.dumps(plan_to_dict(sc.optimize(method="greedy"), sc)))
    assert check_plan_dict(d) == []
    corrupt(d)
    with pytest.raises(InputError) as err:
        check_plan_dict(d)
    assert path in err.value.paths, err.value.paths


# --------------------------------------------------------------------------- OCPP needs

ARRIVAL = pd.Timestamp("2024-06-03 07:00", tz="Europe/Amsterdam")


@cache
def official(version: str):
    folder = {"2.0.1": "v201", "2.1": "v21"}[version]
    text = (files("ocpp") / folder / "schemas" / "NotifyEVChargingNeedsRequest.json").read_text(
        encoding="utf-8-sig"
    )
    schema = json.loads(text)
    cls = validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


AC_201 = {
    "evseId": 2,
    "maxScheduleTuples": 24,
    "chargingNeeds": {
        "requestedEnergyTransfer": "AC_single_phase",
        "departureTime": "2024-06-03T15:30:00Z",
        "acChargingParameters": {
            "energyAmount": 18500,
            "evMinCurrent": 6,
            "evMaxCurrent": 32,
            "evMaxVoltage": 250,
        },
    },
}

DC_V2X_21 = {
    "evseId": 1,
    "timestamp": "2024-06-03T05:00:00Z",
    "chargingNeeds": {
        "requestedEnergyTransfer": "DC_BPT",
        "availableEnergyTransfer": ["DC", "DC_BPT"],
        "controlMode": "ScheduledControl",
        "mobilityNeedsMode": "EVCC",
        "departureTime": "2024-06-03T17:00:00+02:00",
        "dcChargingParameters": {
            "evMaxCurrent": 200,
            "evMaxVoltage": 450,
            "evMaxPower": 50000,
            "evEnergyCapacity": 60000,
            "stateOfCharge": 40,
        },
        "v2xChargingParameters": {
            "maxChargePower": 22000,
            "minChargePower": 1500,
            "maxDischargePower": 11000,
            "evTargetEnergyRequest": 24000,
            "evMinV2XEnergyRequest": -6000,
            "evMaxV2XEnergyRequest": 30000,
            "targetSoC": 80,
        },
    },
}

AC_BPT_21 = {
    "evseId": 1,
    "chargingNeeds": {
        "requestedEnergyTransfer": "AC_BPT",
        "departureTime": "2024-06-03T18:00:00Z",
        "v2xChargingParameters": {
            "maxChargePower": 11000,
            "maxDischargePower": 7400,
            "evTargetEnergyRequest": -500,
        },
    },
}


@pytest.mark.parametrize(
    "payload, version", [(AC_201, "2.0.1"), (DC_V2X_21, "2.1"), (AC_BPT_21, "2.1")]
)
def test_test_payloads_are_valid_for_the_official_schema(payload, version):
    assert list(official(version).iter_errors(payload)) == []


def test_ac_201_payload_to_session():
    s = session_from_notify_ev_charging_needs(
        AC_201, evse="cp2", session_id="tx-9", arrival=ARRIVAL, transaction_id="9"
    )
    assert s == cp.Session(
        "tx-9",
        evse="cp2",
        arrival=ARRIVAL,
        departure=pd.Timestamp("2024-06-03 17:30", tz="Europe/Amsterdam"),
        energy_kwh=18.5,
        max_current_a=32,
        min_current_a=6,
        phases=1,
        transaction_id="9",
    )
    assert str(s.departure.tz) == "Europe/Amsterdam"
    # it plans on the documented site
    sc = scenario_from_dict(doc_example())
    sessions = [x for x in sc.sessions if x.evse != "cp2"] + [s]
    plan = dataclasses.replace(sc, sessions=sessions).optimize()
    assert plan.sessions.loc["tx-9", "delivered_kwh"] == pytest.approx(18.5, abs=0.05)


def test_dc_v2x_21_payload_to_session():
    s = session_from_notify_ev_charging_needs(
        DC_V2X_21, evse="dc1", session_id="v1", arrival=ARRIVAL, version="2.1"
    )
    assert s.v2g is True
    assert s.energy_kwh == 24.0
    assert s.battery_capacity_kwh == 60.0 and s.soc_now_pct == 40 and s.soc_target_pct == 80
    assert s.soc_min_pct == pytest.approx(30.0)  # 40 % - 6 kWh / 60 kWh
    assert s.max_power_kw == 22.0 and s.min_power_kw == 1.5
    assert s.max_discharge_power_kw == 11.0
    assert s.max_current_a is None and s.phases is None  # DC: power limits only
    assert s.departure == pd.Timestamp("2024-06-03 17:00", tz="Europe/Amsterdam")
    sc = scenario_from_dict(doc_example())
    sessions = [x for x in sc.sessions if x.evse != "dc1"] + [s]
    plan = dataclasses.replace(sc, sessions=sessions).optimize()
    assert plan.violations() == []


def test_ac_bpt_21_payload_to_session():
    s = session_from_notify_ev_charging_needs(
        AC_BPT_21, evse="cp1", session_id="v2", arrival=ARRIVAL, version="2.1", priority=2.0
    )
    assert s.v2g is True and s.max_discharge_power_kw == 7.4 and s.max_power_kw == 11.0
    assert s.energy_kwh == 0.0  # above the target already
    assert s.phases is None and s.priority == 2.0
    no_dis = copy.deepcopy(AC_BPT_21)
    no_dis["chargingNeeds"]["v2xChargingParameters"]["maxDischargePower"] = 0
    s = session_from_notify_ev_charging_needs(
        no_dis, evse="cp1", session_id="v2", arrival=ARRIVAL, version="2.1"
    )
    assert s.v2g is False and s.max_discharge_power_kw is None


@pytest.mark.parametrize(
    "change, version, path",
    [
        (
            lambda p: p["chargingNeeds"]["acChargingParameters"].pop("evMaxVoltage"),
            "2.0.1",
            "$.chargingNeeds.acChargingParameters.evMaxVoltage",
        ),
        (
            lambda p: p["chargingNeeds"]["acChargingParameters"].update(evMaxCurrent="32"),
            "2.0.1",
            "$.chargingNeeds.acChargingParameters.evMaxCurrent",
        ),
        (
            lambda p: p["chargingNeeds"].update(requestedEnergyTransfer="AC_BPT"),
            "2.0.1",
            "$.chargingNeeds.requestedEnergyTransfer",
        ),
        (
            lambda p: p["chargingNeeds"].update(v2xChargingParameters={}),
            "2.0.1",
            "$.chargingNeeds.v2xChargingParameters",
        ),
        (lambda p: p.pop("evseId"), "2.1", "$.evseId"),
        (
            lambda p: p["chargingNeeds"].update(departureTime="2024-06-03T15:30:00"),
            "2.0.1",
            "$.chargingNeeds.departureTime",
        ),
    ],
)
def test_invalid_payload_raises_input_error(change, version, path):
    payload = copy.deepcopy(AC_201)
    change(payload)
    with pytest.raises(InputError) as err:
        session_from_notify_ev_charging_needs(
            payload, evse="cp2", session_id="x", arrival=ARRIVAL, version=version
        )
    assert path in err.value.paths


def test_needs_helper_argument_errors():
    with pytest.raises(InputError) as err:
        session_from_notify_ev_charging_needs(
            AC_201, evse="cp2", session_id="x", arrival="2024-06-03 07:00"
        )
    assert err.value.paths == ["arrival"]
    with pytest.raises(InputError) as err:
        session_from_notify_ev_charging_needs(
            AC_201, evse="cp2", session_id="x", arrival=ARRIVAL, version="1.6"
        )
    assert err.value.paths == ["version"]
    no_time = copy.deepcopy(AC_201)
    del no_time["chargingNeeds"]["departureTime"]
    with pytest.raises(InputError) as err:
        session_from_notify_ev_charging_needs(no_time, evse="cp2", session_id="x", arrival=ARRIVAL)
    assert err.value.paths == ["$.chargingNeeds.departureTime"]
    dep = ARRIVAL + pd.Timedelta("8h")
    s = session_from_notify_ev_charging_needs(
        no_time, evse="cp2", session_id="x", arrival=ARRIVAL, departure=dep
    )
    assert s.departure == dep
    bare = {
        "evseId": 1,
        "chargingNeeds": {"requestedEnergyTransfer": "DC", "departureTime": "2024-06-03T18:00:00Z"},
    }
    with pytest.raises(InputError) as err:
        session_from_notify_ev_charging_needs(bare, evse="dc1", session_id="x", arrival=ARRIVAL)
    assert err.value.paths == ["$.chargingNeeds"]
