"""JSON scenario files and the chargeplan command (docs/how-to/json-scenarios-and-cli.md)."""
# requires: jsonschema

# --8<-- [start:write]
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

import chargeplan as cp
from chargeplan.scenario import Scenario, load_scenario, save_scenario

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
scenario = Scenario(
    site=cp.Site(nodes=[cp.Node("grid", limit_a=40)],
                 evses=[cp.Evse("cp1", parent="grid", max_current_a=32),
                        cp.Evse("cp2", parent="grid", max_current_a=32)]),
    sessions=[cp.Session("s1", evse="cp1", arrival=t0, departure=t0 + pd.Timedelta("6h"),
                         energy_kwh=30),
              cp.Session("s2", evse="cp2", arrival=t0, departure=t0 + pd.Timedelta("3h"),
                         energy_kwh=12)],
    start=t0, horizon="6h", step="15min",
    tariff=cp.Tariff(import_price_per_kwh=pd.Series(
        [0.3, 0.2, 0.1, 0.1, 0.2, 0.3], index=pd.date_range(t0, periods=6, freq="1h"))),
    description="two EVs behind a 40 A connection",
)
save_scenario(scenario, "depot.json")
print(json.dumps(json.loads(Path("depot.json").read_text())["sessions"][0], indent=2))
# --8<-- [end:write]

# --8<-- [start:read]
again = load_scenario("depot.json")  # JSON Schema, then chargeplan.validate
plan = again.optimize()  # the scenario's own settings (method, horizon, ...)
requests = again.to_ocpp(plan, "2.0.1")  # with the scenario's station capabilities
print(plan.kpis["delivered_kwh"], [r.station_id for r in requests])
# --8<-- [end:read]
assert plan.kpis["share_sessions_served"] == 1.0


def chargeplan(*args):
    """Run the `chargeplan` command (python -m chargeplan.cli when not installed)."""
    done = subprocess.run([sys.executable, "-m", "chargeplan.cli", *args],
                          capture_output=True, text=True)
    print(f"$ chargeplan {' '.join(args)}  -> exit {done.returncode}")
    print(done.stdout + done.stderr)
    return done.returncode


# --8<-- [start:cli]
assert chargeplan("plan", "depot.json", "--ocpp", "2.0.1", "-o", "profiles.json",
                  "--json-plan", "plan.json") == 0
assert chargeplan("check", "plan.json") == 0

bad = json.loads(Path("depot.json").read_text())
bad["sessions"][1]["energy_kwh"] = -12
Path("bad.json").write_text(json.dumps(bad))
assert chargeplan("validate", "bad.json") == 2  # every problem, with its JSON path
# --8<-- [end:cli]
