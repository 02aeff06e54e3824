"""A custom objective and constraint with cvxpy (docs/how-to/custom-objective-cvxpy.md)."""
# requires: cvxpy

# --8<-- [start:hook]
import cvxpy as cvx
import pandas as pd

import chargeplan as cp

t0 = pd.Timestamp("2024-06-03 08:00", tz="Europe/Amsterdam")
site = cp.Site(nodes=[cp.Node("grid", limit_a=80)],
               evses=[cp.Evse(f"cp{i}", parent="grid", max_current_a=32) for i in range(4)])
evs = [cp.Session(f"s{i}", evse=f"cp{i}", arrival=t0 + pd.Timedelta(hours=i),
                  departure=t0 + pd.Timedelta(hours=8), energy_kwh=25) for i in range(4)]
prices = pd.Series([0.30, 0.20, 0.10, 0.10, 0.12, 0.25, 0.30, 0.35],
                   index=pd.date_range(t0, periods=8, freq="1h"))
tariff = cp.Tariff(import_price_per_kwh=prices)


def smooth_and_early(model):
    """Penalise a peaky site load, and make s0 finish by 10:00."""
    p = model.problem
    model.objective += 0.002 * cvx.sum_squares(model.site_import_kw)
    s0 = p.session_ids.index("s0")
    after_ten = (p.grid.index >= t0 + pd.Timedelta("2h")).nonzero()[0]
    model.constraints.append(model.charge_kw[s0, after_ten] == 0)


plain = cp.optimize(site, evs, start=t0, horizon="8h", step="15min", tariff=tariff,
                    method="lp")
custom = cp.optimize(site, evs, start=t0, horizon="8h", step="15min", tariff=tariff,
                     customize=smooth_and_early)
print(custom.report.method, custom.report.status)
for name, plan in (("lp", plain), ("customized", custom)):
    k = plan.kpis
    print(f"{name:10s} peak {k['peak_import_kw']:5.1f} kW, cost {k['energy_cost']:5.2f} EUR, "
          f"s0 after 10:00 {plan.energy_kwh.loc[t0 + pd.Timedelta('2h'):, 's0'].sum():.1f} kWh")
# --8<-- [end:hook]
assert custom.report.method == "cvxpy"
assert custom.energy_kwh.loc[t0 + pd.Timedelta("2h"):, "s0"].sum() == 0
assert custom.kpis["peak_import_kw"] < plain.kpis["peak_import_kw"]
