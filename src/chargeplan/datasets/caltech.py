"""A Caltech-like site model and ACN-Data sessions as chargeplan inputs.

The site follows the published description of the Caltech ACN (ACN-Sim's
``caltech_acn`` network; Lee, Li, Low, "ACN-Data", ACM e-Energy 2019): 54 Level-2
EVSEs at 208 V line-to-line on a 120 V wye secondary, wired across lines AB (26,
including two 8-EVSE pods limited to 80 A each), BC (14) and CA (14), behind a
transformer whose capacity in kW limits each secondary line to
``cap * 1000 / 3 / 120`` A.

Modelling choices (core model):

* Lines A, B, C are site phases L1, L2, L3; an AB EVSE is ``phase="L1-L2"``.
* A line-to-line EVSE loads both its lines; with ``Site.phasor_limits`` (the default)
  the secondary line currents are limited on their exact phasor sum (e.g.
  ``|I_AB - I_CA|`` on line A), as in ACN-Sim; with ``phasor_limits=False`` on the
  sum of magnitudes, which is safe but wastes capacity.
* The transformer's primary-side limit of the ACN-Sim model (``|I_3a - I_3c| / 4``
  against ``cap * 1000 / 3 / 277`` A) is not modelled: it is a limit on a difference
  of two secondary line currents, not on a node of the tree.
* Every EVSE is taken as 32 A max, 6 A min (the real site mixes AeroVironment and
  ClipperCreek units with discrete steps).
"""

from __future__ import annotations

import zlib

import pandas as pd

from ..model import Evse, Node, Session, Site
from ._loaders import _bad_argument

__all__ = ["caltech_site", "CALTECH_EVSES", "acn_to_sessions"]

_CC_POD = ["CA-322", "CA-493", "CA-496", "CA-320", "CA-495", "CA-321", "CA-323", "CA-494"]
_AV_POD = ["CA-324", "CA-325", "CA-326", "CA-327", "CA-489", "CA-490", "CA-491", "CA-492"]
_AB = [f"CA-{i}" for i in (308, 508, 303, 513, 310, 506, 316, 500, 318, 498)]
_BC = [f"CA-{i}" for i in (304, 512, 305, 511, 313, 503, 311, 505, 317, 499)]
_BC += ["CA-148", "CA-149", "CA-212", "CA-213"]
_CA = [f"CA-{i}" for i in (307, 509, 309, 507, 306, 510, 315, 501, 319, 497, 312, 504, 314, 502)]

#: EVSE ids of the Caltech ACN with their line-to-line wiring.
CALTECH_EVSES: dict[str, str] = {
    **{e: "L1-L2" for e in _AB + _CC_POD + _AV_POD},
    **{e: "L2-L3" for e in _BC},
    **{e: "L3-L1" for e in _CA},
}


def caltech_site(transformer_cap_kw: float = 150.0, *, max_current_a: float = 32.0) -> Site:
    """Build the Caltech ACN as a chargeplan :class:`~chargeplan.Site`.

    Parameters
    ----------
    transformer_cap_kw : float, default 150.0
        Transformer capacity in kW; each secondary line is limited to
        ``transformer_cap_kw * 1000 / 3 / 120`` A.
    max_current_a : float, default 32.0
        Maximum current of every EVSE.

    Returns
    -------
    Site
        Root ``"transformer"``, pods ``"cc-pod"`` and ``"av-pod"`` (80 A), 54 EVSEs.
    """
    line_a = transformer_cap_kw * 1000.0 / 3.0 / 120.0
    nodes = [
        Node("transformer", limit_a=line_a),
        Node("cc-pod", parent="transformer", limit_a=80.0),
        Node("av-pod", parent="transformer", limit_a=80.0),
    ]
    evses = []
    for evse_id, wiring in CALTECH_EVSES.items():
        parent = (
            "cc-pod" if evse_id in _CC_POD else "av-pod" if evse_id in _AV_POD else "transformer"
        )
        evses.append(
            Evse(evse_id, parent=parent, max_current_a=max_current_a, phases=1, phase=wiring)
        )
    return Site(nodes=nodes, evses=evses, voltage_v=120.0)


def acn_to_sessions(
    df: pd.DataFrame,
    site: Site | None = None,
    *,
    energy: str = "delivered",
    departure: str = "actual",
) -> list[Session]:
    """Turn rows of :func:`load_acn_sessions` into :class:`~chargeplan.Session` objects.

    Parameters
    ----------
    df : pandas.DataFrame
        ACN sessions (columns as returned by ``load_acn_sessions``).
    site : Site, optional
        Sessions at stations that are not EVSEs of this site are dropped
        (default: the Caltech site).
    energy : {"delivered", "requested"}, default "delivered"
        Energy to ask for: what the car actually took (``delivered_energy_kwh``, the
        EV's physical demand) or what the driver entered in the app (about twice as
        much on average, often more than the battery could take).
    departure : {"actual", "estimated"}, default "actual"
        Use the true departure or the driver's estimate.

    Returns
    -------
    list of Session
        In arrival order. A session whose window overlaps an earlier one on the same
        EVSE (a data glitch) starts at that one's departure; one left empty is dropped.
        ACN session ids are too long for OCPP, so ``transaction_id`` is a stable 31-bit
        integer derived from the session id (CRC-32).

    Raises
    ------
    InputError
        If ``energy`` or ``departure`` is not one of its choices (the problem's path
        names the argument).
    """
    if energy not in ("delivered", "requested"):
        raise _bad_argument(
            "energy", f"energy must be 'delivered' or 'requested'. Got {energy!r} instead.", energy
        )
    if departure not in ("actual", "estimated"):
        raise _bad_argument(
            "departure",
            f"departure must be 'actual' or 'estimated'. Got {departure!r} instead.",
            departure,
        )
    site = site if site is not None else caltech_site()
    known = {e.id for e in site.evses}
    col = "delivered_energy_kwh" if energy == "delivered" else "requested_energy_kwh"
    dep_col = "departure" if departure == "actual" else "estimated_departure"
    busy_until: dict[str, pd.Timestamp] = {}
    out = []
    for row in df.sort_values("arrival").itertuples(index=False):
        if row.station_id not in known:
            continue
        arr = pd.Timestamp(row.arrival)
        dep = pd.Timestamp(getattr(row, dep_col))
        arr = max(arr, busy_until.get(row.station_id, arr))
        if dep <= arr:
            continue
        busy_until[row.station_id] = dep
        sid = str(row.session_id)
        out.append(
            Session(
                sid,
                evse=row.station_id,
                arrival=arr,
                departure=dep,
                energy_kwh=float(getattr(row, col)),
                transaction_id=zlib.crc32(sid.encode()) & 0x7FFFFFFF,
            )
        )
    return out
