"""Shared benchmark helpers: the scenario registry, timers and machine info.

Scenarios are deterministic (seeded ``numpy.random.Generator``) and use only the public
model classes of :mod:`chargeplan`, so they double as realistic inputs for other
benchmarks and for profiling.

The site is a 3-level tree::

    grid (root) -> transformers -> chargers (stations) -> EVSEs

mixing 3-phase AC EVSEs with every OCPP ``phase_rotation``, 1-phase AC EVSEs on each
phase (and a few wired line-to-line), and DC chargers. Every EVSE gets one session;
arrivals and departures are spread over the 24 h horizon (some EVs are already plugged
in at the start, some leave after the end), and energy requests are drawn so that some
cannot be met even on an empty site.

Limits (per phase, in A) are sized from what the sessions below a node ask for. The
*energy flow* of a node is the balanced per-phase current that would deliver all the
energy requested below it in 24 h; the *peak concurrent demand* is the largest per-phase
current the EVs present in one slot could draw together:

* ``congested``: root = 1.1 x energy flow, transformer = 1.4 x energy flow (so the
  transformers are oversubscribed 1.27x against the root), charger = peak concurrent
  demand / 1.33 (never below its largest EVSE). As arrivals cluster in the morning, the
  root is at its limit in more than half of the slots and some energy cannot be
  delivered that an uncongested site would deliver (compare with ``loose``);
* ``loose``: root = 1.05 x the site's peak concurrent demand, no other node limit;
  nothing binds, unmet energy is only what sessions cannot take on their own (too
  short a stay, or a departure after the horizon).
"""

from __future__ import annotations

import datetime as _dt
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import chargeplan as cp

START = pd.Timestamp("2024-03-05 00:00", tz="Europe/Amsterdam")
HORIZON = "24h"
STEP = "15min"
N_SLOTS = 96
VOLTAGE_V = 230.0

_ROTATIONS = ("RST", "RTS", "SRT", "STR", "TRS", "TSR")
_RST = {"R": 0, "S": 1, "T": 2}
_PH = {"L1": 0, "L2": 1, "L3": 2}


@dataclass
class Scenario:
    """Inputs of one benchmark case, ready for ``chargeplan.optimize``."""

    name: str
    n_sessions: int
    site: cp.Site
    sessions: list[cp.Session]
    tariff: cp.Tariff
    start: pd.Timestamp = START
    horizon: str = HORIZON
    step: str = STEP
    meta: dict[str, Any] = field(default_factory=dict)

    def optimize_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``optimize`` besides site and sessions."""
        return {
            "start": self.start,
            "horizon": self.horizon,
            "step": self.step,
            "tariff": self.tariff,
        }


def _draw_evses(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """EVSE specs grouped onto chargers: (kind, parameters, charger index)."""
    specs: list[dict[str, Any]] = []
    charger = 0
    while len(specs) < n:
        kind = rng.choice(["ac3", "ac1", "dc"], p=[0.6, 0.25, 0.15])
        if kind == "dc":
            group = 1
        else:
            group = int(rng.choice([1, 2, 2, 4]))
        group = min(group, n - len(specs))
        for _ in range(group):
            if kind == "ac3":
                spec = {
                    "kind": "ac3",
                    "max_current_a": float(rng.choice([16.0, 32.0])),
                    "phase_rotation": str(rng.choice(_ROTATIONS)),
                }
            elif kind == "ac1":
                phase = str(
                    rng.choice(
                        ["L1", "L2", "L3", "L1-L2", "L2-L3", "L3-L1"],
                        p=[0.3, 0.3, 0.3, 0.04, 0.03, 0.03],
                    )
                )
                spec = {
                    "kind": "ac1",
                    "max_current_a": float(rng.choice([16.0, 32.0])),
                    "phase": phase,
                }
            else:
                spec = {"kind": "dc", "max_power_kw": float(rng.choice([50.0, 50.0, 150.0]))}
            spec["charger"] = charger
            specs.append(spec)
        charger += 1
    return specs


def _draw_session(i: int, spec: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Session parameters (plain values) for the EVSE described by ``spec``."""
    u = rng.random()
    if u < 0.15:  # already plugged in
        arr_h = -rng.uniform(0.0, 4.0)
    elif u < 0.65:  # morning peak
        arr_h = rng.normal(8.0, 1.5)
    else:
        arr_h = rng.uniform(0.0, 20.0)
    arr_h = float(np.clip(arr_h, -4.0, 22.0))
    dur_h = rng.uniform(0.5, 1.5) if spec["kind"] == "dc" else rng.uniform(2.0, 11.0)
    arr_min = round(arr_h * 60.0)
    dep_min = arr_min + max(15, round(dur_h * 60.0))
    out: dict[str, Any] = {
        "id": f"s{i:05d}",
        "arrival": START + pd.Timedelta(minutes=arr_min),
        "departure": START + pd.Timedelta(minutes=dep_min),
        "priority": 2.0 if rng.random() < 0.1 else 1.0,
    }
    if rng.random() < 0.3:  # described by its battery
        cap = float(rng.choice([40.0, 60.0, 77.0, 100.0]))
        now = float(rng.uniform(20.0, 70.0))
        out.update(
            battery_capacity_kwh=cap,
            soc_now_pct=round(now, 1),
            soc_target_pct=float(rng.choice([80.0, 90.0, 100.0])),
        )
    elif spec["kind"] == "dc":
        out["energy_kwh"] = round(float(rng.uniform(15.0, 50.0)), 2)
    else:
        out["energy_kwh"] = round(float(rng.uniform(5.0, 40.0)), 2)
    if spec["kind"] == "dc":
        out["max_power_kw"] = float(rng.choice([50.0, 100.0, 150.0]))
    else:
        if rng.random() < 0.2:
            out["max_current_a"] = 16.0
        if spec["kind"] == "ac3" and rng.random() < 0.15:
            out["phases"] = 1  # 1-phase EV on a 3-phase EVSE: the rotation picks the phase
    return out


def _phase_peak_a(spec: dict[str, Any], sess: dict[str, Any]) -> np.ndarray:
    """Largest current (A) the session can put on site L1, L2, L3."""
    w = np.zeros(3)
    if spec["kind"] == "dc":
        kw = min(spec["max_power_kw"], sess["max_power_kw"])
        w[:] = kw * 1000.0 / (3.0 * VOLTAGE_V)
        return w
    amps = min(spec["max_current_a"], sess.get("max_current_a", np.inf))
    if spec["kind"] == "ac3":
        for letter in spec["phase_rotation"][: sess.get("phases", 3)]:
            w[_RST[letter]] = amps
    else:
        for ph in spec["phase"].split("-"):
            w[_PH[ph]] = amps
    return w


def build_scenario(kind: str, n: int, seed: int = 0) -> Scenario:
    """Build the ``congested`` or ``loose`` scenario with ``n`` EVSEs and ``n`` sessions.

    Parameters
    ----------
    kind : {"congested", "loose"}
    n : int
        Number of EVSEs and of sessions.
    seed : int
        Seed of the random generator (the scenario is a pure function of its arguments).
    """
    if kind not in ("congested", "loose"):
        raise ValueError(f"kind must be 'congested' or 'loose'. Got {kind!r} instead.")
    rng = np.random.default_rng([seed, n])
    specs = _draw_evses(n, rng)
    sess_specs = [_draw_session(i, spec, rng) for i, spec in enumerate(specs)]
    n_chargers = specs[-1]["charger"] + 1
    n_tx = int(np.clip(round(math.sqrt(n) / 4.0), 2, 8))
    charger_tx = rng.integers(0, n_tx, size=n_chargers)

    sessions = [cp.Session(evse=f"e{i:05d}", **sess) for i, sess in enumerate(sess_specs)]
    req_kwh = np.array([x.requested_energy_kwh() for x in sessions])

    # peak concurrent per-phase demand and energy requested below each charger
    edges = START.value + np.arange(N_SLOTS + 1, dtype=np.int64) * 900 * 10**9
    dem_charger = np.zeros((n_chargers, 3, N_SLOTS))
    kwh_charger = np.zeros(n_chargers)
    max_evse_a = np.zeros(n_chargers)
    for spec, sess, kwh in zip(specs, sess_specs, req_kwh, strict=True):
        lo = np.maximum(edges[:-1], sess["arrival"].value)
        hi = np.minimum(edges[1:], sess["departure"].value)
        peak_a = _phase_peak_a(spec, sess)
        c = spec["charger"]
        dem_charger[c] += peak_a[:, None] * (hi > lo)[None, :]
        kwh_charger[c] += kwh
        max_evse_a[c] = max(max_evse_a[c], float(peak_a.max()))
    peak_root = float(dem_charger.sum(axis=0).max())
    kwh_tx = np.bincount(charger_tx, weights=kwh_charger, minlength=n_tx)

    def flow_a(kwh: float) -> float:
        """Per-phase current (A) that delivers ``kwh`` in 24 h, balanced over phases."""
        return kwh / 24.0 * 1000.0 / (3.0 * VOLTAGE_V)

    if kind == "congested":
        nodes = [cp.Node("grid", limit_a=float(math.ceil(1.1 * flow_a(req_kwh.sum()))))]
        nodes += [
            cp.Node(f"tx{k}", parent="grid", limit_a=float(math.ceil(1.4 * flow_a(kwh_tx[k]))))
            for k in range(n_tx)
        ]
        nodes += [
            cp.Node(
                f"ch{c:05d}",
                parent=f"tx{charger_tx[c]}",
                station_id=f"ch{c:05d}",
                limit_a=float(math.ceil(max(dem_charger[c].max() / 1.33, max_evse_a[c]))),
            )
            for c in range(n_chargers)
        ]
    else:
        nodes = [cp.Node("grid", limit_a=float(math.ceil(1.05 * peak_root)))]
        nodes += [cp.Node(f"tx{k}", parent="grid") for k in range(n_tx)]
        nodes += [
            cp.Node(f"ch{c:05d}", parent=f"tx{charger_tx[c]}", station_id=f"ch{c:05d}")
            for c in range(n_chargers)
        ]

    evses = []
    connector: dict[int, int] = {}
    for i, spec in enumerate(specs):
        c = spec["charger"]
        connector[c] = connector.get(c, 0) + 1
        common = {
            "id": f"e{i:05d}",
            "parent": f"ch{c:05d}",
            "station_id": f"ch{c:05d}",
            "connector_id": connector[c],
        }
        if spec["kind"] == "ac3":
            evses.append(
                cp.Evse(
                    **common,
                    max_current_a=spec["max_current_a"],
                    phases=3,
                    phase_rotation=spec["phase_rotation"],
                )
            )
        elif spec["kind"] == "ac1":
            evses.append(
                cp.Evse(
                    **common, max_current_a=spec["max_current_a"], phases=1, phase=spec["phase"]
                )
            )
        else:
            evses.append(cp.Evse(**common, max_power_kw=spec["max_power_kw"], dc=True))
    # time-of-use price with noise, hourly, covering the horizon
    hours = np.arange(24)
    tou = np.where(hours < 6, 0.12, np.where((hours >= 17) & (hours < 21), 0.35, 0.22))
    price = np.round(tou + rng.normal(0.0, 0.02, size=24), 4)
    tariff = cp.Tariff(
        import_price_per_kwh=pd.Series(price, index=pd.date_range(START, periods=24, freq="h"))
    )

    total_evse_a = float(
        sum(_phase_peak_a(s, x).max() for s, x in zip(specs, sess_specs, strict=True))
    )
    root_limit = nodes[0].limit_a
    meta = {
        "kind": kind,
        "seed": seed,
        "n_evses": n,
        "n_chargers": n_chargers,
        "n_transformers": n_tx,
        "n_nodes": len(nodes),
        "evse_mix": {k: sum(s["kind"] == k for s in specs) for k in ("ac3", "ac1", "dc")},
        "root_limit_a": root_limit,
        "peak_concurrent_demand_a": round(peak_root, 1),
        "requested_kwh": round(float(req_kwh.sum()), 3),
        "total_evse_capacity_over_root_limit": round(total_evse_a / root_limit, 2),
    }
    return Scenario(
        name=kind,
        n_sessions=n,
        site=cp.Site(nodes=nodes, evses=evses, voltage_v=VOLTAGE_V),
        sessions=sessions,
        tariff=tariff,
        meta=meta,
    )


#: Scenario registry: name -> builder(n, seed).
SCENARIOS: dict[str, Callable[[int, int], Scenario]] = {
    "congested": lambda n, seed=0: build_scenario("congested", n, seed),
    "loose": lambda n, seed=0: build_scenario("loose", n, seed),
}


# -- timing -------------------------------------------------------------------------------
def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` back-to-back calls of ``fn`` after ``warmup`` calls.

    As in :mod:`timeit`, the garbage collector is collected once before and disabled
    during the timed calls, so a collection triggered by earlier work is not billed to
    the code measured. Calls run back to back (warm caches, warm allocator).
    """
    for _ in range(warmup):
        fn()
    out = []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    return out


def summarize(times_s: list[float]) -> dict[str, float]:
    """Median, p10, p90, min (in ms) and count of a list of durations in seconds."""
    ms = np.asarray(times_s) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
        "min_ms": float(ms.min()),
        "n": len(times_s),
    }


def numpy_pass(n: int, n_slots: int = N_SLOTS) -> float:
    """One numpy pass over an n x n_slots float64 array: allocate, fill, reduce."""
    a = np.empty((n, n_slots))
    a.fill(1.0)
    return float(a.sum())


def machine_info() -> dict[str, Any]:
    """Platform, CPU model, core count and library versions."""
    import numba

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "numba": numba.__version__,
        "chargeplan": cp.__version__,
    }


def source_fingerprint() -> dict[str, Any]:
    """Hashes of the library source measured (the code changes faster than commits)."""
    import hashlib
    import subprocess
    from pathlib import Path

    pkg = Path(cp.__file__).resolve().parent
    whole = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        whole.update(str(f.relative_to(pkg)).encode())
        whole.update(f.read_bytes())
    greedy = pkg / "solvers" / "greedy.py"
    out: dict[str, Any] = {
        "package_dir": str(pkg),
        "sha256_all_py": whole.hexdigest()[:16],
        "sha256_solvers_greedy_py": (
            hashlib.sha256(greedy.read_bytes()).hexdigest()[:16] if greedy.exists() else None
        ),
    }
    try:
        head = subprocess.run(
            ["git", "-C", str(pkg), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(pkg), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
        )
        out["git_head"] = head.stdout.strip() or None
        out["git_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return out


def median(xs: list[float]) -> float:
    """Median of a list."""
    return float(statistics.median(xs))
