"""examples/csms_loop.py: a real OCPP 2.0.1 CSMS and simulated stations over loopback.

The stations must receive schema-valid profiles, exactly as chargeplan built them, for
their own transactions, whose sum never exceeds the site limit.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from decimal import Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest
from jsonschema import Draft4Validator

import chargeplan as cp

pytest.importorskip("websockets")
pytest.importorskip("ocpp")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "csms_loop.py"
SITE_LIMIT_A = 32.0
N_STATIONS = 3
TEST_TIMEOUT_S = 20.0


def _load_example():
    spec = importlib.util.spec_from_file_location("csms_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["csms_loop"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


csms_loop = _load_example()


@cache
def _validator() -> Draft4Validator:
    """The official schema shipped with the ocpp package (Decimal floats, as in test_ocpp)."""
    text = (files("ocpp") / "v201/schemas/SetChargingProfileRequest.json").read_text(
        encoding="utf-8-sig"
    )
    schema = json.loads(text, parse_float=Decimal)
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def schema_errors(payload: dict) -> list[str]:
    instance = json.loads(json.dumps(payload), parse_float=Decimal)
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(instance)]


def slot_times(payloads: list[dict]) -> list[pd.Timestamp]:
    """Every instant where some profile's limit may change: slot starts and period starts."""
    times = set()
    for p in payloads:
        sched = p["chargingProfile"]["chargingSchedule"][0]
        t0 = pd.Timestamp(sched["startSchedule"])
        times.update(t0 + pd.Timedelta(seconds=s) for s in range(0, sched["duration"], 900))
        times.update(
            t0 + pd.Timedelta(seconds=q["startPeriod"]) for q in sched["chargingSchedulePeriod"]
        )
    return sorted(times)


def assert_sum_within_site_limit(payloads: list[dict]) -> None:
    """Sum of limits (A per phase; all EVs are 3-phase) <= the site limit at every instant.

    The profiles must also cover one common horizon: outside a profile the station falls
    back to its default, which would break the site limit.
    """
    scheds = [p["chargingProfile"]["chargingSchedule"][0] for p in payloads]
    assert {s["chargingRateUnit"] for s in scheds} == {"A"}
    assert all(q.get("numberPhases", 3) == 3 for s in scheds for q in s["chargingSchedulePeriod"])
    assert len({(s["startSchedule"], s["duration"]) for s in scheds}) == 1
    times = slot_times(payloads)
    assert len(times) >= 16  # 4 h of 15 min slots
    for t in times:
        limits = [csms_loop.limit_at(p, t) for p in payloads]
        assert all(lim is not None for lim in limits), t
        assert sum(limits) <= SITE_LIMIT_A + 1e-9, (t, limits)


def listening_addresses() -> list[str] | None:
    """Addresses this process listens on (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    proc = psutil.Process()
    conns = getattr(proc, "net_connections", None) or proc.connections
    return [c.laddr.ip for c in conns(kind="inet") if c.status == psutil.CONN_LISTEN]


# --------------------------------------------------------------------------- end to end


async def _loop_scenario() -> dict:
    csms = csms_loop.ChargingSiteCSMS(csms_loop.example_site(N_STATIONS, SITE_LIMIT_A, 32.0))
    await csms.warm_up()  # numba cold start outside the timed part
    out: dict = {"csms": csms, "listening_before": listening_addresses()}
    async with csms.serve() as server, asyncio.timeout(TEST_TIMEOUT_S - 2):
        bound = [s.getsockname()[0] for s in server.sockets]
        out["bound"] = bound
        out["listening_during"] = listening_addresses()
        url = csms_loop.server_url(server)
        async with (
            csms_loop.simulated_charge_point(url, "CP1") as cp1,
            csms_loop.simulated_charge_point(url, "CP2") as cp2,
            csms_loop.simulated_charge_point(url, "CP3") as cp3,
        ):
            stations = [cp1, cp2, cp3]
            await asyncio.gather(*(st.boot() for st in stations))
            now = csms_loop.utc_now()

            async def ev_arrives(st, k: int) -> str:
                await asyncio.sleep(0.05 * k)  # staggered arrivals, interleaved re-plans
                await st.start_transaction(f"tx-{k}-{st.id}")
                return await st.notify_charging_needs(
                    energy_wh=12_000 + 6_000 * k,
                    departure=now + pd.Timedelta(hours=1 + k),
                    ev_max_current_a=(32, 16, 24)[k],
                )

            out["needs_status"] = await asyncio.gather(
                *(ev_arrives(st, k) for k, st in enumerate(stations))
            )
            await asyncio.wait_for(csms.wait_idle(), 10)
            for st in stations:
                await asyncio.wait_for(st.wait_for_profile(st.transaction_id), 5)
            out["tx"] = {st.id: st.transaction_id for st in stations}
            out["received"] = {st.id: list(st.received) for st in stations}
            out["last"] = {st.id: st.last_profile for st in stations}
            out["sessions_before_end"] = dict(csms.sessions)

            # CP3's EV leaves: CP1 and CP2 are re-planned, CP3 gets nothing more
            n3, n1, n2 = len(cp3.received), len(cp1.received), len(cp2.received)
            await cp3.stop_transaction()
            await asyncio.wait_for(csms.wait_idle(), 10)
            await asyncio.wait_for(cp1.wait_for_profile(out["tx"]["CP1"], after=n1), 5)
            await asyncio.wait_for(cp2.wait_for_profile(out["tx"]["CP2"], after=n2), 5)
            out["cp3_after_end"] = cp3.received[n3:]
            out["last_after_end"] = {st.id: st.last_profile for st in (cp1, cp2)}
            out["sessions_after_end"] = dict(csms.sessions)
    out["listening_after"] = listening_addresses()
    return out


async def _main() -> dict:
    out = await asyncio.wait_for(_loop_scenario(), TEST_TIMEOUT_S)
    await asyncio.sleep(0)
    out["tasks_left"] = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return out


@pytest.fixture(scope="module")
def loop_run():
    return asyncio.run(_main())


def test_loopback_only_and_clean_shutdown(loop_run):
    assert loop_run["bound"] == ["127.0.0.1"]
    before = loop_run["listening_before"]
    if before is not None:  # psutil available; compare with what listened before
        new = list(loop_run["listening_during"])
        for address in before:
            new.remove(address)
        assert new == ["127.0.0.1"]
        assert sorted(loop_run["listening_after"]) == sorted(before)
    assert loop_run["tasks_left"] == []
    assert loop_run["csms"].connections == {}


def test_every_received_profile_is_schema_valid_and_as_built(loop_run):
    csms = loop_run["csms"]
    received = [r for rs in loop_run["received"].values() for r in rs]
    assert received and all(r.status == "Accepted" for r in received)
    assert all(schema_errors(r.payload) == [] for r in received)
    # keys and values on the wire are exactly what chargeplan built (no case mangling)
    for sid, rs in loop_run["received"].items():
        built = [s.payload for s in csms.sent if s.station_id == sid][: len(rs)]
        assert [r.payload for r in rs] == built
    assert csms.errors == []


def test_profiles_carry_each_stations_transaction(loop_run):
    assert loop_run["needs_status"] == ["Accepted"] * N_STATIONS
    for sid, payload in loop_run["last"].items():
        prof = payload["chargingProfile"]
        assert payload["evseId"] == 1
        assert prof["chargingProfilePurpose"] == "TxProfile"
        assert prof["transactionId"] == loop_run["tx"][sid]
    for sid, rs in loop_run["received"].items():
        # every TxProfile a station got is for its one transaction, with one stable id
        assert {r.payload["chargingProfile"]["transactionId"] for r in rs} == {loop_run["tx"][sid]}
        assert len({r.payload["chargingProfile"]["id"] for r in rs}) == 1


def test_sum_of_last_profiles_within_site_limit(loop_run):
    assert_sum_within_site_limit(list(loop_run["last"].values()))
    assert_sum_within_site_limit(list(loop_run["last_after_end"].values()))


def test_charging_needs_reach_the_plan(loop_run):
    sessions = loop_run["sessions_before_end"]
    assert sorted(sessions) == [("CP1", 1), ("CP2", 1), ("CP3", 1)]
    s2 = sessions[("CP2", 1)]
    assert (s2.energy_kwh, s2.max_current_a, s2.phases) == (18.0, 16.0, 3)
    assert sorted(loop_run["sessions_after_end"]) == [("CP1", 1), ("CP2", 1)]
    assert loop_run["cp3_after_end"] == []
    # once its needs are known, the EV limited to 16 A is never offered more
    for payload in (loop_run["last"]["CP2"], loop_run["last_after_end"]["CP2"]):
        periods = payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        assert max(p["limit"] for p in periods) <= 16.0


# --------------------------------------------------------------------------- no network


def _plan_payload(version: str = "2.0.1") -> dict:
    t0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")
    site = csms_loop.example_site(1)
    s = cp.Session(
        "s1",
        evse="CP1",
        arrival=t0,
        departure=t0 + pd.Timedelta("4h"),
        energy_kwh=30,
        transaction_id="tx-1",
    )
    plan = cp.optimize(site, [s], start=t0, horizon="4h", step="15min")
    [req] = plan.to_ocpp(version)
    return req.payload


def test_ocpp_package_sends_chargeplan_payload_unchanged():
    from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
    from ocpp.messages import Call, _validate_payload

    payload = _plan_payload()
    request = csms_loop.set_charging_profile_request(payload)
    wire = remove_nones(snake_to_camel_case(serialize_as_dict(request)))  # what call() sends
    assert json.dumps(wire) == json.dumps(payload)  # same keys, same order, same values
    _validate_payload(Call("1", "SetChargingProfile", wire), "2.0.1")


def test_payload_the_package_would_mangle_is_refused():
    payload = _plan_payload()
    payload["chargingProfile"]["customData"] = {"vendorId": "acme", "target_soc": 80}
    with pytest.raises(ValueError, match="send it raw"):
        csms_loop.set_charging_profile_request(payload)


def test_limit_at_is_a_step_function():
    payload = _plan_payload()
    sched = payload["chargingProfile"]["chargingSchedule"][0]
    t0 = pd.Timestamp(sched["startSchedule"])
    periods = sched["chargingSchedulePeriod"]
    assert csms_loop.limit_at(payload, t0) == periods[0]["limit"]
    assert csms_loop.limit_at(payload, t0 - pd.Timedelta("1s")) is None
    assert csms_loop.limit_at(payload, t0 + pd.Timedelta(seconds=sched["duration"])) is None
    last = periods[-1]
    assert (
        csms_loop.limit_at(payload, t0 + pd.Timedelta(seconds=last["startPeriod"]))
        == (last["limit"])
    )


def test_unknown_station_is_refused():
    import websockets

    async def scenario():
        csms = csms_loop.ChargingSiteCSMS(csms_loop.example_site(1))
        async with csms.serve() as server:
            url = csms_loop.server_url(server)
            async with websockets.connect(f"{url}/CP9", subprotocols=["ocpp2.0.1"]) as ws:
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd.code == 1008
            assert csms.connections == {}

    asyncio.run(asyncio.wait_for(scenario(), 10))
