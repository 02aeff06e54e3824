"""Plan: the verified result of planning, with pandas views, KPIs and OCPP export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .check import check_plan
from .exceptions import LimitViolationError, Violation
from .model import PHASES, Forecast, Session, Site, Tariff, V2GBid
from .problem import ProblemArrays
from .rounding import battery_energy_kwh
from .solvers import SolverReport
from .timegrid import TimeGrid

if TYPE_CHECKING:
    from .ocpp import ChargingProfileRequest, StationCapabilities

__all__ = ["Plan", "SERVED_TOL_KWH"]

#: A session counts as fully served when its unmet energy is at most this (kWh): about
#: what one 0.1 A step carries for 15 minutes on 3 phases, the station's resolution.
SERVED_TOL_KWH = 0.02


class Plan:
    """A verified charging plan.

    Built by :func:`chargeplan.optimize`; every plan it returns has passed
    :meth:`check`. Rates are what each EVSE may draw while its EV is plugged in
    during a slot; energies account for partial presence in arrival and departure
    slots.

    Attributes
    ----------
    report : SolverReport
        Which solver ran, why, its status and timings.
    """

    def __init__(
        self,
        *,
        site: Site,
        sessions: Sequence[Session],
        grid: TimeGrid,
        problem: ProblemArrays,
        rate_kw: np.ndarray,
        current_a: np.ndarray,
        report: SolverReport,
        tariff: Tariff | None = None,
        forecast: Forecast | None = None,
        v2g_bids: Sequence[V2GBid] = (),
    ) -> None:
        self.site = site
        self.session_inputs = tuple(sessions)
        self.grid = grid
        self.problem = problem
        self.rate_kw = rate_kw
        self.current_a_array = current_a
        self.report = report
        self.tariff = tariff
        self.forecast = forecast
        self.v2g_bids = tuple(v2g_bids)
        self.rate_kw.setflags(write=False)
        self.current_a_array.setflags(write=False)

    def __repr__(self) -> str:
        k = self.kpis
        return (
            f"<Plan {self.grid.n_slots} slots x {self.grid.step_s} s from {self.grid.start}, "
            f"{len(self.session_inputs)} sessions, delivered {k['delivered_kwh']:.3f} of "
            f"{k['requested_kwh']:.3f} kWh, cost {k['energy_cost']:.4f}, "
            f"method={self.report.method!r}>"
        )

    # -- pandas views ------------------------------------------------------------------
    @property
    def index(self) -> pd.DatetimeIndex:
        """Slot start times (tz-aware)."""
        return self.grid.index

    def _per_evse(self, values: np.ndarray) -> pd.DataFrame:
        n_evse = len(self.problem.evse_ids)
        out = np.zeros((n_evse, self.grid.n_slots))
        vals = np.nan_to_num(values)
        # sessions on one EVSE never overlap in time; in a shared slot show the one with
        # the larger magnitude (assign in increasing magnitude: the last write wins)
        for s in np.argsort(np.abs(vals).max(axis=1, initial=0.0), kind="stable"):
            e = self.problem.session_evse[s]
            take = np.abs(vals[s]) >= np.abs(out[e])
            out[e, take] = vals[s, take]
        return pd.DataFrame(out.T, index=self.index, columns=list(self.problem.evse_ids))

    @cached_property
    def power_kw(self) -> pd.DataFrame:
        """Charging rate per EVSE per slot in kW (index: slot start, columns: EVSE id).

        Where two sessions share an EVSE in one slot (one leaves, the next arrives), the
        one with the larger rate is shown; :attr:`current_a` picks by current, so the two
        tables can then show different sessions. Per session: :attr:`energy_kwh`.
        """
        return self._per_evse(self.rate_kw)

    @cached_property
    def current_a(self) -> pd.DataFrame:
        """Conductor current per EVSE per slot in A (0 for DC EVSEs)."""
        return self._per_evse(self.current_a_array)

    @cached_property
    def energy_kwh(self) -> pd.DataFrame:
        """Energy per session per slot in kWh (columns: session id)."""
        e = self.rate_kw * self.problem.present * self.grid.step_h
        return pd.DataFrame(e.T, index=self.index, columns=list(self.problem.session_ids))

    @cached_property
    def node_current_a(self) -> pd.DataFrame:
        """Line current per node and site phase per slot from charging, in A.

        Columns are a MultiIndex (node id, phase). The magnitude of the phasor sum
        (a line-to-line load counts with its angle), negative rates included; base
        load and PV are not included.
        """
        p = self.problem
        T = self.grid.n_slots
        load = np.zeros((len(p.node_ids), 3, T), dtype=complex)
        phasor = p.acoef[:, :, None] * self.rate_kw[:, None, :]
        for d in range(p.path.shape[1]):
            nodes = p.path[:, d]
            ok = nodes >= 0
            np.add.at(load, nodes[ok], phasor[ok])
        cols = pd.MultiIndex.from_product([list(p.node_ids), list(PHASES)], names=["node", "phase"])
        return pd.DataFrame(np.abs(load).reshape(-1, T).T, index=self.index, columns=cols)

    @cached_property
    def site_import_kw(self) -> pd.Series:
        """Mean power drawn from the grid per slot in kW (negative = export).

        Charging energy plus forecast base load minus PV, each at its mean over the slot
        (the limits are planned against base load at its highest and PV at its lowest
        within the slot; a report uses what is expected). Energy cost, peak and demand
        charge in :attr:`kpis` are computed from it.
        """
        p = self.problem
        kw = p.net_base_mean_kw + (self.rate_kw * p.present).sum(axis=0)
        return pd.Series(kw, index=self.index, name="site_import_kw")

    @cached_property
    def sessions(self) -> pd.DataFrame:
        """Per session: EVSE, requested, delivered and unmet kWh, and energy cost.

        ``delivered_kwh`` is the net energy added to the battery (discharge counted
        with the round-trip loss). ``energy_cost`` prices each session's energy at
        the meter at the import price of its slots (PV savings, export revenue and
        demand charges are counted at site level in :attr:`kpis`).
        """
        p = self.problem
        e = self.rate_kw * p.present * self.grid.step_h
        delivered = battery_energy_kwh(p, self.rate_kw).sum(axis=1)
        requested = p.energy_kwh
        return pd.DataFrame(
            {
                "evse": [p.evse_ids[i] for i in p.session_evse],
                "requested_kwh": requested,
                "delivered_kwh": delivered,
                "unmet_kwh": np.maximum(requested - delivered, 0.0),
                "energy_cost": e @ p.price_import_per_kwh,
            },
            index=pd.Index(list(p.session_ids), name="session"),
        )

    @cached_property
    def kpis(self) -> dict[str, float]:
        """Headline numbers of the plan.

        Energy requested/delivered/unmet (kWh; delivered is net energy added to the
        batteries), shares of energy and of sessions served, ``energy_cost`` (import
        cost minus export revenue), ``demand_charge``, ``v2g_discharged_kwh``,
        ``v2g_revenue`` (bids paid), ``degradation_cost``, ``total_cost`` and
        ``peak_import_kw``.
        """
        s = self.sessions
        p = self.problem
        site = self.site_import_kw.to_numpy()
        dt_h = self.grid.step_h
        cost = float(
            (
                np.maximum(site, 0) * p.price_import_per_kwh
                - np.maximum(-site, 0) * p.price_export_per_kwh
            ).sum()
            * dt_h
        )
        peak = float(site.max()) if len(site) else 0.0
        demand = p.demand_charge_per_kw * max(0.0, peak - p.peak_already_kw)
        dis = np.maximum(-self.rate_kw, 0.0) * p.present * dt_h  # kWh at the meter
        v2g_kwh = float(dis.sum())
        degradation = float((dis.sum(axis=1) * p.degradation_per_kwh).sum())
        revenue = 0.0
        if len(p.bid_price_per_kwh):
            # a bid pays for the discharge inside its window (the rate is constant while
            # the EV is plugged in within the slot), highest price first, each kWh once
            rate_out = np.maximum(-self.rate_kw, 0.0)  # kW
            per_slot = (rate_out * p.bid_union).sum(axis=0)  # mean kW any bid may pay for
            paid = np.zeros_like(per_slot)
            for b in np.argsort(-p.bid_price_per_kwh):
                kw = (rate_out * p.bid_overlap[b]).sum(axis=0)
                take = np.minimum(
                    np.minimum(kw, p.bid_max_kw[b] * p.bid_window[b]), per_slot - paid
                )
                take = np.maximum(take, 0.0)
                paid += take
                revenue += float((take * p.bid_price_per_kwh[b]).sum() * dt_h)
        req = float(s["requested_kwh"].sum())
        done = float(s["delivered_kwh"].sum())
        served = (s["unmet_kwh"] <= SERVED_TOL_KWH).mean() if len(s) else 1.0
        return {
            "requested_kwh": req,
            "delivered_kwh": done,
            "unmet_kwh": float(s["unmet_kwh"].sum()),
            "share_delivered": done / req if req > 0 else 1.0,
            "share_sessions_served": float(served),
            "energy_cost": cost,
            "demand_charge": float(demand),
            "v2g_discharged_kwh": v2g_kwh,
            "v2g_revenue": revenue,
            "degradation_cost": degradation,
            "total_cost": cost + float(demand) + degradation - revenue,
            "peak_import_kw": peak,
        }

    # -- verification ------------------------------------------------------------------
    def violations(self) -> list[Violation]:
        """Every limit this plan breaks, from the independent checker (empty = safe)."""
        return check_plan(
            self.site,
            self.session_inputs,
            self.grid,
            self.rate_kw,
            self.current_a_array,
            self.forecast,
        )

    def check(self) -> Plan:
        """Verify the plan with the independent checker.

        Returns
        -------
        Plan
            ``self``, so calls can be chained.

        Raises
        ------
        LimitViolationError
            Listing every violated limit.
        """
        v = self.violations()
        if v:
            raise LimitViolationError(v)
        return self

    # -- OCPP --------------------------------------------------------------------------
    def to_ocpp(
        self,
        version: str = "2.0.1",
        *,
        capabilities: StationCapabilities | Mapping[str, StationCapabilities] | None = None,
        profile_ids: Mapping[str, int] | None = None,
    ) -> list[ChargingProfileRequest]:
        """SetChargingProfile requests for this plan.

        One TxProfile per EVSE with a session plugged in during the first slot (OCPP
        needs a running transaction; the one plugged in at the start wins), plus a
        station-wide max profile on connector/EVSE 0 for every node marked with a
        ``station_id``. Each request names the charging station it
        is addressed to; its ``payload`` is a plain JSON-ready dict.

        A max profile carries all the node's limits in one unit: in A when the node has
        a current limit (a ``limit_kw`` folded in as ``limit_kw / (3 * voltage_v)`` per
        phase), in W when it has only ``limit_kw``. A W-only station gets no weaker limit
        in W for a node with a current limit: that is an ``InputError`` (rule 26).

        Parameters
        ----------
        version : {"1.6", "2.0.1", "2.1"}
            OCPP version of the payloads. Discharge (V2G) needs "2.1"; it is sent as
            ``CentralSetpoint`` periods with a signed ``setpoint`` and the matching
            ``limit`` / ``dischargeLimit``.
        capabilities : StationCapabilities or mapping of station id to it, optional
            Allowed units, period budget, stack level, MaxExternalConstraintsId
            (default: A or W, 24 periods).
        profile_ids : mapping, optional
            Override of the stable profile ids (see :func:`chargeplan.ocpp.build_profiles`).

        Returns
        -------
        list of ChargingProfileRequest
        """
        from .ocpp import build_profiles

        schedules, limits = self._ocpp_inputs()
        return build_profiles(
            schedules,
            limits,
            start=self.grid.start,
            step_s=self.grid.step_s,
            version=version,
            capabilities=capabilities,
            profile_ids=profile_ids,
        )

    def _ocpp_inputs(self) -> tuple[list[Any], list[Any]]:
        from .ocpp import ConnectorSchedule, StationLimit
        from .problem import evse_phase_weights

        p = self.problem
        start = self.grid.start
        slot0_end = start + pd.Timedelta(seconds=self.grid.step_s)
        evses = {e.id: e for e in self.site.evses}
        # the transaction on each EVSE: the session plugged in at the start, else the
        # first one plugged in during the first slot (a CSMS plans from "now" floored to
        # the step); one per EVSE, as a connector has one transaction at a time
        active: dict[str, int] = {}
        for s, sess in enumerate(self.session_inputs):
            arr, dep = pd.Timestamp(sess.arrival), pd.Timestamp(sess.departure)
            if not (arr < slot0_end and start < dep):
                continue
            best = active.get(sess.evse)
            if best is None:
                active[sess.evse] = s
                continue
            other = self.session_inputs[best]
            key_new = (not (arr <= start), arr)
            key_old = (not (pd.Timestamp(other.arrival) <= start), pd.Timestamp(other.arrival))
            if key_new < key_old:
                active[sess.evse] = s
        schedules = []
        for s, sess in enumerate(self.session_inputs):
            if active.get(sess.evse) != s:
                continue
            evse = evses[sess.evse]
            tx = sess.transaction_id if sess.transaction_id is not None else sess.id
            if evse.dc:
                schedules.append(
                    ConnectorSchedule(
                        station_id=evse.ocpp_station_id,
                        connector_id=evse.connector_id,
                        session_id=sess.id,
                        transaction_id=tx,
                        dc=True,
                        number_phases=None,
                        w_per_a=None,
                        min_current_a=0.0,
                        current_a=None,
                        power_w=self.rate_kw[s] * 1000.0,
                    )
                )
            else:
                _, kpa = evse_phase_weights(evse, sess.phases, self.site.voltage_v)
                n_ph = 1 if evse.phases == 1 else (sess.phases or 3)
                schedules.append(
                    ConnectorSchedule(
                        station_id=evse.ocpp_station_id,
                        connector_id=evse.connector_id,
                        session_id=sess.id,
                        transaction_id=tx,
                        dc=False,
                        number_phases=n_ph,
                        w_per_a=kpa * 1000.0,
                        min_current_a=float(round(p.pmin_kw[s] / kpa, 6)),
                        current_a=np.array(self.current_a_array[s]),
                        power_w=self.rate_kw[s] * 1000.0,
                    )
                )
        limits = []
        node_pos = {n: i for i, n in enumerate(p.node_ids)}
        for node in self.site.nodes:
            if node.station_id is None:
                continue
            cap = p.cap[node_pos[node.id]]
            lim_kw = cap[3]
            # A station max profile has one unit, so it must carry all the node's limits.
            # A limit in W cannot bound the current of each phase: a node with a current
            # limit is sent in A, its kW limit (if any) folded in as kW / (3 V) per phase,
            # which keeps the power within it however the phases are loaded (P <= V *
            # the sum of the line currents). A node with only a kW limit is sent in W.
            lim_a = lim_w = None
            if np.isfinite(cap[:3]).any():
                volts = self.site.voltage_v
                lim_a = np.minimum(cap[:3].min(axis=0), lim_kw * 1000.0 / (3.0 * volts))
            else:
                lim_w = lim_kw * 1000.0
            has_a = lim_a is not None and np.isfinite(lim_a).all()
            has_kw = lim_w is not None and np.isfinite(lim_w).all()
            if not (has_a or has_kw):
                continue  # no charger-level limit applies
            limits.append(
                StationLimit(
                    station_id=node.station_id,
                    limit_a=lim_a if has_a else None,
                    limit_w=lim_w if has_kw else None,
                )
            )
        return schedules, limits
