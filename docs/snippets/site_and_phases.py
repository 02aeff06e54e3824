"""Site tree and phases (docs/concepts/site-and-phases.md)."""
# ruff: noqa: E402  (imports stay next to the part of the page that uses them)

# --8<-- [start:rotation]
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(
    nodes=[cp.Node("grid", limit_a=100),
           cp.Node("feeder", parent="grid", limit_a=(32, 32, 32))],
    evses=[cp.Evse("a", parent="feeder", max_current_a=32, phase_rotation="RST"),
           cp.Evse("b", parent="feeder", max_current_a=32, phase_rotation="STR"),
           cp.Evse("c", parent="feeder", max_current_a=32, phase_rotation="TRS")],
)
one_phase_evs = [  # three 1-phase EVs, 16 A each, one per EVSE
    cp.Session(f"s-{e}", evse=e, arrival=t0, departure=t0 + pd.Timedelta("2h"),
               energy_kwh=5, phases=1, max_current_a=16)
    for e in "abc"
]
plan = cp.optimize(site, one_phase_evs, start=t0, horizon="2h", step="15min")
# the rotations put the three EVs on L1, L2 and L3: the feeder is balanced
print(plan.node_current_a["feeder"].iloc[0])
# --8<-- [end:rotation]
first = plan.node_current_a["feeder"].iloc[0]
assert first["L1"] == first["L2"] == first["L3"] == 16.0

# --8<-- [start:line-to-line]
import cmath

us_site = cp.Site(  # a US 208 V site: 120 V line-to-neutral, EVSEs across two lines
    nodes=[cp.Node("transformer", limit_a=40)],
    evses=[cp.Evse("ab", parent="transformer", max_current_a=32, phases=1, phase="L1-L2"),
           cp.Evse("bc", parent="transformer", max_current_a=32, phases=1, phase="L2-L3"),
           cp.Evse("ca", parent="transformer", max_current_a=32, phases=1, phase="L3-L1")],
    voltage_v=120,
)
evs = [cp.Session(f"s-{e}", evse=e, arrival=t0, departure=t0 + pd.Timedelta("4h"),
                  energy_kwh=40) for e in ("ab", "bc", "ca")]
exact = cp.optimize(us_site, evs, start=t0, horizon="4h", step="15min")
safe = cp.optimize(cp.Site(nodes=us_site.nodes, evses=us_site.evses, voltage_v=120,
                           phasor_limits=False),
                   evs, start=t0, horizon="4h", step="15min")
print("EVSE currents, exact phasor limits:  ", exact.current_a.iloc[0].tolist())
print("EVSE currents, sum of magnitudes:    ", safe.current_a.iloc[0].tolist())
i_ab, i_bc, i_ca = exact.current_a.iloc[0]  # in phase with V_AB, V_BC, V_CA
deg = cmath.pi / 180
line_a = abs(i_ab * cmath.exp(30j * deg) - i_ca * cmath.exp(150j * deg))
print(f"line L1 current |I_AB - I_CA| = {line_a:.1f} A (limit 40 A)")
print(f"delivered: {exact.kpis['delivered_kwh']:.1f} kWh (exact) vs "
      f"{safe.kpis['delivered_kwh']:.1f} kWh (sum of magnitudes)")
# --8<-- [end:line-to-line]
assert exact.kpis["delivered_kwh"] > safe.kpis["delivered_kwh"]
assert line_a <= 40 + 1e-6
