"""Plan many sites in parallel on Dask (docs/how-to/many-sites-dask.md)."""
# requires: distributed

# --8<-- [start:fleet]
import pandas as pd

import chargeplan as cp
from chargeplan.distributed import plan_many, summary_frame

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")


def depot(n_evses, grid_a):
    """Return the optimize() arguments of a depot: n AC chargers, one EV each."""
    site = cp.Site(nodes=[cp.Node("grid", limit_a=grid_a)],
                   evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=32)
                          for i in range(n_evses)])
    sessions = [cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0,
                           departure=t0 + pd.Timedelta(hours=4 + i % 5),
                           energy_kwh=10 + 3 * i) for i in range(n_evses)]
    return {"site": site, "sessions": sessions, "start": t0, "horizon": "12h",
            "step": "15min"}


scenarios = [depot(n, grid_a) for n, grid_a in [(4, 63), (8, 80), (12, 100), (6, 40)]]
scenarios.append({**depot(3, 63), "horizon": "7min"})  # bad input: not whole steps
# --8<-- [end:fleet]

if __name__ == "__main__":  # dask starts worker processes that import this file
    # --8<-- [start:run]
    results = plan_many(scenarios, ocpp_version="2.0.1", return_plans=False)
    for r in results:  # one result per scenario, in input order
        if r.ok:
            print(r.index, r.summary["method"], f"{r.summary['delivered_kwh']:.1f} kWh,",
                  len(r.profiles), "profiles")
        else:
            print(r.index, type(r.error).__name__, r.error.problems[0].path)
    print(summary_frame(results)[["ok", "delivered_kwh", "unmet_kwh", "elapsed_s"]])
    # --8<-- [end:run]
    assert [r.ok for r in results] == [True, True, True, True, False]
    assert isinstance(results[-1].error, cp.InputError)
