"""The independent checker (docs/concepts/checker.md)."""

# --8<-- [start:check]
import pandas as pd

import chargeplan as cp
from chargeplan.baselines import uncontrolled

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(nodes=[cp.Node("grid", limit_a=40)],
               evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=32) for i in (1, 2)])
evs = [cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0, departure=t0 + pd.Timedelta("4h"),
                  energy_kwh=20) for i in (1, 2)]

plan = cp.optimize(site, evs, start=t0, horizon="4h", step="15min")
print(plan.violations())  # [] : optimize() never returns a plan that breaks a limit

# The "uncontrolled" baseline charges at full power and ignores node limits; its plan
# is returned unchecked so that simulations can count what it breaks.
dumb = uncontrolled(site, evs, start=t0, horizon="4h", step="15min")
for v in dumb.violations()[:3]:
    print(v)  # kind, where, slot, planned value and limit
try:
    dumb.check()
except cp.LimitViolationError as err:
    print(f"{len(err.violations)} violations, e.g. {err.violations[0].kind!r}")
# --8<-- [end:check]
    assert err.violations[0].kind == "node_current"
else:
    raise AssertionError("expected a LimitViolationError")
