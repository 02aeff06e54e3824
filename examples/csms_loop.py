"""A small OCPP 2.0.1 CSMS that re-plans a site with chargeplan on every charging event.

The CSMS (server side of the ``ocpp`` package over ``websockets``) holds the site model
and the sessions of the running transactions. On every ``TransactionEvent`` Started or
Ended and every ``NotifyEVChargingNeeds`` it re-plans the whole site with
:func:`chargeplan.optimize` from "now" floored to the step, over a 4 h horizon, and
sends each resulting ``SetChargingProfile`` (a TxProfile per running transaction) to
its charging station. Simulated charging stations (client side of the same package)
boot, start a transaction, report their EV's charging needs and record every profile
they receive.

Run the demo (a CSMS and three simulated stations, on 127.0.0.1 only)::

    python examples/csms_loop.py [--stations 3]

or serve real stations / an external simulator on ``ws://HOST:PORT/<station id>``
(subprotocol ``ocpp2.0.1``)::

    python examples/csms_loop.py --serve --port 9000

How the payloads pass through the ``ocpp`` package
--------------------------------------------------
``Plan.to_ocpp("2.0.1")`` returns payload dicts with the schema's camelCase keys. The
package's ``ChargePoint.call`` sends ``snake_to_camel_case(serialize_as_dict(request))``
without ``None`` values, so ``call.SetChargingProfile(evse_id=payload["evseId"],
charging_profile=payload["chargingProfile"])`` is sent byte-for-byte as built: camelCase
keys without underscores are left as they are. That is not true of every key: the
conversion also rewrites ``limit_L2`` to ``limitL2`` (OCPP 2.1) and any vendor key in
``customData`` containing ``soc``, ``csms``, ``_url`` or an underscore.
:func:`set_charging_profile_request` therefore checks the round trip and refuses to send
a payload the package would change. On the receiving side the package validates the
payload against the official schema and hands the handler snake_case keys;
:class:`SimulatedChargePoint` records the raw JSON payload as it arrived on the wire.

Two rules of the ``ocpp`` package shape the design: a handler must not ``await
self.call(...)`` (the reply is read by the same loop that runs the handler: deadlock),
so re-planning runs in a task started from ``@after`` handlers; and one re-planning
task at a time sends the profiles of one plan in order, coalescing events that arrive
meanwhile into the next pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import websockets
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as OcppChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

import chargeplan as cp
from chargeplan.ocpp import StationCapabilities

SUBPROTOCOL = "ocpp2.0.1"
LOG = logging.getLogger("chargeplan.examples.csms_loop")

#: ISO 15118 energy transfer modes of NotifyEVChargingNeeds -> phases the EV uses.
_TRANSFER_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}


# --------------------------------------------------------------------------- helpers


def example_site(
    n_stations: int = 3, grid_limit_a: float = 32.0, station_max_a: float = 32.0
) -> cp.Site:
    """Grid connection of ``grid_limit_a`` per phase feeding single-EVSE stations CP1..CPn.

    Each station is 3-phase, ``station_max_a`` per phase, OCPP ``evseId`` 1.
    """
    return cp.Site(
        nodes=[cp.Node("grid", limit_a=grid_limit_a)],
        evses=[
            cp.Evse(
                f"CP{k}",
                parent="grid",
                max_current_a=station_max_a,
                phases=3,
                station_id=f"CP{k}",
                connector_id=1,
            )
            for k in range(1, n_stations + 1)
        ],
    )


def utc_now() -> pd.Timestamp:
    """Current time, tz-aware UTC."""
    return pd.Timestamp.now(tz="UTC")


def ocpp_time(ts: pd.Timestamp) -> str:
    """Format a tz-aware timestamp the way OCPP wants it (UTC, milliseconds, ``Z``)."""
    return cp.ocpp.format_ocpp_datetime(ts)


def set_charging_profile_request(payload: dict) -> call.SetChargingProfile:
    """Wrap a chargeplan OCPP 2.0.1 payload in the ``ocpp`` package's request dataclass.

    Parameters
    ----------
    payload : dict
        ``ChargingProfileRequest.payload`` of ``Plan.to_ocpp("2.0.1")``.

    Returns
    -------
    ocpp.v201.call.SetChargingProfile

    Raises
    ------
    ValueError
        If the package's snake/camel case conversion would change any key (e.g. a 2.1
        ``limit_L2`` or a vendor key in ``customData``): such a payload must be sent
        raw, never mangled.
    """
    request = call.SetChargingProfile(
        evse_id=payload["evseId"],
        charging_profile=payload["chargingProfile"],
        custom_data=payload.get("customData"),
    )
    wire = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
    if wire != payload:
        raise ValueError(
            "The ocpp package would change this SetChargingProfile payload when sending "
            "it (snake/camel case conversion of its keys); send it raw instead."
        )
    return request


def limit_at(payload: dict | None, when: pd.Timestamp) -> float | None:
    """Limit of an Absolute OCPP 2.x profile in force at ``when``.

    Returns ``None`` outside ``[startSchedule, startSchedule + duration)`` (the station
    then falls back to a lower stack level or its default).
    """
    if payload is None:
        return None
    sched = payload["chargingProfile"]["chargingSchedule"][0]
    offset = (when - pd.Timestamp(sched["startSchedule"])).total_seconds()
    if offset < 0 or ("duration" in sched and offset >= sched["duration"]):
        return None
    limit = None
    for period in sched["chargingSchedulePeriod"]:
        if period["startPeriod"] > offset:
            break
        limit = period["limit"]
    return limit


@dataclass(frozen=True)
class SentProfile:
    """One SetChargingProfile the CSMS sent, with the station's answer."""

    station_id: str
    payload: dict
    status: str
    sent_at: pd.Timestamp
    plan_start: pd.Timestamp


# --------------------------------------------------------------------------- CSMS side


class StationConnection(OcppChargePoint):
    """The CSMS end of one charging station's websocket (OCPP 2.0.1 handlers)."""

    def __init__(self, station_id: str, connection: Any, csms: ChargingSiteCSMS):
        super().__init__(station_id, connection, response_timeout=csms.response_timeout)
        self.csms = csms

    @on(Action.boot_notification)
    def on_boot_notification(self, charging_station: dict, reason: str, **_: Any):
        return call_result.BootNotification(
            current_time=ocpp_time(self.csms.clock()), interval=300, status="Accepted"
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any):
        return call_result.Heartbeat(current_time=ocpp_time(self.csms.clock()))

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any):
        return call_result.StatusNotification()

    @on(Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        transaction_info: dict,
        evse: dict | None = None,
        **_: Any,
    ):
        self.csms.transaction_event(
            self.id,
            event_type,
            pd.Timestamp(timestamp),
            transaction_info["transaction_id"],
            None if evse is None else evse["id"],
        )
        return call_result.TransactionEvent()

    @after(Action.transaction_event)
    def after_transaction_event(self, **_: Any) -> None:
        self.csms.kick()

    @on(Action.notify_ev_charging_needs)
    def on_notify_ev_charging_needs(self, charging_needs: dict, evse_id: int, **_: Any):
        known = self.csms.charging_needs(self.id, evse_id, charging_needs)
        return call_result.NotifyEVChargingNeeds(status="Accepted" if known else "Rejected")

    @after(Action.notify_ev_charging_needs)
    def after_notify_ev_charging_needs(self, **_: Any) -> None:
        self.csms.kick()


class ChargingSiteCSMS:
    """A CSMS for one site that re-plans with chargeplan on every charging event.

    Parameters
    ----------
    site : chargeplan.Site
        The site; each EVSE's ``station_id`` and ``connector_id`` (= OCPP ``evseId``)
        identify it on the wire.
    horizon, step : str
        Planning horizon and slot length passed to :func:`chargeplan.optimize`.
    method : str
        Solver (``"auto"``, ``"greedy"``, ``"lp"``).
    tariff : chargeplan.Tariff, optional
        Prices.
    capabilities : StationCapabilities, optional
        What the stations accept (default: current in A, 24 periods).
    default_energy_kwh : float
        Energy assumed for a transaction until its EV reports its needs.
    default_stay : str
        Stay assumed until the EV reports a departure time.
    clock : callable, optional
        Returns "now" as a tz-aware Timestamp (default: the wall clock in UTC).
    response_timeout : float
        Seconds to wait for a station's answer to a SetChargingProfile.

    Attributes
    ----------
    sessions : dict
        ``(station_id, evse_id) -> Session`` of the running transactions.
    sent : list of SentProfile
        Every profile sent, in order.
    last_plan : chargeplan.Plan or None
        The latest plan.
    errors : list of Exception
        Planning and sending errors (the previous profiles stay in force).
    """

    def __init__(
        self,
        site: cp.Site,
        *,
        horizon: str = "4h",
        step: str = "15min",
        method: str = "auto",
        tariff: cp.Tariff | None = None,
        capabilities: StationCapabilities | None = None,
        default_energy_kwh: float = 20.0,
        default_stay: str = "4h",
        clock: Callable[[], pd.Timestamp] = utc_now,
        response_timeout: float = 10.0,
    ) -> None:
        self.site = site
        self.horizon = horizon
        self.step = pd.Timedelta(step)
        self.method = method
        self.tariff = tariff
        self.capabilities = capabilities or StationCapabilities(rate_units=("A",))
        self.default_energy_kwh = default_energy_kwh
        self.default_stay = pd.Timedelta(default_stay)
        self.clock = clock
        self.response_timeout = response_timeout
        self.evses = {(e.ocpp_station_id, e.connector_id): e for e in site.evses}
        self.stations = {e.ocpp_station_id for e in site.evses}
        self.connections: dict[str, StationConnection] = {}
        self.sessions: dict[tuple[str, int], cp.Session] = {}
        self.sent: list[SentProfile] = []
        self.last_sent: dict[tuple[str, int], dict] = {}
        self.last_plan: cp.Plan | None = None
        self.errors: list[Exception] = []
        self._requested = 0  # events that need a re-plan
        self._planned = 0  # of those, how many the latest plan has seen
        self._task: asyncio.Task | None = None

    # -- events (called by the handlers, before the answer is sent) --------------------
    def transaction_event(
        self,
        station_id: str,
        event_type: str,
        timestamp: pd.Timestamp,
        transaction_id: str,
        evse_id: int | None,
    ) -> None:
        """Track a TransactionEvent: Started adds a session, Ended removes it."""
        if event_type == "Started":
            if evse_id is None or (station_id, evse_id) not in self.evses:
                LOG.warning(
                    "%s: transaction %s on unknown EVSE %s", station_id, transaction_id, evse_id
                )
                return
            evse = self.evses[(station_id, evse_id)]
            self.sessions[(station_id, evse_id)] = cp.Session(
                f"{station_id}/{evse_id}/{transaction_id}",
                evse=evse.id,
                arrival=timestamp,
                departure=timestamp + self.default_stay,
                energy_kwh=self.default_energy_kwh,
                transaction_id=transaction_id,
            )
            self._requested += 1
        elif event_type == "Ended":
            for key, s in list(self.sessions.items()):
                if key[0] == station_id and s.transaction_id == transaction_id:
                    del self.sessions[key]
                    self.last_sent.pop(key, None)
                    self._requested += 1

    def charging_needs(self, station_id: str, evse_id: int, needs: dict) -> bool:
        """Apply a NotifyEVChargingNeeds (snake_case keys); False if no transaction runs."""
        key = (station_id, evse_id)
        if key not in self.sessions:
            return False
        s = self.sessions[key]
        changes: dict[str, Any] = {}
        ac = needs.get("ac_charging_parameters")
        if ac:
            changes["energy_kwh"] = ac["energy_amount"] / 1000.0
            changes["max_current_a"] = float(ac["ev_max_current"])
            if ac.get("ev_min_current", 0) > 0:
                changes["min_current_a"] = float(ac["ev_min_current"])
        phases = _TRANSFER_PHASES.get(needs.get("requested_energy_transfer", ""))
        if phases is not None:
            changes["phases"] = phases
        if needs.get("departure_time"):
            changes["departure"] = pd.Timestamp(needs["departure_time"])
        self.sessions[key] = replace(s, **changes)
        self._requested += 1
        return True

    # -- planning ----------------------------------------------------------------------
    def kick(self) -> None:
        """Start the re-planning task unless it is running (it picks up new events)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._replan_loop(), name="chargeplan-replan")

    async def wait_idle(self, poll_s: float = 0.005) -> None:
        """Wait until every event received so far is in a plan whose profiles were sent."""
        while self._planned < self._requested or (self._task is not None and not self._task.done()):
            await asyncio.sleep(poll_s)

    async def warm_up(self) -> None:
        """Plan once off-line so the first real event does not pay numba's cold start."""
        evse = self.site.evses[0]
        now = self.clock().floor(self.step)
        s = cp.Session(
            "warm-up", evse=evse.id, arrival=now, departure=now + self.step * 4, energy_kwh=1.0
        )
        await asyncio.to_thread(self._optimize, [s], now)

    def _optimize(self, sessions: list[cp.Session], start: pd.Timestamp) -> cp.Plan:
        return cp.optimize(
            self.site,
            sessions,
            start=start,
            horizon=self.horizon,
            step=self.step,
            tariff=self.tariff,
            method=self.method,
        )

    async def _replan_loop(self) -> None:
        while self._planned < self._requested:
            target = self._requested
            try:
                await self._replan()
            except Exception as exc:  # keep serving; the stations keep their last profiles
                LOG.exception("re-planning failed")
                self.errors.append(exc)
            self._planned = target

    async def _replan(self) -> None:
        now = self.clock()
        start = now.floor(self.step)
        # a running transaction is plugged in now: plan it from the slot start (OCPP
        # profiles are sent for sessions present at the plan start) and at least one slot
        sessions = [
            replace(
                s,
                arrival=min(s.arrival, start),
                departure=max(s.departure, start + self.step),
            )
            for s in self.sessions.values()
        ]
        if not sessions:
            return
        plan = await asyncio.to_thread(self._optimize, sessions, start)
        requests = plan.to_ocpp("2.0.1", capabilities=self.capabilities)
        self.last_plan = plan

        # send the stations whose limit goes down now first, then the ones it goes up
        # for (a station without a profile of ours draws up to its default: a decrease)
        def change_now(req: cp.ocpp.ChargingProfileRequest) -> float:
            old = limit_at(self.last_sent.get((req.station_id, req.payload["evseId"])), now)
            new = limit_at(req.payload, now)
            return float("-inf") if old is None else (new or 0.0) - old

        for req in sorted(requests, key=change_now):
            await self._send(req, now, start)

    async def _send(
        self, req: cp.ocpp.ChargingProfileRequest, now: pd.Timestamp, start: pd.Timestamp
    ) -> None:
        conn = self.connections.get(req.station_id)
        if conn is None:
            LOG.warning("%s is not connected; profile not sent", req.station_id)
            return
        try:
            response = await conn.call(set_charging_profile_request(req.payload), suppress=False)
            status = str(response.status)
        except (OCPPError, TimeoutError, websockets.ConnectionClosed, ValueError) as exc:
            LOG.error("%s: SetChargingProfile failed: %r", req.station_id, exc)
            self.errors.append(exc)
            status = f"error: {type(exc).__name__}"
        self.sent.append(SentProfile(req.station_id, req.payload, status, now, start))
        if status == "Accepted":
            self.last_sent[(req.station_id, req.payload["evseId"])] = req.payload

    # -- server ------------------------------------------------------------------------
    async def _on_connect(self, websocket: Any) -> None:
        station_id = websocket.request.path.strip("/").rsplit("/", 1)[-1]
        if websocket.subprotocol != SUBPROTOCOL or station_id not in self.stations:
            await websocket.close(code=1008, reason="unknown station or subprotocol")
            return
        conn = StationConnection(station_id, websocket, self)
        self.connections[station_id] = conn
        try:
            await conn.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.connections.get(station_id) is conn:
                del self.connections[station_id]

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Any]:
        """Serve stations on ``ws://host:port/<station id>`` (port 0: any free port).

        Yields the ``websockets`` server; on exit the re-planning task is cancelled and
        every connection closed.
        """
        server = await websockets.serve(self._on_connect, host, port, subprotocols=[SUBPROTOCOL])
        try:
            yield server
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            server.close()
            await server.wait_closed()


def server_url(server: Any) -> str:
    """``ws://host:port`` of a server started by :meth:`ChargingSiteCSMS.serve`."""
    host, port = server.sockets[0].getsockname()[:2]
    return f"ws://{host}:{port}"


# --------------------------------------------------------------------------- station side


@dataclass(frozen=True)
class ReceivedProfile:
    """A SetChargingProfile payload as it arrived on the wire, and our answer."""

    payload: dict
    status: str
    received_at: pd.Timestamp


class SimulatedChargePoint(OcppChargePoint):
    """A single-EVSE OCPP 2.0.1 charging station that records the profiles it gets.

    It accepts a profile for its own EVSE; a TxProfile only if its ``transactionId``
    is the running transaction's (rule 8), as real stations do.
    """

    def __init__(self, station_id: str, connection: Any, evse_id: int = 1):
        super().__init__(station_id, connection, response_timeout=10)
        self.evse_id = evse_id
        self.transaction_id: str | None = None
        self.received: list[ReceivedProfile] = []
        self._raw: dict | None = None
        self._seq = 0
        self._changed = asyncio.Condition()

    async def route_message(self, raw_msg: str) -> None:
        """Keep the raw payload of an incoming SetChargingProfile, then route it."""
        msg = json.loads(raw_msg)
        self._raw = msg[3] if msg[0] == 2 and msg[2] == "SetChargingProfile" else None
        await super().route_message(raw_msg)

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict, **_: Any):
        purpose = charging_profile["charging_profile_purpose"]
        ok = evse_id == self.evse_id and (
            purpose != "TxProfile"
            or (
                self.transaction_id is not None
                and charging_profile.get("transaction_id") == self.transaction_id
            )
        )
        status = "Accepted" if ok else "Rejected"
        self.received.append(ReceivedProfile(self._raw, status, utc_now()))
        async with self._changed:
            self._changed.notify_all()
        return call_result.SetChargingProfile(status=status)

    @property
    def last_profile(self) -> dict | None:
        """The last accepted profile's payload."""
        accepted = [r.payload for r in self.received if r.status == "Accepted"]
        return accepted[-1] if accepted else None

    async def wait_for_profile(self, transaction_id: str, after: int = 0) -> dict:
        """Wait for an accepted TxProfile of ``transaction_id`` (past ``received[after:]``)."""

        def found() -> dict | None:
            for r in self.received[after:]:
                prof = r.payload["chargingProfile"]
                if r.status == "Accepted" and prof.get("transactionId") == transaction_id:
                    return r.payload
            return None

        async with self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        return found()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    async def boot(self) -> None:
        """BootNotification, then StatusNotification Available."""
        await self.call(
            call.BootNotification(
                charging_station={"vendor_name": "chargeplan", "model": "simulated"},
                reason="PowerUp",
            )
        )
        await self._status("Available")

    async def _status(self, status: str) -> None:
        await self.call(
            call.StatusNotification(
                timestamp=ocpp_time(utc_now()),
                connector_status=status,
                evse_id=self.evse_id,
                connector_id=1,
            )
        )

    async def start_transaction(self, transaction_id: str) -> None:
        """EV plugged in: StatusNotification Occupied, TransactionEvent Started."""
        self.transaction_id = transaction_id
        self._seq = 0
        await self._status("Occupied")
        await self.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp=ocpp_time(utc_now()),
                trigger_reason="CablePluggedIn",
                seq_no=self._next_seq(),
                transaction_info={
                    "transaction_id": transaction_id,
                    "charging_state": "EVConnected",
                },
                evse={"id": self.evse_id, "connector_id": 1},
            )
        )

    async def notify_charging_needs(
        self,
        energy_wh: int,
        departure: pd.Timestamp,
        *,
        ev_max_current_a: int = 32,
        ev_min_current_a: int = 6,
        ev_max_voltage_v: int = 400,
        transfer: str = "AC_three_phase",
    ) -> str:
        """ISO 15118 NotifyEVChargingNeeds (AC); returns the CSMS's status."""
        res = await self.call(
            call.NotifyEVChargingNeeds(
                evse_id=self.evse_id,
                charging_needs={
                    "requested_energy_transfer": transfer,
                    "departure_time": ocpp_time(departure),
                    "ac_charging_parameters": {
                        "energy_amount": int(energy_wh),
                        "ev_min_current": int(ev_min_current_a),
                        "ev_max_current": int(ev_max_current_a),
                        "ev_max_voltage": int(ev_max_voltage_v),
                    },
                },
            )
        )
        return str(res.status)

    async def stop_transaction(self) -> None:
        """EV unplugged: TransactionEvent Ended, StatusNotification Available."""
        await self.call(
            call.TransactionEvent(
                event_type="Ended",
                timestamp=ocpp_time(utc_now()),
                trigger_reason="EVCommunicationLost",
                seq_no=self._next_seq(),
                transaction_info={
                    "transaction_id": self.transaction_id,
                    "stopped_reason": "EVDisconnected",
                },
                evse={"id": self.evse_id, "connector_id": 1},
            )
        )
        self.transaction_id = None
        await self._status("Available")


@contextlib.asynccontextmanager
async def simulated_charge_point(
    url: str, station_id: str, evse_id: int = 1
) -> AsyncIterator[SimulatedChargePoint]:
    """Connect a :class:`SimulatedChargePoint` to ``url``; closed and stopped on exit."""
    async with websockets.connect(f"{url}/{station_id}", subprotocols=[SUBPROTOCOL]) as ws:
        station = SimulatedChargePoint(station_id, ws, evse_id)
        task = asyncio.create_task(station.start(), name=f"{station_id}-receive")
        try:
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


# --------------------------------------------------------------------------- demo


async def demo(n_stations: int = 3, stagger_s: float = 0.2) -> ChargingSiteCSMS:
    """CSMS + ``n_stations`` simulated stations on loopback, EVs arriving one by one."""
    csms = ChargingSiteCSMS(example_site(n_stations))
    await csms.warm_up()
    async with csms.serve() as server, contextlib.AsyncExitStack() as stack:
        url = server_url(server)
        stations = [
            await stack.enter_async_context(simulated_charge_point(url, f"CP{k}"))
            for k in range(1, n_stations + 1)
        ]
        for st in stations:
            await st.boot()
        for k, st in enumerate(stations, start=1):
            await st.start_transaction(f"tx-{k}")
            await st.notify_charging_needs(
                energy_wh=15_000 + 5_000 * k,
                departure=utc_now() + pd.Timedelta(hours=2 + k),
                ev_max_current_a=32 if k != 2 else 16,
            )
            await asyncio.sleep(stagger_s)
        await csms.wait_idle()
        for st in stations:
            prof = st.last_profile["chargingProfile"]
            sched = prof["chargingSchedule"][0]
            periods = ", ".join(
                f"+{p['startPeriod'] // 60}min {p['limit']} A"
                for p in sched["chargingSchedulePeriod"]
            )
            print(f"{st.id} {prof['transactionId']}: from {sched['startSchedule']}: {periods}")
        print(f"{len(csms.sent)} profiles sent; last plan: {csms.last_plan!r}")
    return csms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="only run the CSMS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.serve:
        asyncio.run(demo(args.stations))
        return

    async def serve_forever() -> None:
        csms = ChargingSiteCSMS(example_site(args.stations))
        await csms.warm_up()
        async with csms.serve(args.host, args.port) as server:
            print(f"CSMS on {server_url(server)}/<station id> (CP1..CP{args.stations})")
            await asyncio.Future()

    asyncio.run(serve_forever())


if __name__ == "__main__":
    main()
