"""The time axis of a plan and the alignment of pandas step series onto it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TimeGrid", "to_timedelta", "series_coverage", "align_series"]


def to_timedelta(value: str | int | float | pd.Timedelta) -> pd.Timedelta:
    """Parse a duration: a pandas offset string ("15min", "24h"), seconds, or a Timedelta.

    A string must carry its unit: pandas would read "900" as 900 nanoseconds, where a
    number here means seconds, so a bare number in a string raises ``ValueError``, as
    do NaN, inf and NaT.
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        out = pd.Timedelta(seconds=float(value)) if np.isfinite(value) else pd.NaT
    else:
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                pass
            else:
                raise ValueError(f"the duration {value!r} has no unit (write e.g. '15min')")
        out = pd.Timedelta(value)
    if out is pd.NaT:
        raise ValueError(f"the duration {value!r} is not a time span")
    return out


@dataclass(frozen=True)
class TimeGrid:
    """A grid of ``n_slots`` slots of ``step_s`` seconds from a tz-aware ``start``.

    Parameters
    ----------
    start : pandas.Timestamp
        Start of the first slot (tz-aware).
    step_s : int
        Slot length in seconds.
    n_slots : int
        Number of slots.
    """

    start: pd.Timestamp
    step_s: int
    n_slots: int

    @property
    def end(self) -> pd.Timestamp:
        """End of the last slot."""
        return self.start + pd.Timedelta(seconds=self.step_s * self.n_slots)

    @property
    def step_h(self) -> float:
        """Slot length in hours."""
        return self.step_s / 3600.0

    @property
    def index(self) -> pd.DatetimeIndex:
        """Slot start times, in the time zone of ``start``."""
        return pd.date_range(
            self.start, periods=self.n_slots, freq=pd.Timedelta(seconds=self.step_s)
        )

    def edges_ns(self) -> np.ndarray:
        """Slot boundaries as int64 nanoseconds since the epoch (UTC), length ``n_slots + 1``."""
        return self.start.value + np.arange(self.n_slots + 1, dtype=np.int64) * (
            self.step_s * 1_000_000_000
        )

    def fraction_present(self, arrival: pd.Timestamp, departure: pd.Timestamp) -> np.ndarray:
        """Fraction of each slot inside ``[arrival, departure)``, in [0, 1]."""
        edges = self.edges_ns().astype(np.float64)
        lo = np.maximum(edges[:-1], float(arrival.value))
        hi = np.minimum(edges[1:], float(departure.value))
        return np.clip((hi - lo) / (self.step_s * 1e9), 0.0, 1.0)


def _step_bounds(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Start times (ns) of each value and the end (ns) of the last one."""
    t = series.index.asi8 if series.index.unit == "ns" else series.index.as_unit("ns").asi8
    if len(t) < 2:
        return t, np.array([], dtype=np.int64)
    last = t[-1] + (t[-1] - t[-2])
    return t, np.array([last], dtype=np.int64)


def series_coverage(series: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Interval ``[first, end)`` a step series gives values for.

    The last value holds for one more spacing of the index. A series with fewer
    than two points cannot state its spacing and covers nothing (use a scalar for a
    constant value).
    """
    t, last = _step_bounds(series)
    if len(last) == 0:
        return None
    tz = series.index.tz
    return pd.Timestamp(t[0], tz="UTC").tz_convert(tz), pd.Timestamp(last[0], tz="UTC").tz_convert(
        tz
    )


def align_series(series: pd.Series, grid: TimeGrid, how: str) -> np.ndarray:
    """Aggregate a step series onto the slots of ``grid``.

    Parameters
    ----------
    series : pandas.Series
        Values indexed by increasing tz-aware time stamps; each holds until the next.
        Must cover the grid (see :func:`series_coverage`); the caller validates that.
    grid : TimeGrid
        The slots.
    how : {"min", "max", "mean"}
        ``"min"``/``"max"``: the extreme value in force during the slot (for limits,
        use the conservative one); ``"mean"``: the time-weighted mean (for prices).

    Returns
    -------
    numpy.ndarray
        One float64 value per slot.
    """
    t, _ = _step_bounds(series)
    values = np.asarray(series.to_numpy(), dtype=np.float64)
    edges = grid.edges_ns()
    inside = t[(t > edges[0]) & (t < edges[-1])]
    cuts = np.union1d(edges, inside)
    seg_start = cuts[:-1]
    seg_len = np.diff(cuts).astype(np.float64)
    seg_value = values[np.searchsorted(t, seg_start, side="right") - 1]
    seg_slot = np.searchsorted(edges, seg_start, side="right") - 1
    n = grid.n_slots
    if how == "mean":
        num = np.bincount(seg_slot, weights=seg_value * seg_len, minlength=n)
        den = np.bincount(seg_slot, weights=seg_len, minlength=n)
        return num / den
    out = np.full(n, np.inf if how == "min" else -np.inf)
    if how == "min":
        np.minimum.at(out, seg_slot, seg_value)
    elif how == "max":
        np.maximum.at(out, seg_slot, seg_value)
    else:
        raise ValueError(f"how must be 'min', 'max' or 'mean'. Got {how!r} instead.")
    return out
