"""Input model: the site tree, EVSEs, charging sessions, tariffs and forecasts.

All inputs are frozen dataclasses with the unit in every numeric field name.
Nothing is validated at construction time: :func:`chargeplan.validate` (called by
:func:`chargeplan.optimize`) checks everything at once and reports every problem
with its field path.

Conventions
-----------
* Currents are per conductor (per phase), in A. Powers are in kW (totals over phases).
* ``Site.voltage_v`` is the nominal line-to-neutral voltage; power per phase is
  ``voltage_v * current_a`` (OCPP's conversion, no power factor). A 1-phase EVSE wired
  line-to-line sees ``sqrt(3) * voltage_v`` (e.g. 208 V on a 120 V US site) unless its
  own ``voltage_v`` says otherwise.
* Time-varying values are pandas Series indexed by tz-aware timestamps, read as a step
  function: each value holds from its time stamp until the next one; the last value
  holds for one more spacing of the index.
* Site phases are named ``"L1"``, ``"L2"``, ``"L3"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import pandas as pd

__all__ = [
    "PHASES",
    "PHASE_ROTATIONS",
    "Node",
    "Evse",
    "Site",
    "Session",
    "Tariff",
    "Forecast",
    "V2GBid",
    "ScalarOrSeries",
    "CurrentLimit",
]

#: Names of the three site phases, in order.
PHASES: tuple[str, str, str] = ("L1", "L2", "L3")

#: OCPP phase rotations of a 3-phase EVSE: which site phase (R=L1, S=L2, T=L3) feeds the
#: EVSE's L1, L2 and L3. ``"RST"`` is the standard wiring.
PHASE_ROTATIONS: tuple[str, ...] = ("RST", "RTS", "SRT", "STR", "TRS", "TSR")

#: Wirings of a 1-phase EVSE: line-to-neutral on one phase, or line-to-line across two.
SINGLE_PHASE_WIRINGS: tuple[str, ...] = ("L1", "L2", "L3", "L1-L2", "L2-L3", "L3-L1")

ScalarOrSeries: TypeAlias = "float | pd.Series"
CurrentLimit: TypeAlias = (
    "float | tuple[float | None, float | None, float | None] | pd.Series | pd.DataFrame"
)


@dataclass(frozen=True, eq=False)
class Node:
    """A node of the site's electrical tree: grid connection, transformer, feeder, charger.

    Parameters
    ----------
    id : str
        Unique node id.
    parent : str or None
        Id of the node above; ``None`` for the root (the grid connection). A site has
        exactly one root.
    limit_a : float, 3-tuple, pandas.Series or pandas.DataFrame, optional
        Per-phase current limit in A. A scalar applies to each phase; a tuple gives
        ``(L1, L2, L3)`` (``None`` = no limit on that phase); a Series is a time-varying
        limit on every phase; a DataFrame with columns ``L1``, ``L2``, ``L3`` is
        time-varying per phase.
    limit_kw : float or pandas.Series, optional
        Limit on the total power through the node (sum over phases), in kW.
    station_id : str, optional
        Set when the node is a charging station (charger) whose limit should also be
        sent to it as a station-wide max profile on connector/EVSE 0.
    """

    id: str
    parent: str | None = None
    limit_a: CurrentLimit | None = None
    limit_kw: ScalarOrSeries | None = None
    station_id: str | None = None


@dataclass(frozen=True)
class Evse:
    """A charging point (one connector in use at a time) hanging under a node.

    Parameters
    ----------
    id : str
        Unique EVSE id.
    parent : str
        Id of the node this EVSE is fed from.
    max_current_a : float, optional
        AC: maximum current per conductor in A. Required for AC unless ``max_power_kw``
        is given.
    max_power_kw : float, optional
        Maximum power in kW. Required for DC.
    min_current_a : float, default 6.0
        AC: smallest current the EVSE can signal (IEC 61851: 6 A). A plan gives either
        0 A or at least this.
    phases : {1, 3}, optional
        AC: number of phases the EVSE is wired with (default 3). Must be left unset for DC.
    phase_rotation : str, optional
        3-phase AC: OCPP phase rotation, one of ``PHASE_ROTATIONS`` (default ``"RST"``).
        A 1-phase EV on this EVSE loads the site phase named by the first letter.
    phase : str, optional
        1-phase AC: ``"L1"``, ``"L2"`` or ``"L3"`` (line-to-neutral, default ``"L1"``)
        or ``"L1-L2"``, ``"L2-L3"``, ``"L3-L1"`` (line-to-line; the current loads both
        lines and is bounded by the sum of magnitudes, which is safe for the phasor sum).
    dc : bool, default False
        DC charger: limited in power, drawn balanced over three phases at the node above.
    bidirectional : bool, default False
        The EVSE can discharge (V2G).
    max_discharge_current_a, max_discharge_power_kw : float, optional
        Discharge limits of a bidirectional EVSE (default: its charge limits).
    voltage_v : float, optional
        Voltage across the EV's terminals per conductor; defaults to the site voltage
        (line-to-neutral) or ``sqrt(3)`` times it for a line-to-line EVSE.
    station_id : str, optional
        OCPP charging station id the EVSE belongs to (default: the EVSE id).
    connector_id : int, default 1
        OCPP 1.6 connectorId / OCPP 2.x evseId of this EVSE on its station.
    """

    id: str
    parent: str
    max_current_a: float | None = None
    max_power_kw: float | None = None
    min_current_a: float = 6.0
    phases: int | None = None
    phase_rotation: str | None = None
    phase: str | None = None
    dc: bool = False
    bidirectional: bool = False
    voltage_v: float | None = None
    station_id: str | None = None
    connector_id: int = 1
    max_discharge_current_a: float | None = None
    max_discharge_power_kw: float | None = None

    @property
    def ocpp_station_id(self) -> str:
        """Charging station id profiles for this EVSE are addressed to."""
        return self.station_id if self.station_id is not None else self.id


@dataclass(frozen=True, eq=False)
class Site:
    """A charging site: a tree of nodes with EVSEs at the leaves.

    Parameters
    ----------
    nodes : sequence of Node
        The electrical tree; exactly one node has no parent (the grid connection).
    evses : sequence of Evse
        The charging points.
    voltage_v : float, default 230.0
        Nominal line-to-neutral voltage in V (120 on a US 208 V site).
    export_limit_kw : float, optional
        Most power the site may feed into the grid because of discharging EVs, in kW
        (``None``: only the node limits apply). PV export that happens anyway is not
        curtailed by the planner.
    phasor_limits : bool, default True
        Nodes that carry line-to-line loads are limited on the exact line-current
        phasor (e.g. ``|I_AB - I_CA|`` on line A), assuming balanced voltages and unity
        power factor. With ``False`` they use the simpler sum of magnitudes, which is
        safe but wastes capacity (about 5 points of delivered energy on the Caltech
        site at 50 kW). Nodes without line-to-line loads are exact either way.
    """

    nodes: tuple[Node, ...] | list[Node]
    evses: tuple[Evse, ...] | list[Evse]
    voltage_v: float = 230.0
    export_limit_kw: float | None = None
    phasor_limits: bool = True

    @property
    def root(self) -> Node | None:
        """The grid connection node (``None`` if the tree has no unique root)."""
        roots = [n for n in self.nodes if n.parent is None]
        return roots[0] if len(roots) == 1 else None


@dataclass(frozen=True)
class Session:
    """A charging session: an EV plugged into an EVSE for a time window.

    The requested energy is ``energy_kwh`` or, when a battery is described,
    ``(soc_target_pct - soc_now_pct) / 100 * battery_capacity_kwh``; both may be given,
    and the smaller applies. The battery headroom ``(100 - soc_now_pct) / 100 *
    battery_capacity_kwh`` always caps it.

    Parameters
    ----------
    id : str
        Unique session id.
    evse : str
        Id of the EVSE the EV is plugged into.
    arrival, departure : pandas.Timestamp
        Plug-in and (expected) plug-out times, tz-aware. An arrival before the plan
        start means the EV is already plugged in.
    energy_kwh : float, optional
        Energy requested, in kWh.
    battery_capacity_kwh, soc_now_pct, soc_target_pct : float, optional
        Battery description (state of charge in percent, 0..100).
    max_current_a : float, optional
        AC: EV's maximum current per conductor.
    min_current_a : float, optional
        AC: EV's minimum current (the larger of this and the EVSE's minimum applies).
    max_power_kw, min_power_kw : float, optional
        EV's power limits (DC, or AC EVs described by power).
    phases : {1, 2, 3}, optional
        AC phases the EV charges on (default: all phases of the EVSE).
    priority : float, default 1.0
        Weight of this session's unmet energy; higher is served first.
    transaction_id : str or int, optional
        OCPP transaction id (default: the session id). OCPP 1.6 needs an integer.
    v2g : bool, default False
        The driver allows discharging (V2G); needs a bidirectional EVSE.
    soc_min_pct : float, optional
        Driver's reserve: discharging never takes the battery below this state of
        charge (needs ``battery_capacity_kwh`` and ``soc_now_pct``). Without it, a
        session can only give back energy it received in this plan.
    max_discharge_current_a, max_discharge_power_kw : float, optional
        EV's discharge limits (default: its charge limits).
    round_trip_efficiency : float, default 0.9
        Share of the energy charged that can be discharged back (0 < x <= 1). All
        losses are put on discharge: discharging ``x`` kWh at the meter takes
        ``x / round_trip_efficiency`` kWh from the battery.
    degradation_cost_per_kwh : float, default 0.0
        Battery wear cost per kWh discharged.
    """

    id: str
    evse: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy_kwh: float | None = None
    battery_capacity_kwh: float | None = None
    soc_now_pct: float | None = None
    soc_target_pct: float | None = None
    max_current_a: float | None = None
    min_current_a: float | None = None
    max_power_kw: float | None = None
    min_power_kw: float | None = None
    phases: int | None = None
    priority: float = 1.0
    transaction_id: str | int | None = None
    v2g: bool = False
    soc_min_pct: float | None = None
    max_discharge_current_a: float | None = None
    max_discharge_power_kw: float | None = None
    round_trip_efficiency: float = 0.9
    degradation_cost_per_kwh: float = 0.0

    def requested_energy_kwh(self) -> float:
        """Energy to deliver by departure, in kWh (assumes validated input)."""
        candidates = []
        if self.energy_kwh is not None:
            candidates.append(float(self.energy_kwh))
        if self.battery_capacity_kwh is not None and self.soc_now_pct is not None:
            cap = float(self.battery_capacity_kwh)
            now = float(self.soc_now_pct)
            candidates.append(max(0.0, (100.0 - now) / 100.0 * cap))
            if self.soc_target_pct is not None:
                candidates.append(max(0.0, (float(self.soc_target_pct) - now) / 100.0 * cap))
        return min(candidates) if candidates else 0.0

    def reserve_depth_kwh(self) -> float:
        """Energy that may be taken below the arrival state of charge by V2G, in kWh."""
        if (
            self.soc_min_pct is None
            or self.battery_capacity_kwh is None
            or self.soc_now_pct is None
        ):
            return 0.0
        depth = (float(self.soc_now_pct) - float(self.soc_min_pct)) / 100.0
        return max(0.0, depth * float(self.battery_capacity_kwh))


@dataclass(frozen=True, eq=False)
class Tariff:
    """Energy prices.

    Parameters
    ----------
    import_price_per_kwh : float or pandas.Series
        Price of energy drawn from the grid (currency per kWh); may be negative.
    export_price_per_kwh : float or pandas.Series, optional
        Price paid for energy fed into the grid (default: exporting earns nothing).
    demand_charge_per_kw : float, default 0.0
        Price per kW of the highest mean site import of a slot over the horizon.
    peak_already_kw : float, default 0.0
        Peak import already reached this billing period: only import above it costs
        demand charge.
    currency : str, default "EUR"
        Label only.
    """

    import_price_per_kwh: ScalarOrSeries = 0.0
    export_price_per_kwh: ScalarOrSeries | None = None
    demand_charge_per_kw: float = 0.0
    peak_already_kw: float = 0.0
    currency: str = "EUR"


@dataclass(frozen=True)
class V2GBid:
    """An offer to pay for energy discharged from EVs (V2G) in a time window.

    Parameters
    ----------
    id : str
        Unique bid id.
    start, end : pandas.Timestamp
        Window of the bid (tz-aware).
    price_per_kwh : float
        Paid per kWh discharged within the window, up to ``max_discharge_kw``.
    max_discharge_kw : float
        Most discharge power the bid pays for, in kW (site total over its sessions).
    sessions : tuple of str, optional
        Sessions the bid applies to (default: every session with ``v2g=True``).
    committed_kw : float, default 0.0
        Flexibility committed to the buyer: discharge below this within the window
        costs ``penalty_per_kwh`` per kWh short.
    penalty_per_kwh : float, default 0.0
        Penalty for each kWh of committed discharge not delivered.
    """

    id: str
    start: pd.Timestamp
    end: pd.Timestamp
    price_per_kwh: float
    max_discharge_kw: float
    sessions: tuple[str, ...] | None = None
    committed_kw: float = 0.0
    penalty_per_kwh: float = 0.0


@dataclass(frozen=True, eq=False)
class Forecast:
    """On-site generation and inflexible load at the grid connection (root node).

    Both are treated as balanced over the three phases. Within a slot the planner
    assumes the highest base load and the lowest PV of that slot.

    Parameters
    ----------
    pv_kw : float or pandas.Series, optional
        PV generation in kW (>= 0).
    base_load_kw : float or pandas.Series, optional
        Inflexible building load in kW (>= 0).
    """

    pv_kw: ScalarOrSeries | None = None
    base_load_kw: ScalarOrSeries | None = None
