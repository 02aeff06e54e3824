"""The arrays the solvers see: phasors, coefficients and grid rounding agree."""

import numpy as np
import pandas as pd
import pytest

import chargeplan as cp
from chargeplan.problem import (
    LINE_ANGLES,
    _ceil_grid,
    _floor_grid,
    build_problem,
    ceil_to_grid,
    floor_to_grid,
    line_phasors,
)

T0 = pd.Timestamp("2024-03-04 08:00", tz="UTC")
H = pd.Timedelta("1h")


def _every_wiring(voltage_v):
    """One EVSE (and session) per kind of wiring, EV phases and voltage."""
    evses, phases = [], []
    for rot in ("RST", "RTS", "SRT", "STR", "TRS", "TSR"):
        for ev in (None, 1, 2):
            evses.append(cp.Evse(f"{rot}{ev}", "g", max_current_a=16, phase_rotation=rot))
            phases.append(ev)
    for wiring in ("L1", "L2", "L3", "L1-L2", "L2-L3", "L3-L1"):
        evses.append(cp.Evse(wiring, "g", max_current_a=16, phases=1, phase=wiring))
        phases.append(None)
    evses.append(cp.Evse("us240", "g", max_current_a=32, phases=1, phase="L1-L2", voltage_v=240))
    phases.append(None)
    evses.append(cp.Evse("dc", "g", max_power_kw=50, dc=True))
    phases.append(None)
    site = cp.Site(nodes=[cp.Node("g", limit_a=400)], evses=evses, voltage_v=voltage_v)
    sessions = [
        cp.Session(f"s{i}", e.id, T0, T0 + 2 * H, energy_kwh=5.0, phases=ph)
        for i, (e, ph) in enumerate(zip(evses, phases, strict=True))
    ]
    return site, sessions


@pytest.mark.parametrize("voltage_v", [230.0, 120.0])
def test_phasors_match_line_phasors_and_the_linear_coefficients(voltage_v):
    site, sessions = _every_wiring(voltage_v)
    grid = cp.validate(site, sessions, start=T0, horizon="2h", step="15min")
    problem = build_problem(site, sessions, grid)
    unit = np.exp(1j * LINE_ANGLES)
    for s, sess in enumerate(sessions):
        evse = next(e for e in site.evses if e.id == sess.evse)
        want = line_phasors(evse, sess.phases, voltage_v)
        assert np.array_equal(problem.acoef[s], want), evse.id
        # the linear rows are the magnitudes (the sum-of-magnitudes bound of the issue)
        np.testing.assert_allclose(np.abs(want), problem.coef[s, :3], rtol=1e-12, atol=0)
        # and the phasors carry the session's power: sum_l Re(conj(V_l) I_l) = 1 kW per kW,
        # except on a line-to-line EVSE whose own voltage is not sqrt(3) x the site's
        kw = (np.conj(unit) * want).real.sum() * voltage_v / 1000.0
        expected = np.sqrt(3.0) * voltage_v / 240.0 if evse.id == "us240" else 1.0
        assert kw == pytest.approx(expected, rel=1e-12), evse.id


def test_scalar_grid_rounding_is_numpys():
    rng = np.random.default_rng(5)
    k = rng.integers(0, 5000, 4000)
    x = np.concatenate(
        [
            (k - 1e-6) * 0.1 + rng.integers(-3, 4, k.size) * np.spacing(k * 0.1 + 1.0),
            (k + 1e-6) * 0.1 + rng.integers(-3, 4, k.size) * np.spacing(k * 0.1 + 1.0),
            k * 0.1,
            rng.uniform(0.0, 500.0, k.size),
        ]
    )
    assert np.array_equal([_floor_grid(v) for v in x], floor_to_grid(x))
    assert np.array_equal([_ceil_grid(v) for v in x], ceil_to_grid(x))
