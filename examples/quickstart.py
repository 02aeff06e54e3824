"""Quickstart: plan a real ACN-Data day at a Caltech-like site with real prices.

1. Plans Monday 2019-09-09 (43 real sessions from ACN-Data, Caltech) on the
   Caltech-like site with a 50 kW transformer, 5-minute slots, Dutch day-ahead prices
   of a September 2023 Monday and a PV profile, and prints a summary.
2. Re-plans at 12:00 as a CSMS would (sessions plugged in then) and writes the OCPP
   2.0.1 and 1.6 SetChargingProfile payloads to ``out/``.

Run: ``python examples/quickstart.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

import chargeplan as cp
from chargeplan import datasets

TZ = "America/Los_Angeles"


def main(out_dir: Path) -> None:
    day = pd.Timestamp("2019-09-09", tz=TZ)
    site = datasets.caltech_site(transformer_cap_kw=50.0)
    rows = datasets.load_acn_sessions(day, day + pd.Timedelta("1D"))
    sessions = datasets.acn_to_sessions(rows, site, energy="delivered")
    end = day + pd.Timedelta("36h")
    prices = datasets.load_nl_day_ahead_prices(
        day, end, source_start=pd.Timestamp("2023-09-11", tz=TZ)
    )
    pv_kw = 30.0 * datasets.load_pv_kw_per_kwp(day, end)  # a 30 kWp roof
    tariff = cp.Tariff(import_price_per_kwh=prices)
    forecast = cp.Forecast(pv_kw=pv_kw)

    plan = cp.optimize(
        site, sessions, start=day, horizon="36h", step="5min", tariff=tariff, forecast=forecast
    )
    k = plan.kpis
    print(
        f"chargeplan {cp.__version__}: Caltech ACN, {day.date()}, {len(sessions)} sessions, "
        f"50 kW transformer, 5-min slots"
    )
    print(
        f"  solver            {plan.report.method} ({plan.report.reason}), "
        f"{plan.report.solve_time_s * 1000:.1f} ms; checker passed "
        f"in {plan.report.check_time_s * 1000:.1f} ms"
    )
    print(f"  energy requested  {k['requested_kwh']:8.1f} kWh")
    print(f"  energy delivered  {k['delivered_kwh']:8.1f} kWh ({100 * k['share_delivered']:.1f} %)")
    print(f"  sessions served   {100 * k['share_sessions_served']:8.1f} %")
    print(f"  energy cost       {k['energy_cost']:8.2f} EUR (net of PV)")
    print(f"  peak import       {k['peak_import_kw']:8.1f} kW")
    top = plan.sessions.sort_values("unmet_kwh", ascending=False).head(5)
    print("  most unmet sessions:")
    print(top.round(3).to_string())

    # A CSMS re-plans on every event; here: at noon, with the sessions plugged in then
    # or arriving later that day.
    noon = day + pd.Timedelta("12h")
    live = [s for s in sessions if s.departure > noon]
    replan = cp.optimize(
        site, live, start=noon, horizon="24h", step="15min", tariff=tariff, forecast=forecast
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for version in ("2.0.1", "1.6"):
        requests = replan.to_ocpp(version)
        payloads = [
            {"stationId": r.station_id, "action": r.action, "payload": r.payload} for r in requests
        ]
        path = out_dir / f"profiles_ocpp{version.replace('.', '')}.json"
        path.write_text(json.dumps(payloads, indent=2))
        print(f"  OCPP {version}: {len(requests)} SetChargingProfile requests -> {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    main(parser.parse_args().out)
