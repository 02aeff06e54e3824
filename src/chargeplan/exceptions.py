"""Errors and warnings raised by chargeplan.

Every error derives from :class:`ChargeplanError`, so a caller can catch the whole
library with one ``except``. Errors carry the data a caller needs to react, not
only a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChargeplanError",
    "InputError",
    "Problem",
    "LimitViolationError",
    "Violation",
    "SolverError",
    "ChargeplanWarning",
    "SolverFallbackWarning",
    "OcppExportWarning",
]


class ChargeplanError(Exception):
    """Base class of every error raised by chargeplan."""


@dataclass(frozen=True)
class Problem:
    """One problem found in the input.

    Parameters
    ----------
    path : str
        Where the problem is, e.g. ``"site.evses[2] (id='cp3').max_current_a"``.
    message : str
        What is wrong, in the form "The 'x' parameter of Y must be ... Got ... instead."
    value : Any
        The offending value (as given).
    """

    path: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InputError(ChargeplanError, ValueError):
    """The input was rejected; ``problems`` lists every problem found.

    Validation does not stop at the first problem: all problems are collected
    so one round trip shows everything that must be fixed. Nothing is mutated
    when input is rejected.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the input:\n{lines}")

    def __reduce__(self):
        return (type(self), (self.problems,), self.__dict__)

    @property
    def paths(self) -> list[str]:
        """Field paths of the problems, in the order found."""
        return [p.path for p in self.problems]


@dataclass(frozen=True)
class Violation:
    """One limit broken by a plan, as found by the independent checker.

    Parameters
    ----------
    kind : str
        The rule broken, e.g. ``"node_current"``, ``"evse_max"``, ``"min_current"``,
        ``"availability"``, ``"energy"``.
    where : str
        The node, EVSE or session concerned (and the phase when relevant).
    slot : int or None
        Index of the time slot, ``None`` for whole-horizon rules.
    value : float
        The planned quantity.
    limit : float
        The limit it was compared with.
    """

    kind: str
    where: str
    slot: int | None
    value: float
    limit: float

    def __str__(self) -> str:
        at = "" if self.slot is None else f" in slot {self.slot}"
        return f"{self.kind} at {self.where}{at}: {self.value:.6g} > {self.limit:.6g}"


class LimitViolationError(ChargeplanError):
    """A plan breaks at least one limit; it must never be sent to a station."""

    def __init__(self, violations: list[Violation]):
        self.violations = list(violations)
        shown = "\n".join(f"  - {v}" for v in self.violations[:20])
        more = len(self.violations) - 20
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"The plan violates {len(self.violations)} limit(s):\n{shown}{tail}")

    def __reduce__(self):
        return (type(self), (self.violations,), self.__dict__)


class SolverError(ChargeplanError, RuntimeError):
    """A solver failed to produce a plan (status carried in ``status``)."""

    def __init__(self, message: str, status: str = "error"):
        self.status = status
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (str(self), self.status), self.__dict__)


class ChargeplanWarning(UserWarning):
    """Base class of every warning issued by chargeplan."""


class SolverFallbackWarning(ChargeplanWarning):
    """The requested solver failed; the plan of another solver was returned."""


class OcppExportWarning(ChargeplanWarning):
    """An OCPP payload had to be adapted (e.g. periods merged, a field omitted)."""
