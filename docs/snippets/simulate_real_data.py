"""Replay a real ACN-Data day as a CSMS would (docs/how-to/simulate-real-data.md)."""
# ruff: noqa: E402  (imports stay next to the part of the page that uses them)

# --8<-- [start:inputs]
import pandas as pd

import chargeplan as cp
from chargeplan import datasets
from chargeplan.simulate import acn_sim_sessions

tz = datasets.ACN_TIMEZONE  # "America/Los_Angeles"
day = pd.Timestamp("2019-09-09", tz=tz)  # a Monday
site = datasets.caltech_site(transformer_cap_kw=50)  # 54 EVSEs at 208 V, congested
rows = datasets.load_acn_sessions(day, day + pd.Timedelta("1D"))
sims = acn_sim_sessions(rows, site)  # told: the driver's input; truth: what happened
end = max(s.departure_true for s in sims).ceil("h")  # until every EV has left

until = end + pd.Timedelta("25h")  # prices and PV must cover every planning horizon
prices = datasets.load_nl_day_ahead_prices(  # a Dutch Monday, same local hours
    day, until, source_start=pd.Timestamp("2023-09-11", tz="Europe/Amsterdam"))
pv = datasets.load_pv_kw_per_kwp(day - pd.Timedelta("8h"), until - pd.Timedelta("8h"))
pv.index = pv.index + pd.Timedelta("8h")  # Dutch solar noon moved to Californian noon
tariff = cp.Tariff(import_price_per_kwh=prices)
forecast = cp.Forecast(pv_kw=30 * pv)  # a 30 kWp roof
print(f"{len(sims)} sessions; drivers asked for "
      f"{sum(s.session.requested_energy_kwh() for s in sims):.0f} kWh, "
      f"the EVs took {sum(s.demand_true_kwh for s in sims):.0f} kWh")
# --8<-- [end:inputs]

# --8<-- [start:simulate]
res = cp.simulate(site, sims, start=day, end=end, strategy="greedy", step="15min",
                  horizon="24h", replan_every="15min", tariff=tariff, forecast=forecast)
print(res)
print(res.decisions.head())
print(res.sessions[["evse", "requested_kwh", "demand_kwh", "delivered_kwh", "served"]].head())
# --8<-- [end:simulate]
assert res.kpis["limit_violations"] == 0

# --8<-- [start:compare]
table = cp.compare(site, sims, strategies=["greedy", "equal_share", "uncontrolled"],
                   start=day, end=end, step="15min", horizon="24h", replan_every="15min",
                   tariff=tariff, forecast=forecast)
cols = ["delivered_kwh", "share_delivered_vs_demand", "share_sessions_served",
        "total_cost", "peak_import_kw", "limit_violations", "latency_median_ms"]
print(table[cols].round(3).to_string())
# --8<-- [end:compare]
assert table.loc["uncontrolled", "limit_violations"] > 0
assert table.loc["greedy", "delivered_kwh"] > table.loc["equal_share", "delivered_kwh"]

# --8<-- [start:plot]
from chargeplan.plotting import plot_kpis, plot_site_load

plot_site_load(res).savefig("site_load_greedy.png", dpi=100)
plot_kpis(table).savefig("kpis.png", dpi=100)
# --8<-- [end:plot]
