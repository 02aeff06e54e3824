"""Warm re-planning on events with cp.Replanner (docs/how-to/csms-integration.md)."""

# --8<-- [start:replanner]
import time

import numpy as np
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(nodes=[cp.Node("grid", limit_a=120)],
               evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=32) for i in range(40)])
rng = np.random.default_rng(1)


def ev(i):
    """Return an EV plugged into cp<i>, staying 3 to 10 hours."""
    return cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0,
                      departure=t0 + pd.Timedelta(hours=int(rng.integers(3, 11))),
                      energy_kwh=float(rng.uniform(5, 40)), transaction_id=f"tx-{i}")


prices = pd.Series(rng.uniform(0.05, 0.40, 24), index=pd.date_range(t0, periods=24, freq="1h"))
rp = cp.Replanner(site, [ev(i) for i in range(30)], start=t0, horizon="24h", step="15min",
                  tariff=cp.Tariff(import_price_per_kwh=prices))


def timed(label):
    t = time.perf_counter()
    plan = rp.plan()  # verified by the independent checker, like optimize()
    print(f"{label:22s} {1000 * (time.perf_counter() - t):6.1f} ms  {plan.report.reason}")
    return plan


timed("first plan (cold)")
rp.add_session(ev(30))  # an EV plugged in
timed("arrival")
rp.update_session(cp.Session("s3", evse="cp3", arrival=t0,  # new needs from the EV
                             departure=t0 + pd.Timedelta("5h"), energy_kwh=12,
                             transaction_id="tx-3"))
timed("new charging needs")
rp.remove_session("s7")  # an EV left
plan = timed("departure")
requests = plan.to_ocpp("2.0.1")
# --8<-- [end:replanner]
assert len(requests) == 30
assert plan.report.method == "lp"
