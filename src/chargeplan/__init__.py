"""chargeplan: verified EV charging plans for charge point operators, as OCPP profiles.

The public API is listed in ``__all__``; everything else is internal.
"""

from __future__ import annotations

from .api import optimize
from .exceptions import (
    ChargeplanError,
    ChargeplanWarning,
    InputError,
    LimitViolationError,
    OcppExportWarning,
    SolverError,
    SolverFallbackWarning,
)
from .model import PHASES, Evse, Forecast, Node, Session, Site, Tariff, V2GBid
from .plan import Plan
from .replan import Replanner
from .simulate import SimSession, SimulationResult, compare, simulate
from .validation import validate
from .warmup import warm_up

__version__ = "0.1.0"

__all__ = [
    "optimize",
    "validate",
    "warm_up",
    "simulate",
    "compare",
    "SimSession",
    "SimulationResult",
    "Plan",
    "Replanner",
    "Site",
    "Node",
    "Evse",
    "Session",
    "Tariff",
    "Forecast",
    "V2GBid",
    "PHASES",
    "ChargeplanError",
    "InputError",
    "LimitViolationError",
    "SolverError",
    "ChargeplanWarning",
    "SolverFallbackWarning",
    "OcppExportWarning",
    "__version__",
]
