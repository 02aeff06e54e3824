"""Real data sets vendored with chargeplan, with loaders.

All loaders return pandas objects with tz-aware timestamps and units in the
column or series names.

- :func:`load_acn_sessions`: ACN-Data EV charging sessions (Caltech site,
  2019-2021), CC BY 4.0.
- :func:`load_nl_day_ahead_prices`: Dutch day-ahead prices (2022-2024) in
  EUR/kWh, optionally shifted onto another period.
- :func:`load_pv_kw_per_kwp`: hourly PV profile (Netherlands, 2019) in kW
  per kWp installed.
- :func:`load_ev_specs`: EV model specifications.
- :func:`caltech_site` and :func:`acn_to_sessions`: a Caltech-like site model and
  ACN sessions as planner inputs.

Attribution and licences of the data files are in ``data/README.md`` next
to this module; keep them with any copy of the data.
"""

from chargeplan.datasets._loaders import (
    ACN_TIMEZONE,
    TimestampLike,
    load_acn_sessions,
    load_ev_specs,
    load_nl_day_ahead_prices,
    load_pv_kw_per_kwp,
)
from chargeplan.datasets.caltech import CALTECH_EVSES, acn_to_sessions, caltech_site

__all__ = [
    "CALTECH_EVSES",
    "acn_to_sessions",
    "caltech_site",
    "ACN_TIMEZONE",
    "TimestampLike",
    "load_acn_sessions",
    "load_ev_specs",
    "load_nl_day_ahead_prices",
    "load_pv_kw_per_kwp",
]
