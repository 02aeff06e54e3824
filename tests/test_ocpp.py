"""Tests for chargeplan.ocpp: payloads validate against the official OCPP schemas
and meet the profile rules of docs/ocpp-profile-rules.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import warnings
from decimal import Decimal
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for

import chargeplan.ocpp as ocpp_mod
from chargeplan.exceptions import InputError, OcppExportWarning
from chargeplan.ocpp import (
    ChargingProfileRequest,
    ConnectorSchedule,
    ProfileRuleError,
    StationCapabilities,
    StationLimit,
    build_profiles,
    check_profile,
    format_ocpp_datetime,
    stable_profile_id,
)

VERSIONS = ("1.6", "2.0.1", "2.1")
#: versions without discharge (rule 31)
CHARGE_ONLY_VERSIONS = ("1.6", "2.0.1")
START = pd.Timestamp("2024-03-01 13:00", tz="Europe/Amsterdam")
START_STR = "2024-03-01T12:00:00.000Z"
SCHEMA_FILES = {
    "1.6": "v16/schemas/SetChargingProfile.json",
    "2.0.1": "v201/schemas/SetChargingProfileRequest.json",
    "2.1": "v21/schemas/SetChargingProfileRequest.json",
}


# --------------------------------------------------------------------------- helpers


@cache
def _validator(version: str):
    """Validator of the official schema shipped in the ``ocpp`` package.

    Schema and instance are both parsed with ``parse_float=Decimal`` (as the ocpp
    package itself does for 1.6 SetChargingProfile): with binary floats,
    ``multipleOf: 0.1`` rejects about a third of the one-decimal values (0.3 / 0.1
    is 2.9999999999999996), see ``test_multipleof_float_quirk``.
    """
    text = (files("ocpp") / SCHEMA_FILES[version]).read_text(encoding="utf-8-sig")
    schema = json.loads(text, parse_float=Decimal)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(payload: dict, version: str) -> list[str]:
    text = json.dumps(payload, allow_nan=False)  # JSON-ready: plain types, no NaN
    instance = json.loads(text, parse_float=Decimal)
    return [
        f"{list(e.absolute_path)}: {e.message}" for e in _validator(version).iter_errors(instance)
    ]


def ocpp_package_validates(payload: dict, version: str) -> None:
    """Validate the way the ``ocpp`` package does before sending a Call."""
    from ocpp.messages import Call, validate_payload

    call = Call(unique_id="1", action="SetChargingProfile", payload=json.loads(json.dumps(payload)))
    asyncio.run(validate_payload(call, version))


def ac(
    session_id: str = "s1",
    current_a=(16, 16, 32, 32, 10, 10),
    *,
    phases: int = 3,
    connector_id: int = 1,
    station_id: str = "cs1",
    transaction_id: str | int | None = "1234",
    volts: float = 230.0,
    min_current_a: float = 6.0,
) -> ConnectorSchedule:
    cur = np.asarray(current_a, dtype=float)
    w_per_a = volts * phases
    return ConnectorSchedule(
        station_id=station_id,
        connector_id=connector_id,
        session_id=session_id,
        transaction_id=transaction_id,
        dc=False,
        number_phases=phases,
        w_per_a=w_per_a,
        min_current_a=min_current_a,
        current_a=cur,
        power_w=cur * w_per_a,
    )


def dc(
    session_id: str = "d1",
    power_w=(50_000, 50_000, 0, 0, 120_000.4, 7_300.05),
    *,
    connector_id: int = 2,
    station_id: str = "cs1",
    transaction_id: str | int | None = 77,
) -> ConnectorSchedule:
    return ConnectorSchedule(
        station_id=station_id,
        connector_id=connector_id,
        session_id=session_id,
        transaction_id=transaction_id,
        dc=True,
        number_phases=None,
        w_per_a=None,
        min_current_a=0.0,
        current_a=None,
        power_w=np.asarray(power_w, dtype=float),
    )


def build(
    schedules, limits=(), *, version="2.0.1", step_s=900, **kw
) -> list[ChargingProfileRequest]:
    return build_profiles(schedules, limits, start=START, step_s=step_s, version=version, **kw)


def periods(req: ChargingProfileRequest) -> list[dict]:
    return schedule_of(req)["chargingSchedulePeriod"]


def schedule_of(req: ChargingProfileRequest) -> dict:
    if req.version == "1.6":
        return req.payload["csChargingProfiles"]["chargingSchedule"]
    (sched,) = req.payload["chargingProfile"]["chargingSchedule"]
    return sched


def profile_of(req: ChargingProfileRequest) -> dict:
    key = "csChargingProfiles" if req.version == "1.6" else "chargingProfile"
    return req.payload[key]


def limit_in_force(pers: list[dict], t: int) -> float:
    """Evaluate the period step function at second ``t``."""
    current = None
    for p in pers:
        if p["startPeriod"] <= t:
            current = p["limit"]
    assert current is not None
    return current


def pairs(req: ChargingProfileRequest) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"]) for p in periods(req)]


# --------------------------------------------------------------------------- schema


CAPS = {
    "A": StationCapabilities(rate_units=("A", "W")),
    "W": StationCapabilities(rate_units=("W", "A")),
    "W-only": StationCapabilities(rate_units=("W",)),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("caps", sorted(CAPS))
@pytest.mark.parametrize("with_limits", [False, True])
@pytest.mark.filterwarnings("ignore::chargeplan.exceptions.OcppExportWarning")
def test_payloads_validate_against_official_schema(version, caps, with_limits):
    schedules = [
        ac("s1", (16, 16, 7.3, 7.3, 0, 31.9), phases=1, connector_id=1),
        ac("s2", (6, 6.1, 13.7, 0, 0, 32), phases=3, connector_id=2),
        dc("d1", connector_id=3),
    ]
    limits = []
    if with_limits:
        limits = [
            StationLimit("cs1", np.array([63, 63, 40.7, 40.7, 55.55, 63.0]), np.full(6, 43e3)),
            StationLimit("cs2", np.array([100, 90.3, 80, 70, 60, 50.0]), np.full(6, 22_079.99)),
            StationLimit("cs3", None, np.full(6, 150_000.0)),
        ]
    reqs = build(schedules, limits, version=version, capabilities=CAPS[caps])
    assert len(reqs) == len(schedules) + len(limits)
    units = set()
    for req in reqs:
        assert req.action == "SetChargingProfile"
        assert req.version == version
        assert schema_errors(req.payload, version) == []
        ocpp_package_validates(req.payload, version)
        assert check_profile(req.payload, version) == []
        units.add(schedule_of(req)["chargingRateUnit"])
    assert units == ({"W"} if caps != "A" else {"A", "W"})


@pytest.mark.parametrize("version", VERSIONS)
def test_every_one_decimal_limit_passes_schema(version):
    # our limits are k / 10: their repr has one decimal, so Decimal parsing accepts them
    pers = [{"startPeriod": k, "limit": k / 10} for k in range(0, 3000)]
    pers += [{"startPeriod": 3000 + k, "limit": (10 * 10**6 + k) / 10} for k in range(0, 300)]
    if version == "1.6":
        payload = {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": pers},
            },
        }
    else:
        payload = {
            "evseId": 0,
            "chargingProfile": {
                "id": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargingStationMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": pers[:1024]}
                ],
            },
        }
    assert schema_errors(payload, version) == []
    assert not [m for m in check_profile(payload, version, max_periods=4000) if "rule 30" in m]


def test_multipleof_float_quirk():
    """Document why the schema tests parse with Decimal (jsonschema issue #247)."""
    float_schema = json.loads((files("ocpp") / SCHEMA_FILES["1.6"]).read_text(encoding="utf-8-sig"))
    limit_schema = float_schema["properties"]["csChargingProfiles"]["properties"][
        "chargingSchedule"
    ]["properties"]["chargingSchedulePeriod"]["items"]["properties"]["limit"]
    cls = validator_for(float_schema)
    naive = cls(limit_schema)
    rejected = [k / 10 for k in range(1000) if not naive.is_valid(k / 10)]
    assert 0.3 in rejected  # 0.3 / 0.1 == 2.9999999999999996 with binary floats
    assert len(rejected) > 100  # about a third of the one-decimal values
    decimal_schema = json.loads(json.dumps(limit_schema), parse_float=Decimal)
    exact = cls(decimal_schema)
    assert all(exact.is_valid(Decimal(repr(k / 10))) for k in range(1000))
    assert not exact.is_valid(Decimal("7.35"))


# --------------------------------------------------------------------------- properties

slot_value = st.one_of(
    st.just(0.0),
    st.integers(60, 630).map(lambda k: k / 10),  # on the 0.1 grid
    st.floats(6.0, 63.0, allow_nan=False),  # anywhere in [6, 63]
)
noise = st.floats(-1e-9, 1e-9, allow_nan=False)


@st.composite
def plans(draw):
    n = draw(st.integers(1, 120))
    vals = draw(st.lists(st.tuples(slot_value, noise), min_size=n, max_size=n))
    cur = np.array([max(0.0, v + e) if v > 0 else 0.0 for v, e in vals])
    return (
        cur,
        draw(st.integers(60, 3600)),
        draw(st.integers(1, 48)),
        draw(st.sampled_from(VERSIONS)),
        draw(st.sampled_from(["A", "W"])),
        draw(st.sampled_from([1, 3])),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_properties_of_built_profiles(plan):
    cur, step_s, max_periods, version, unit, phases = plan
    caps = StationCapabilities(rate_units=(unit,), max_periods=max_periods)
    cs = ac("s", cur, phases=phases)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcppExportWarning)
        (req,) = build([cs], version=version, step_s=step_s, capabilities=caps)
    payload = req.payload
    assert check_profile(payload, version, max_periods=max_periods) == []
    assert schema_errors(payload, version) == []
    sched = schedule_of(req)
    assert sched["chargingRateUnit"] == unit
    assert sched["duration"] == cur.size * step_s
    assert sched["startSchedule"] == START_STR
    pers = sched["chargingSchedulePeriod"]
    starts = [p["startPeriod"] for p in pers]
    assert starts[0] == 0
    assert all(type(s) is int for s in starts)
    assert all(a < b for a, b in zip(starts, starts[1:], strict=False))
    assert all(s % step_s == 0 for s in starts)
    assert 1 <= len(pers) <= max_periods
    for p in pers:
        assert type(p["limit"]) is float
        assert Decimal(str(p["limit"])) % Decimal("0.1") == 0
        assert p["numberPhases"] == phases
        if unit == "A":
            assert not 0 < p["limit"] < 6
    # equal neighbours are always merged
    assert all(a["limit"] != b["limit"] for a, b in zip(pers, pers[1:], strict=False))
    planned = cur if unit == "A" else cs.power_w
    floored = np.floor(planned * 10 + 1e-5) / 10
    if unit == "W":
        floored[cur < 6 - 1e-6] = 0.0
    runs = 1 + int(np.count_nonzero(np.diff(floored)))
    for i in range(cur.size):
        emitted = limit_in_force(pers, i * step_s)
        # conservative: never above the plan at any instant (float noise <= 1e-6)
        assert emitted <= planned[i] + 1e-6
        if runs <= max_periods:  # no budget merge needed: exact floor of the plan
            assert emitted == pytest.approx(floored[i], abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 400_000, allow_nan=False), min_size=1, max_size=96),
    st.integers(1, 30),
    st.sampled_from(VERSIONS),
)
def test_properties_dc_and_station_limit(power, max_periods, version):
    power = np.array(power)
    caps = StationCapabilities(max_periods=max_periods)
    lim = StationLimit("cs1", power / 690.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcppExportWarning)
        mx, tx = build([dc("d", power)], [lim], version=version, capabilities=caps)
    for req, planned in ((tx, power), (mx, power / 690.0)):
        assert schema_errors(req.payload, version) == []
        assert check_profile(req.payload, version, max_periods=max_periods) == []
        pers = periods(req)
        assert len(pers) <= max_periods
        for i, value in enumerate(planned):
            assert limit_in_force(pers, i * 900) <= value + 1e-6
    assert all("numberPhases" not in p for p in periods(tx))
    assert schedule_of(tx)["chargingRateUnit"] == "W"
    assert schedule_of(mx)["chargingRateUnit"] == "A"


# --------------------------------------------------------------------------- hand cases


@pytest.mark.parametrize("version", VERSIONS)
def test_equal_consecutive_slots_merge(version):
    (req,) = build([ac(current_a=[16.0] * 8)], version=version)
    assert periods(req) == [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}]
    assert schedule_of(req)["duration"] == 8 * 900


def test_periods_one_per_change():
    (req,) = build([ac(current_a=[16, 16, 0, 0, 32, 6])], step_s=600)
    assert pairs(req) == [(0, 16.0), (1200, 0.0), (2400, 32.0), (3000, 6.0)]


def test_budget_merge_hand_example():
    # runs 16 A (2 slots), 32 A (2), 10 A (2); two periods allowed.
    # merge 16|32 -> 16 loses 16 A x 2 slots; merge 32|10 -> 10 loses 22 A x 2 slots.
    caps = StationCapabilities(max_periods=2)
    with pytest.warns(OcppExportWarning, match=r"rule 27.*8 Ah"):
        (req,) = build([ac(current_a=[16, 16, 32, 32, 10, 10])], capabilities=caps)
    assert pairs(req) == [(0, 16.0), (3600, 10.0)]
    # within budget: no merge, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (req,) = build(
            [ac(current_a=[16, 16, 32, 32, 10, 10])],
            capabilities=StationCapabilities(max_periods=3),
        )
    assert pairs(req) == [(0, 16.0), (1800, 32.0), (3600, 10.0)]


def test_budget_merge_picks_cheapest_and_never_makes_small_current():
    caps = StationCapabilities(max_periods=3)
    # 32|31 is the cheapest merge (1 A x 1 slot)
    with pytest.warns(OcppExportWarning):
        (req,) = build([ac(current_a=[0, 32, 31, 6, 20])], capabilities=caps)
    # then 6|20 (14 A x 1 slot) beats 31|6 (25 A x 2 slots) and 0|31 (31 A x 2 slots)
    assert pairs(req) == [(0, 0.0), (900, 31.0), (2700, 6.0)]
    for p in periods(req):
        assert p["limit"] == 0 or p["limit"] >= 6
    # the loss counts the slots of the HIGHER run: 20|10x4 loses 10 A x 1 slot (2.5 Ah),
    # 10x4|6 loses 4 A x 4 slots (4 Ah), so the first pair is merged
    with pytest.warns(OcppExportWarning, match="2.5 Ah"):
        (req,) = build(
            [ac(current_a=[20, 10, 10, 10, 10, 6])], capabilities=StationCapabilities(max_periods=2)
        )
    assert pairs(req) == [(0, 10.0), (4500, 6.0)]
    with pytest.warns(OcppExportWarning):
        (req,) = build(
            [ac(current_a=[0, 32, 31, 6, 20])], capabilities=StationCapabilities(max_periods=1)
        )
    assert pairs(req) == [(0, 0.0)]


def test_rounding_down_to_tenths_with_float_noise():
    cur = [15.9999999999, 16.04, 7.35, 7.3, 6.0000000001, 0.1 + 0.2 + 6]
    (req,) = build([ac(current_a=cur)], step_s=60)
    assert [lim for _, lim in pairs(req)] == [16.0, 7.3, 6.0, 6.3]
    for p in periods(req):
        assert repr(p["limit"]) in {"16.0", "7.3", "6.0", "6.3"}


def test_w_for_ac_and_minimum_current():
    caps = StationCapabilities(rate_units=("W",))
    with pytest.warns(OcppExportWarning, match="rule 32"):
        (req,) = build([ac(current_a=[16, 5, 0, 6], phases=1)], capabilities=caps)
    assert pairs(req) == [(0, 3680.0), (900, 0.0), (2700, 1380.0)]
    assert {p["numberPhases"] for p in periods(req)} == {1}


def test_small_current_in_a_becomes_zero():
    with pytest.warns(OcppExportWarning, match="rule 32"):
        (req,) = build([ac(current_a=[3.0, 16, 5.99])])
    assert pairs(req) == [(0, 0.0), (900, 16.0), (1800, 0.0)]
    # a higher EV minimum is honoured too
    with pytest.warns(OcppExportWarning, match="rule 32"):
        (req,) = build([ac(current_a=[8.0, 16], min_current_a=10.0)])
    assert pairs(req) == [(0, 0.0), (900, 16.0)]


def test_dc_uses_w_without_phases():
    (req,) = build([dc(power_w=[50_000, 7_300.05, 0.04])], version="1.6")
    assert [p for p in periods(req)] == [
        {"startPeriod": 0, "limit": 50000.0},
        {"startPeriod": 900, "limit": 7300.0},
        {"startPeriod": 1800, "limit": 0.0},
    ]
    assert schedule_of(req)["chargingRateUnit"] == "W"


def test_dc_with_only_a_raises():
    caps = {"cs1": StationCapabilities(rate_units=("A",))}
    with pytest.raises(ValueError, match="cs1") as err:
        build([dc()], capabilities=caps)
    assert isinstance(err.value, InputError)
    # the AC schedule on a station allowing only A is fine
    (req,) = build([ac()], capabilities=caps)
    assert schedule_of(req)["chargingRateUnit"] == "A"


def test_v16_transaction_id_int_like_and_non_int():
    reqs = build(
        [ac("a", transaction_id="123", connector_id=1), ac("b", transaction_id=5, connector_id=2)],
        version="1.6",
    )
    assert [profile_of(r)["transactionId"] for r in reqs] == [123, 5]
    with pytest.warns(OcppExportWarning, match="transaction id 'tx-abc'"):
        (req,) = build([ac(transaction_id="tx-abc")], version="1.6")
    assert "transactionId" not in profile_of(req)
    assert schema_errors(req.payload, "1.6") == []
    with pytest.warns(OcppExportWarning):
        (req,) = build([ac(transaction_id=None)], version="1.6")
    assert "transactionId" not in profile_of(req)


def test_v2_transaction_id_required():
    with pytest.raises(ValueError, match="transaction_id"):
        build([ac(transaction_id=None)], version="2.0.1")
    with pytest.raises(ValueError, match="36"):
        build([ac(transaction_id="x" * 37)], version="2.0.1")
    (req,) = build([ac(transaction_id=987)], version="2.0.1")
    assert profile_of(req)["transactionId"] == "987"


def test_start_schedule_format():
    (req,) = build([ac()])
    assert schedule_of(req)["startSchedule"] == "2024-03-01T12:00:00.000Z"
    assert format_ocpp_datetime(pd.Timestamp("2024-07-01 00:00:00.123456", tz="UTC")) == (
        "2024-07-01T00:00:00.123Z"
    )
    dst_end = pd.Timestamp("2024-10-27 02:30").tz_localize("Europe/Amsterdam", ambiguous=True)
    assert format_ocpp_datetime(dst_end) == "2024-10-27T00:30:00.000Z"  # still CEST
    with pytest.raises(ValueError, match="start"):
        build_profiles(
            [ac()], [], start=pd.Timestamp("2024-03-01 12:00"), step_s=900, version="1.6"
        )


@pytest.mark.parametrize("version", VERSIONS)
def test_payload_shapes_and_order(version):
    lim = StationLimit("cs1", np.array([40.0, 40, 40, 32, 32, 32]), np.full(6, 20_000.0))
    reqs = build([ac("s1", connector_id=1), dc("d1", connector_id=2)], [lim], version=version)
    mx, tx1, tx2 = reqs
    if version == "1.6":
        assert set(mx.payload) == {"connectorId", "csChargingProfiles"}
        assert mx.payload["connectorId"] == 0
        assert isinstance(mx.payload["csChargingProfiles"]["chargingSchedule"], dict)
        assert profile_of(mx)["chargingProfilePurpose"] == "ChargePointMaxProfile"
        assert profile_of(tx1)["chargingProfileId"] == stable_profile_id("tx:s1")
        assert profile_of(mx)["chargingProfileId"] == stable_profile_id("max:cs1")
        assert [r.payload["connectorId"] for r in reqs] == [0, 1, 2]
    else:
        assert set(mx.payload) == {"evseId", "chargingProfile"}
        assert profile_of(mx)["chargingProfilePurpose"] == "ChargingStationMaxProfile"
        for r in reqs:
            assert profile_of(r)["id"] == schedule_of(r)["id"]
        assert profile_of(tx1)["id"] == stable_profile_id("tx:s1")
        assert [r.payload["evseId"] for r in reqs] == [0, 1, 2]
    assert "transactionId" not in profile_of(mx)
    assert profile_of(mx)["chargingProfileKind"] == "Absolute"
    assert schedule_of(mx)["chargingRateUnit"] == "A"
    assert pairs(mx) == [(0, 40.0), (2700, 32.0)]
    assert all("numberPhases" not in p for p in periods(mx))
    assert profile_of(tx1)["chargingProfilePurpose"] == "TxProfile"
    assert all(r.station_id == "cs1" for r in reqs)
    # no None anywhere
    assert "null" not in json.dumps([r.payload for r in reqs])


def test_station_limit_unit_choice_and_errors():
    lim_w = StationLimit("cs9", None, np.full(4, 11_000.0))
    (req,) = build([], [lim_w], version="1.6")
    assert schedule_of(req)["chargingRateUnit"] == "W"
    lim_both = StationLimit("cs9", np.full(4, 16.0), np.full(4, 11_000.0))
    (req,) = build([], [lim_both], capabilities=StationCapabilities(rate_units=("W", "A")))
    assert schedule_of(req)["chargingRateUnit"] == "W"
    with pytest.raises(ValueError, match="cs9"):
        build([], [lim_w], capabilities=StationCapabilities(rate_units=("A",)))
    with pytest.raises(ValueError, match="cs9"):
        build([], [StationLimit("cs9", None, None)])


def test_stable_ids_and_overrides():
    a = build([ac("s1")])
    b = build([ac("s1", current_a=[6, 6, 6, 6, 6, 6])])
    assert profile_of(a[0])["id"] == profile_of(b[0])["id"] == stable_profile_id("tx:s1")
    assert 1 <= stable_profile_id("tx:s1") < 2**31
    (req,) = build([ac("s1")], profile_ids={"tx:s1": 4242, "tx:unused": 1})
    assert profile_of(req)["id"] == 4242
    with pytest.raises(ValueError, match="collides"):
        build([ac("s1"), ac("s2", connector_id=2)], profile_ids={"tx:s1": 7, "tx:s2": 7})
    with pytest.raises(ValueError, match="profile_ids"):
        build([ac("s1")], profile_ids={"tx:s1": 0})
    with pytest.raises(InputError, match="must be a mapping") as e:  # was a TypeError
        build([ac("s1")], profile_ids=7)
    assert e.value.paths == ["profile_ids"]


@pytest.mark.parametrize("caps", [7, "A", [StationCapabilities()], {"cs1": 5}, {3: None}])
def test_capabilities_of_the_wrong_type_are_named(caps):
    with pytest.raises(InputError) as e:  # were AttributeErrors (or ignored)
        build([ac("s1")], capabilities=caps)
    assert e.value.paths == ["capabilities"]


def test_input_problems_are_all_listed():
    bad_ac = ConnectorSchedule("cs1", 0, "s1", "t", False, 4, -1.0, 6.0, None, np.array([np.nan]))
    with pytest.raises(InputError) as err:
        build([bad_ac, ac("s2", connector_id=3), ac("s2", connector_id=3)], step_s=0)
    paths = " ".join(err.value.paths)
    for needle in ("connector_id", "number_phases", "w_per_a", "power_w", "step_s", "session_id"):
        assert needle in paths
    with pytest.raises(ValueError, match="rule 31"):
        build([dc(power_w=[-5.0])])


LIM = "station_limits[0] (station_id='cs1')"
SCH = "schedules[0] (session_id='s1')"
BAD_BUILD_INPUT = {
    "limit not numeric": ([], [StationLimit("cs1", ["x"], None)], f"{LIM}.limit_a", "numeric"),
    "limit 2-D": ([], [StationLimit("cs1", np.ones((2, 3)), None)], f"{LIM}.limit_a", "1-D"),
    "limit empty": ([], [StationLimit("cs1", np.array([]), None)], f"{LIM}.limit_a", "non-empty"),
    "limit inf": ([], [StationLimit("cs1", np.array([1, np.inf]), None)], f"{LIM}.limit_a", "NaN"),
    "limit lengths": (
        [],
        [StationLimit("cs1", np.full(6, 16.0), np.full(5, 1e4))],
        LIM,
        "limit_a and limit_w differ in length (6 vs 5)",
    ),
    "two limits": (
        [],
        [StationLimit("cs1", np.full(6, 16.0), None), StationLimit("cs1", np.full(6, 9.0), None)],
        "station_limits[1] (station_id='cs1')",
        "duplicates an earlier station limit",
    ),
    "limit station id": (
        [],
        [StationLimit("", np.full(6, 16.0), None)],
        "station_limits[0] (station_id='').station_id",
        "non-empty str",
    ),
    "schedule station id": (
        [dataclasses.replace(ac(), station_id="")],
        [],
        f"{SCH}.station_id",
        "non-empty str",
    ),
    "session id": (
        [dataclasses.replace(ac(), session_id="")],
        [],
        "schedules[0] (session_id='').session_id",
        "non-empty str",
    ),
    "current and power lengths": (
        [dataclasses.replace(ac(), current_a=np.full(5, 16.0))],
        [],
        SCH,
        "current_a and power_w differ in length (5 vs 6)",
    ),
    "power not current x volts": (
        [dataclasses.replace(ac(), power_w=np.full(6, 1000.0))],
        [],
        f"{SCH}.power_w",
        "must equal current_a * w_per_a",
    ),
    "minimum current NaN": (
        [dataclasses.replace(ac(), min_current_a=float("nan"))],
        [],
        f"{SCH}.min_current_a",
        "finite float >= 0",
    ),
    "minimum current str": (
        [dataclasses.replace(ac(), min_current_a="6")],
        [],
        f"{SCH}.min_current_a",
        "Got '6' instead",
    ),
    "dc not a bool": ([dataclasses.replace(ac(), dc="false")], [], f"{SCH}.dc", "must be a bool"),
    "current on DC": (
        [dataclasses.replace(dc(), current_a=np.full(6, 10.0))],
        [],
        "schedules[0] (session_id='d1').current_a",
        "must be None on DC",
    ),
    # a station limit that ends before the schedule would leave the charger at its
    # hardware maximum for the rest of the horizon (rule 24)
    "limit shorter than schedule": (
        [ac()],
        [StationLimit("cs1", np.full(4, 16.0), None)],
        SCH,
        f"has 6 slots where {LIM} has 4",
    ),
    "schedules of two lengths": (
        [ac(), ac("s2", current_a=[16.0] * 7, connector_id=2)],
        [],
        "schedules[1] (session_id='s2')",
        f"has 7 slots where {SCH} has 6",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BUILD_INPUT))
def test_build_profiles_names_each_bad_input(case):
    schedules, limits, path, message = BAD_BUILD_INPUT[case]
    with pytest.raises(InputError) as err:
        build(schedules, limits)
    assert err.value.paths == [path]
    assert message in err.value.problems[0].message


def test_versions():
    assert ocpp_mod.SUPPORTED_VERSIONS == VERSIONS
    with pytest.raises(ValueError, match="version"):
        build([ac()], version="2.0")
    with pytest.raises(ValueError, match="version"):
        check_profile({}, "2.0")
    assert check_profile({}, "2.1") == [
        "rule 2: payload.chargingProfile: is required.",
        "rule 2: payload.evseId: is required.",
    ]


def test_capabilities_validation():
    assert StationCapabilities(rate_units=["W"]).rate_units == ("W",)
    with pytest.raises(ValueError, match="rule 11"):
        StationCapabilities(stack_level=9, max_stack_level=8)
    with pytest.raises(ValueError, match="rate_units"):
        StationCapabilities(rate_units=("kW",))
    with pytest.raises(ValueError, match="max_periods"):
        StationCapabilities(max_periods=0)
    (req,) = build([ac()], capabilities=StationCapabilities(stack_level=np.int64(3)))
    assert type(profile_of(req)["stackLevel"]) is int and profile_of(req)["stackLevel"] == 3


def test_fail_closed(monkeypatch):
    monkeypatch.setattr(ocpp_mod, "check_profile", lambda *a, **k: ["rule 99: broken"])
    with pytest.raises(ProfileRuleError, match="rule 99") as err:
        build([ac()])
    assert err.value.violations == ["rule 99: broken"]


# --------------------------------------------------------------------------- check_profile


def _bad_v201() -> dict:
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": 5,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": "t1",
            "chargingSchedule": [
                {
                    "id": 5,
                    "startSchedule": START_STR,
                    "duration": 3600,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 5, "limit": 16.0},
                        {"startPeriod": 900, "limit": 3.0},
                        {"startPeriod": 600, "limit": 16.0},
                    ],
                }
            ],
        },
    }


def test_check_profile_catches_hand_made_bad_payload():
    msgs = check_profile(_bad_v201(), "2.0.1")
    joined = "\n".join(msgs)
    assert "rule 28" in joined  # first startPeriod 5
    assert "rule 32" in joined  # 3.0 A
    assert "rule 29" in joined  # 600 after 900
    assert all(m.startswith("rule ") for m in msgs)
    assert len(msgs) == 3


def test_check_profile_more_rules():
    p = _bad_v201()
    prof = p["chargingProfile"]
    prof["chargingSchedule"][0]["chargingSchedulePeriod"] = [
        {"startPeriod": 0, "limit": 16.05, "numberPhases": 4},
        {"startPeriod": 900, "limit": -1.0},
        {"startPeriod": 4000, "limit": np.float64(10.0)},
    ]
    prof["chargingSchedule"][0]["startSchedule"] = "2024-03-01T13:00:00+01:00"
    prof["chargingSchedule"][0]["foo"] = 1
    prof["stackLevel"] = None
    msgs = "\n".join(check_profile(p, "2.0.1", max_periods=2, max_stack_level=8))
    for rule in (
        "rule 30",
        "rule 33",
        "rule 31",
        "rule 27",
        "rule 24",
        "rule 19",
        "rule 1",
        "rule 3",
    ):
        assert rule in msgs, rule
    # max profile on an EVSE, Relative, with a transaction id
    q = _bad_v201()
    q["chargingProfile"]["chargingProfilePurpose"] = "ChargingStationMaxProfile"
    q["chargingProfile"]["chargingProfileKind"] = "Relative"
    msgs = "\n".join(check_profile(q, "2.0.1"))
    for rule in ("rule 7", "rule 9", "rule 17"):
        assert rule in msgs, rule
    # 2.x TxProfile without transactionId, no duration; unit not allowed
    r = _bad_v201()
    del r["chargingProfile"]["transactionId"]
    del r["chargingProfile"]["chargingSchedule"][0]["duration"]
    msgs = "\n".join(check_profile(r, "2.0.1", rate_units=("W",)))
    for rule in ("rule 8", "rule 45", "rule 26"):
        assert rule in msgs, rule
    # 1.6: transactionId must be an int, single schedule object
    s = {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "transactionId": "t"}}
    msgs = "\n".join(check_profile(s, "1.6"))
    assert "rule 3" in msgs and "rule 2" in msgs
    assert check_profile("nope", "1.6") == ["rule 1: payload: must be a dict. Got str instead."]


# --------------------------------------------------------------------------- OCPP 2.1 / V2X

V2X_KEYS = {"startPeriod", "operationMode", "setpoint", "limit", "dischargeLimit"}


def value_in_force(pers: list[dict], t: int) -> float:
    """The signed value of the period in force at second ``t``: setpoint, else limit."""
    current = None
    for p in pers:
        if p["startPeriod"] <= t:
            current = p.get("setpoint", p.get("limit"))
    assert current is not None
    return current


def v2x_pairs(req: ChargingProfileRequest) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["setpoint"]) for p in periods(req)]


def assert_v2x_period_shape(p: dict) -> None:
    """A discharge-capable period: CentralSetpoint, limit/dischargeLimit bracket 0..setpoint."""
    assert set(p) - {"numberPhases"} == V2X_KEYS
    assert p["operationMode"] == "CentralSetpoint"
    sp = p["setpoint"]
    assert p["limit"] == max(sp, 0.0) and p["dischargeLimit"] == min(sp, 0.0)
    assert "-0.0" not in json.dumps(p)


def test_v21_keys_match_schema():
    schema = json.loads((files("ocpp") / SCHEMA_FILES["2.1"]).read_text(encoding="utf-8-sig"))
    defs = schema["definitions"]
    keys = ocpp_mod._KEYS["2.1"]
    assert keys["request"] == set(schema["properties"])
    assert keys["profile"] == set(defs["ChargingProfileType"]["properties"])
    assert keys["schedule"] == set(defs["ChargingScheduleType"]["properties"])
    assert keys["period"] == set(defs["ChargingSchedulePeriodType"]["properties"])
    assert set(ocpp_mod._MODE_FIELDS) == set(defs["OperationModeEnumType"]["enum"])
    assert set(ocpp_mod._PURPOSES["2.1"]) == set(defs["ChargingProfilePurposeEnumType"]["enum"])
    assert set(ocpp_mod._KINDS["2.1"]) == set(defs["ChargingProfileKindEnumType"]["enum"])
    period = defs["ChargingSchedulePeriodType"]
    assert period["required"] == ["startPeriod"]  # limit is conditional in 2.1 (rule 2)
    assert period["properties"]["dischargeLimit"]["maximum"] == 0  # rule 39


@pytest.mark.parametrize("caps", sorted(CAPS))
@pytest.mark.parametrize("with_limits", [False, True])
@pytest.mark.filterwarnings("ignore::chargeplan.exceptions.OcppExportWarning")
def test_v21_mixed_payloads_validate_against_official_schema(caps, with_limits):
    schedules = [
        ac("v1", (16, -16, -7.3, 0, 31.9, -32), phases=1, connector_id=1),
        ac("v2", (6, -6.1, 13.7, 0, -3.0, 32), phases=3, connector_id=2),
        dc("vd", (50_000, -50_000, 0, -120_000.4, 7_300.05, -7_300.05), connector_id=3),
        ac("c1", (16, 16, 7.3, 7.3, 0, 31.9), phases=3, connector_id=4),  # charge only
        dc("cd", connector_id=5),  # charge only
    ]
    limits = []
    if with_limits:
        limits = [
            StationLimit("cs1", np.array([63, 63, 40.7, 40.7, 55.55, 63.0]), np.full(6, 43e3)),
            StationLimit("cs3", None, np.full(6, 150_000.0)),
        ]
    reqs = build(schedules, limits, version="2.1", capabilities=CAPS[caps])
    assert len(reqs) == len(schedules) + len(limits)
    for req in reqs:
        assert req.version == "2.1"
        assert schema_errors(req.payload, "2.1") == []
        ocpp_package_validates(req.payload, "2.1")
        assert check_profile(req.payload, "2.1") == []
        prof = profile_of(req)
        pers = periods(req)
        if prof["chargingProfilePurpose"] == "ChargingStationMaxProfile":
            # rule 37: only ChargingOnly (absent = ChargingOnly)
            assert all(set(p) == {"startPeriod", "limit"} for p in pers)
            continue
        discharges = req.payload["evseId"] in (1, 2, 3)  # v1, v2, vd
        for p in pers:
            if discharges:
                assert_v2x_period_shape(p)
            else:  # identical to 2.0.1: a plain limit, no operationMode (rule 38)
                assert set(p) - {"numberPhases"} == {"startPeriod", "limit"}
        assert any(p.get("setpoint", 0) < 0 for p in pers) == discharges
        if req.payload["evseId"] in (3, 5):  # DC: W, no phases (rule 34)
            assert schedule_of(req)["chargingRateUnit"] == "W"
            assert all("numberPhases" not in p for p in pers)


def test_v21_charge_only_is_the_v201_payload():
    schedules = [ac("s1", connector_id=1), dc("d1", connector_id=2)]
    lim = [StationLimit("cs1", np.array([40.0, 40, 40, 32, 32, 32]), None)]
    a = build(schedules, lim, version="2.0.1")
    b = build(schedules, lim, version="2.1")
    assert [r.payload for r in a] == [r.payload for r in b]
    assert "operationMode" not in json.dumps([r.payload for r in b])


def test_v21_hand_case_mixed_schedule():
    (req,) = build([ac(current_a=[16, 16, -10, -10, 0, 8])], version="2.1")
    cs = "CentralSetpoint"
    assert periods(req) == [
        {
            "startPeriod": 0,
            "operationMode": cs,
            "setpoint": 16.0,
            "limit": 16.0,
            "dischargeLimit": 0.0,
            "numberPhases": 3,
        },
        {
            "startPeriod": 1800,
            "operationMode": cs,
            "setpoint": -10.0,
            "limit": 0.0,
            "dischargeLimit": -10.0,
            "numberPhases": 3,
        },
        {
            "startPeriod": 3600,
            "operationMode": cs,
            "setpoint": 0.0,
            "limit": 0.0,
            "dischargeLimit": 0.0,
            "numberPhases": 3,
        },
        {
            "startPeriod": 4500,
            "operationMode": cs,
            "setpoint": 8.0,
            "limit": 8.0,
            "dischargeLimit": 0.0,
            "numberPhases": 3,
        },
    ]
    sched = schedule_of(req)
    assert sched["chargingRateUnit"] == "A" and sched["duration"] == 6 * 900
    assert profile_of(req)["chargingProfilePurpose"] == "TxProfile"
    assert schema_errors(req.payload, "2.1") == []
    # budget 3: the cheapest merge is 0|8 -> 0 (8 A x 1 slot = 2 Ah)
    caps = StationCapabilities(max_periods=3)
    with pytest.warns(OcppExportWarning, match=r"rule 27.* 2 Ah"):
        (req,) = build([ac(current_a=[16, 16, -10, -10, 0, 8])], version="2.1", capabilities=caps)
    assert v2x_pairs(req) == [(0, 16.0), (1800, -10.0), (3600, 0.0)]
    # budget 2: then -10|0 -> 0 (10 A x 2 slots) beats 16|-10 -> 0 (16 x 2 + 10 x 2);
    # no discharge is left, so the profile is a plain ChargingOnly one
    caps = StationCapabilities(max_periods=2)
    with pytest.warns(OcppExportWarning, match=r"rule 27.* 7 Ah"):
        (req,) = build([ac(current_a=[16, 16, -10, -10, 0, 8])], version="2.1", capabilities=caps)
    assert periods(req) == [
        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
        {"startPeriod": 1800, "limit": 0.0, "numberPhases": 3},
    ]


def test_v21_rounding_toward_zero_and_minimum_current():
    cur = [-10.05, -15.9999999999, -6.0000000001, -5.99, 3.0, 16.04]
    with pytest.warns(OcppExportWarning, match="rule 32"):
        (req,) = build([ac(current_a=cur)], version="2.1", step_s=60)
    assert v2x_pairs(req) == [(0, -10.0), (60, -16.0), (120, -6.0), (180, 0.0), (300, 16.0)]
    for p in periods(req):
        assert_v2x_period_shape(p)
    # W on AC: magnitude below the EV minimum current becomes 0 too (rule 32)
    caps = StationCapabilities(rate_units=("W",))
    with pytest.warns(OcppExportWarning, match="rule 32"):
        (req,) = build(
            [ac(current_a=[16, -10, 5, -5, -6], phases=1)], version="2.1", capabilities=caps
        )
    assert v2x_pairs(req) == [(0, 3680.0), (900, -2300.0), (1800, 0.0), (3600, -1380.0)]
    # DC: no minimum, W only
    (req,) = build([dc(power_w=[-50_000, 20_000.07, -7.36, -0.04])], version="2.1")
    assert v2x_pairs(req) == [(0, -50000.0), (900, 20000.0), (1800, -7.3), (2700, 0.0)]
    assert all("numberPhases" not in p for p in periods(req))


@pytest.mark.parametrize("version", CHARGE_ONLY_VERSIONS)
def test_discharge_needs_v21(version):
    with pytest.raises(InputError, match=r"session_id='v1'\)\.power_w.*rule 31") as err:
        build(
            [ac("s1", connector_id=1), ac("v1", current_a=[16, -10], connector_id=2)],
            version=version,
        )
    msg = str(err.value)
    assert f"OCPP {version} cannot express discharge" in msg and "version='2.1'" in msg
    assert "session_id='s1'" not in msg
    with pytest.raises(InputError, match=r"session_id='vd'"):
        build([dc("vd", power_w=[-5_000.0, 0.0])], version=version)
    # float noise below zero is not a discharge
    (req,) = build([ac("v1", current_a=[16, -1e-9])], version=version)
    assert pairs(req) == [(0, 16.0), (900, 0.0)]
    # a station limit is never negative, in any version
    with pytest.raises(InputError, match="rule 31"):
        build([], [StationLimit("cs1", np.array([-1.0]), None)], version="2.1")


def test_merge_toward_zero():
    merge = ocpp_mod._merge_to_budget
    # two discharges merge to the smaller one (-100|-60 -> -60 loses 40 x 1 slot);
    # a charge next to a discharge merges to 0 (-60|50 -> 0 loses 110)
    assert merge([[0, 1, -100], [1, 1, -60], [2, 1, 50]], 2) == ([[0, 2, -60], [2, 1, 50]], 40)
    assert merge([[0, 1, -100], [1, 1, -60], [2, 1, 50]], 1) == ([[0, 3, 0]], 210)
    assert merge([[0, 2, 80], [2, 1, -70]], 1) == ([[0, 3, 0]], 230)
    assert ocpp_mod._toward_zero(-5, -7) == -5
    assert ocpp_mod._toward_zero(5, 7) == 5
    assert ocpp_mod._toward_zero(5, -7) == 0
    assert ocpp_mod._toward_zero(0, -7) == 0


def test_v21_ids_above_max_external_constraints_id():
    base = stable_profile_id("tx:s1")
    caps = StationCapabilities(max_external_constraints_id=base)  # forces a remap
    (req,) = build([ac("s1")], version="2.1", capabilities=caps)
    pid = profile_of(req)["id"]
    assert base < pid <= 2**31 - 1
    assert pid == schedule_of(req)["id"] == stable_profile_id("tx:s1", above=base)
    (again,) = build([ac("s1", current_a=[6] * 6)], version="2.1", capabilities=caps)
    assert profile_of(again)["id"] == pid  # stable
    assert check_profile(req.payload, "2.1", max_external_constraints_id=base) == []
    msgs = check_profile(req.payload, "2.1", max_external_constraints_id=pid)
    assert msgs == [
        f"rule 4: chargingProfile.id: must be above MaxExternalConstraintsId={pid}. "
        f"Got {pid} instead."
    ]
    # an id already above it is kept; 1.6 and 2.0.1 ignore it
    low = StationCapabilities(max_external_constraints_id=base - 1)
    assert profile_of(build([ac("s1")], version="2.1", capabilities=low)[0])["id"] == base
    assert profile_of(build([ac("s1")], version="2.0.1", capabilities=caps)[0])["id"] == base
    # the max profile too
    lim = StationLimit("cs1", np.full(6, 32.0), None)
    mx_caps = StationCapabilities(max_external_constraints_id=2**31 - 2)
    (mx,) = build([], [lim], version="2.1", capabilities=mx_caps)
    assert profile_of(mx)["id"] == 2**31 - 1
    # explicit overrides must be above it
    caps = StationCapabilities(max_external_constraints_id=1000)
    with pytest.raises(InputError, match="rule 4"):
        build([ac("s1")], version="2.1", capabilities=caps, profile_ids={"tx:s1": 1000})
    (req,) = build([ac("s1")], version="2.1", capabilities=caps, profile_ids={"tx:s1": 1001})
    assert profile_of(req)["id"] == 1001
    # invalid capabilities
    for bad in (2**31 - 1, True, 1.5):
        with pytest.raises(ValueError, match="max_external_constraints_id"):
            StationCapabilities(max_external_constraints_id=bad)
    assert StationCapabilities(max_external_constraints_id=-5).max_external_constraints_id == -5
    with pytest.raises(ValueError, match="rule 4"):
        stable_profile_id("x", above=2**31 - 1)


# hypothesis: random signed plans -> 2.1 payloads

magnitude = st.one_of(
    st.just(0.0),
    st.integers(60, 320).map(lambda k: k / 10),  # on the 0.1 grid
    st.floats(6.0, 32.0, allow_nan=False),  # anywhere in [6, 32]
)
dc_magnitude = st.one_of(st.just(0.0), st.floats(0.0, 200_000.0, allow_nan=False))


@st.composite
def signed_plans(draw):
    n = draw(st.integers(1, 96))
    is_dc = draw(st.booleans())
    mag = dc_magnitude if is_dc else magnitude
    vals = draw(st.lists(st.tuples(mag, st.booleans(), noise), min_size=n, max_size=n))
    plan = np.array([(-1.0 if neg else 1.0) * (v + e) if v > 0 else 0.0 for v, neg, e in vals])
    return (
        plan,
        is_dc,
        draw(st.integers(60, 3600)),
        draw(st.integers(1, 24)),
        draw(st.sampled_from(["A", "W"])),
        draw(st.sampled_from([1, 3])),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signed_plans())
def test_v21_properties_of_signed_plans(plan):
    values, is_dc, step_s, max_periods, unit, phases = plan
    if is_dc:
        cs = dc("v", values)
        unit, planned = "W", values
        low = np.zeros(values.size, dtype=bool)
    else:
        cs = ac("v", values, phases=phases)
        planned = values if unit == "A" else cs.power_w
        low = np.abs(values) < 6 - 1e-6
    caps = StationCapabilities(rate_units=(unit,), max_periods=max_periods)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcppExportWarning)
        (req,) = build([cs], version="2.1", step_s=step_s, capabilities=caps)
    payload = req.payload
    assert schema_errors(payload, "2.1") == []
    assert check_profile(payload, "2.1", max_periods=max_periods) == []
    sched = schedule_of(req)
    assert sched["chargingRateUnit"] == unit
    assert sched["duration"] == values.size * step_s
    pers = sched["chargingSchedulePeriod"]
    starts = [p["startPeriod"] for p in pers]
    assert starts[0] == 0
    assert all(type(s) is int and s % step_s == 0 for s in starts)
    assert all(a < b for a, b in zip(starts, starts[1:], strict=False))
    assert 1 <= len(pers) <= max_periods
    v2x = any(p.get("setpoint", 0) < 0 for p in pers)
    for p in pers:
        if v2x:
            assert_v2x_period_shape(p)
        else:
            assert set(p) - {"numberPhases"} == {"startPeriod", "limit"}
        for key in ("setpoint", "limit", "dischargeLimit"):
            if key in p:
                assert type(p[key]) is float
                assert Decimal(repr(p[key])) % Decimal("0.1") == 0
                if unit == "A":
                    assert not 0 < abs(p[key]) < 6
        assert ("numberPhases" in p) == (not is_dc)
    signed = [p.get("setpoint", p["limit"]) for p in pers]
    assert all(a != b for a, b in zip(signed, signed[1:], strict=False))  # equal ones merged
    # conservative at every slot: same sign as the plan (or 0), magnitude <= the plan's
    # toward zero on the 0.1 grid (float noise up to 1e-6 counts as on the grid)
    tenths = np.where(low, 0.0, np.trunc(planned * 10 + np.sign(planned) * 1e-5))
    runs = 1 + int(np.count_nonzero(np.diff(tenths)))
    for i in range(values.size):
        emitted = value_in_force(pers, i * step_s)
        if emitted != 0:
            assert np.sign(emitted) == np.sign(planned[i])
        assert abs(emitted) <= abs(planned[i]) + 1e-6
        if runs <= max_periods:  # no budget merge needed: the exact truncation of the plan
            assert emitted == pytest.approx(tenths[i] / 10, abs=1e-9)
            if not low[i]:
                assert abs(emitted) > abs(planned[i]) - 0.1 - 1e-6


# check_profile: 2.1 rules


def _v21(pers: list[dict], purpose: str = "TxProfile", unit: str = "A") -> dict:
    profile = {
        "id": 5,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 5,
                "startSchedule": START_STR,
                "duration": 3600,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": pers,
            }
        ],
    }
    if purpose == "TxProfile":
        profile["transactionId"] = "t1"
    return {"evseId": 1 if purpose == "TxProfile" else 0, "chargingProfile": profile}


CS = "CentralSetpoint"
P0 = "chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0]"


@pytest.mark.parametrize(
    ("period", "purpose", "unit", "expected"),
    [
        # rule 37: a max profile is ChargingOnly only
        ({"operationMode": CS, "setpoint": 16.0}, "ChargingStationMaxProfile", "A", 37),
        ({"operationMode": "ChargingOnly", "limit": 16.0}, "PriorityCharging", "A", None),
        ({"operationMode": "ExternalLimits"}, "PriorityCharging", "A", 37),
        # rule 38: fields per mode
        ({"setpoint": 16.0, "limit": 16.0}, "TxProfile", "A", 38),  # absent = ChargingOnly
        (
            {"operationMode": "ChargingOnly", "dischargeLimit": -10.0, "limit": 0.0},
            "TxProfile",
            "A",
            38,
        ),
        ({"operationMode": "ChargingOnly"}, "TxProfile", "A", 38),  # limit required
        ({"operationMode": CS, "limit": 16.0}, "TxProfile", "A", 38),  # setpoint required
        ({"operationMode": CS, "setpoint": 16.0, "limit": 10.0}, "TxProfile", "A", 38),
        ({"operationMode": CS, "setpoint": -16.0, "dischargeLimit": -10.0}, "TxProfile", "A", 38),
        ({"operationMode": CS, "setpoint": 10.0, "limit_L2": 10.0}, "TxProfile", "A", 38),
        ({"operationMode": "Idle", "limit": 0.0}, "TxProfile", "A", 38),
        ({"operationMode": "ExternalSetpoint", "dischargeLimit": -10.0}, "TxProfile", "A", None),
        ({"operationMode": CS, "setpoint": 0.0, "setpointReactive": 3.33}, "TxProfile", "A", None),
        # rule 39: discharge sign
        ({"operationMode": CS, "setpoint": 10.0, "dischargeLimit": 10.0}, "TxProfile", "A", 39),
        (
            {"operationMode": CS, "setpoint": -10.0, "setpoint_L2": 10.0, "setpoint_L3": -10.0},
            "TxProfile",
            "A",
            39,
        ),
        (
            {"operationMode": CS, "setpoint": -10.0, "setpoint_L2": 0.0, "setpoint_L3": -10.0},
            "TxProfile",
            "A",
            None,
        ),
        # rules 30, 31, 32 on signed values
        ({"operationMode": CS, "setpoint": -10.05}, "TxProfile", "A", 30),
        ({"operationMode": CS, "setpoint": -10.0, "limit": -1.0}, "TxProfile", "A", 31),
        ({"operationMode": CS, "setpoint": -3.0}, "TxProfile", "A", 32),
        ({"operationMode": CS, "setpoint": -3.0}, "TxProfile", "W", None),
        ({"operationMode": CS, "setpoint": 0.0, "dischargeLimit": -5.9}, "TxProfile", "A", 32),
        # rule 40 and unknown mode (rule 1)
        ({"operationMode": "LocalFrequency"}, "TxProfile", "A", 40),
        ({"operationMode": "Discharging", "setpoint": -10.0}, "TxProfile", "A", 1),
    ],
)
def test_check_profile_v21_period_rules(period, purpose, unit, expected):
    payload = _v21([{"startPeriod": 0, **period}], purpose, unit)
    msgs = check_profile(payload, "2.1")
    if expected is None:
        assert msgs == []
        assert schema_errors(payload, "2.1") == []
        return
    assert msgs, period
    assert all(m.startswith(f"rule {expected}: {P0}.") for m in msgs), msgs


def test_check_profile_v21_profile_rules():
    ok = [{"startPeriod": 0, "operationMode": CS, "setpoint": -10.0}]
    p = _v21(ok)
    sched = p["chargingProfile"]["chargingSchedule"][0]
    assert check_profile(p, "2.1") == []
    p["chargingProfile"]["dynUpdateInterval"] = 60
    sched["limitAtSoC"] = {"soc": 101, "limit": 10.0}
    sched["randomizedDelay"] = 30  # fine on a TxProfile
    msgs = check_profile(p, "2.1")
    assert [m.split(":")[0] for m in msgs] == ["rule 23", "rule 41"]
    q = _v21([{"startPeriod": 0, "limit": 32.0}], "ChargingStationMaxProfile")
    q["chargingProfile"]["chargingSchedule"][0]["randomizedDelay"] = 30
    assert [m.split(":")[0] for m in check_profile(q, "2.1")] == ["rule 22"]
    q = _v21([{"startPeriod": 0, "limit": 32.0}], "LocalGeneration")
    assert [m.split(":")[0] for m in check_profile(q, "2.1")] == ["rule 6"]
    q = _v21([{"startPeriod": 0, "limit": 32.0}], "ChargingStationExternalConstraints")
    assert [m.split(":")[0] for m in check_profile(q, "2.1")] == ["rule 5"]
    # 2.1 keys are unknown to 2.0.1 (rule 1) and a 2.0.1 period needs limit (rule 2)
    msgs = check_profile(_v21(ok), "2.0.1")
    assert {m.split(":")[0] for m in msgs} == {"rule 1", "rule 2"}


def test_ocpp_package_serializer_mangles_v21_keys():
    """Rule 42: the ocpp package's case conversion renames the 2.1 phase keys."""
    from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

    period = {
        "startPeriod": 0,
        "operationMode": CS,
        "setpoint": -10.0,
        "setpoint_L2": -10.0,
        "setpoint_L3": -10.0,
        "dischargeLimit": -10.0,
        "limit": 0.0,
    }
    roundtrip = snake_to_camel_case(camel_to_snake_case(period))
    assert "setpoint_L2" not in roundtrip and "setpointL2" in roundtrip
    payload = _v21([period])
    assert schema_errors(payload, "2.1") == []
    assert check_profile(payload, "2.1") == []
    mangled = _v21([roundtrip])
    assert any("setpointL2" in e for e in schema_errors(mangled, "2.1"))
    assert any(m.startswith("rule 1:") and "setpointL2" in m for m in check_profile(mangled, "2.1"))


# One corruption per rule branch of check_profile that the payloads above do not reach.
def _good(version: str) -> dict:
    profile = {
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
    }
    schedule = {
        "startSchedule": START_STR,
        "duration": 3600,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
            {"startPeriod": 900, "limit": 0.0, "numberPhases": 3},
        ],
    }
    if version == "1.6":
        return {
            "connectorId": 1,
            "csChargingProfiles": profile | {"chargingProfileId": 7, "chargingSchedule": schedule},
        }
    return {
        "evseId": 1,
        "chargingProfile": profile
        | {"id": 7, "transactionId": "t1", "chargingSchedule": [schedule | {"id": 7}]},
    }


def _prof(p: dict) -> dict:
    return p.get("chargingProfile", p.get("csChargingProfiles"))


def _sched(p: dict) -> dict:
    s = _prof(p)["chargingSchedule"]
    return s[0] if isinstance(s, list) else s


def _set(getter, key, value):
    def corrupt(p):
        getter(p)[key] = value

    return corrupt


def _del(getter, key):
    def corrupt(p):
        del getter(p)[key]

    return corrupt


_WRAP = lambda p: p  # noqa: E731
_PERIOD0 = lambda p: _sched(p)["chargingSchedulePeriod"][0]  # noqa: E731

_CORRUPTIONS = [
    # (version, corruption, expected "rule N: path" prefix)
    ("1.6", _set(_WRAP, "connectorId", -1), "rule 10: connectorId"),
    ("2.0.1", _set(_WRAP, "evseId", "1"), "rule 1: evseId"),
    ("2.0.1", _set(_WRAP, "chargingProfile", []), "rule 1: chargingProfile"),
    ("2.0.1", _set(_prof, "id", 7.5), "rule 3: chargingProfile.id"),
    ("1.6", _set(_prof, "stackLevel", -1), "rule 11: csChargingProfiles.stackLevel"),
    (
        "2.0.1",
        _set(_prof, "chargingProfilePurpose", "Magic"),
        "rule 1: chargingProfile.chargingProfilePurpose",
    ),
    (
        "2.0.1",
        _set(_prof, "chargingProfileKind", "Forever"),
        "rule 1: chargingProfile.chargingProfileKind",
    ),
    ("2.0.1", _set(_WRAP, "evseId", 0), "rule 8: evseId"),
    ("2.0.1", _set(_prof, "transactionId", "x" * 37), "rule 3: chargingProfile.transactionId"),
    (
        "2.0.1",
        _set(_prof, "chargingProfileKind", "Recurring"),
        "rule 18: chargingProfile.recurrencyKind",
    ),
    ("2.0.1", _set(_prof, "validFrom", "yesterday"), "rule 19: chargingProfile.validFrom"),
    ("1.6", _set(_prof, "chargingSchedule", [{}]), "rule 1: csChargingProfiles.chargingSchedule"),
    ("2.0.1", _set(_prof, "chargingSchedule", {}), "rule 1: chargingProfile.chargingSchedule"),
    (
        "2.0.1",
        lambda p: _prof(p)["chargingSchedule"].append(_sched(p)),
        "rule 25: chargingProfile.chargingSchedule",
    ),
    (
        "2.0.1",
        _set(_prof, "chargingSchedule", ["s"]),
        "rule 1: chargingProfile.chargingSchedule[0]",
    ),
    ("2.0.1", _set(_sched, "id", "7"), "rule 3: chargingProfile.chargingSchedule[0].id"),
    (
        "1.6",
        _set(_sched, "duration", 3600.5),
        "rule 3: csChargingProfiles.chargingSchedule.duration",
    ),
    ("1.6", _set(_sched, "duration", 0), "rule 24: csChargingProfiles.chargingSchedule.duration"),
    (
        "1.6",
        _set(_sched, "chargingRateUnit", "kW"),
        "rule 26: csChargingProfiles.chargingSchedule.chargingRateUnit",
    ),
    (
        "1.6",
        _set(_sched, "minChargingRate", "6"),
        "rule 3: csChargingProfiles.chargingSchedule.minChargingRate",
    ),
    (
        "1.6",
        _del(_sched, "chargingSchedulePeriod"),
        "rule 2: csChargingProfiles.chargingSchedule.chargingSchedulePeriod",
    ),
    (
        "1.6",
        _set(_sched, "chargingSchedulePeriod", {}),
        "rule 1: csChargingProfiles.chargingSchedule.chargingSchedulePeriod",
    ),
    (
        "1.6",
        _set(_sched, "chargingSchedulePeriod", []),
        "rule 27: csChargingProfiles.chargingSchedule.chargingSchedulePeriod",
    ),
    (
        "1.6",
        lambda p: _sched(p)["chargingSchedulePeriod"].append(5),
        "rule 1: csChargingProfiles.chargingSchedule.chargingSchedulePeriod[2]",
    ),
    (
        "1.6",
        _set(_PERIOD0, "startPeriod", 0.0),
        "rule 3: csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].startPeriod",
    ),
    (
        "1.6",
        _set(_PERIOD0, "limit", float("nan")),
        "rule 3: csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit",
    ),
    (
        "2.1",
        _set(_sched, "randomizedDelay", -5),
        "rule 3: chargingProfile.chargingSchedule[0].randomizedDelay",
    ),
    (
        "2.1",
        _set(_sched, "limitAtSoC", {"soc": 80}),
        "rule 2: chargingProfile.chargingSchedule[0].limitAtSoC.limit",
    ),
    (
        "2.1",
        _set(_PERIOD0, "setpoint", "x"),
        "rule 3: chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].setpoint",
    ),
    ("2.0.1", lambda p: p.update({3: "x"}), "rule 3: payload"),
    # not JSON: numpy scalars (in an object and in an array) and None
    (
        "2.0.1",
        _set(_PERIOD0, "limit", np.float64(16.0)),
        "rule 3: payload.chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].limit",
    ),
    (
        "2.0.1",
        _set(_prof, "chargingSchedule", [np.int64(1)]),
        "rule 3: payload.chargingProfile.chargingSchedule[0]: is not a JSON value",
    ),
    (
        "2.0.1",
        _set(_prof, "stackLevel", None),
        "rule 3: payload.chargingProfile.stackLevel: must not be None",
    ),
]


def test_a_numpy_scalar_limit_is_reported_once():
    """Found while adding the cases above: it was also reported as off the 0.1 grid."""
    bad = _good("2.0.1")
    _PERIOD0(bad)["limit"] = np.float64(16.0)
    assert check_profile(bad, "2.0.1") == [
        "rule 3: payload.chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].limit: "
        "is not a JSON value: float64."
    ]


@pytest.mark.parametrize("version, corrupt, expected", _CORRUPTIONS)
def test_check_profile_reports_each_corruption(version, corrupt, expected):
    good = _good(version)
    assert check_profile(good, version) == []
    bad = json.loads(json.dumps(good))
    corrupt(bad)
    msgs = check_profile(bad, version)
    assert any(m.startswith(expected) for m in msgs), msgs
