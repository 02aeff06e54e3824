"""The ``chargeplan`` command: plan, check and simulate from JSON scenario files.

Subcommands
-----------
``chargeplan plan SCENARIO [--ocpp VERSION] [-o FILE] [--method M] [--json-plan FILE]``
    Plan the scenario and write its OCPP ``SetChargingProfile`` requests as a JSON list
    of ``{"stationId", "action", "payload"}`` (to stdout without ``-o``).
``chargeplan check PLAN``
    Re-verify a plan file written by ``plan --json-plan`` with the independent checker.
``chargeplan simulate (SCENARIO | --acn-day DAY) [--strategies a,b,...]``
    Replay sessions with several strategies and print their KPI table.
``chargeplan validate SCENARIO``
    Check a scenario file without planning.

Exit codes: 0 success; 1 the plan breaks a limit (``check``), or planning failed (solver
failure, a plan that would break a limit); 2 usage or input errors (bad arguments,
unreadable or invalid files; every problem is listed on stderr with its JSON path).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .exceptions import (
    ChargeplanError,
    InputError,
    LimitViolationError,
    SolverError,
    Violation,
)
from .ocpp import SUPPORTED_VERSIONS
from .solvers import METHODS

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

#: Success.
EXIT_OK = 0
#: The plan breaks a limit, or planning failed.
EXIT_FAILED = 1
#: Usage or input error.
EXIT_USAGE = 2

_DEFAULT_STRATEGIES = "greedy,uncontrolled,equal_share,edf,llf,round_robin"
_EPILOG = """\
exit status:
  0  success
  1  the plan breaks a limit (check), or planning failed (solver failure)
  2  usage or input error (each problem is listed on stderr with its JSON path)

The scenario format is described in docs/scenario-format.md.
"""


class _UsageError(Exception):
    """A problem with the command line or a file; reported on stderr, exit 2."""


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``chargeplan`` command."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="chargeplan",
        description="Verified EV charging plans as OCPP charging profiles, from JSON "
        "scenario files.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"chargeplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "plan",
        help="plan a scenario and write OCPP SetChargingProfile requests",
        description="Plan the charging of a scenario file and write the OCPP "
        "SetChargingProfile requests as a JSON list of {stationId, action, payload}. "
        "The plan is verified by the independent checker before anything is written.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario JSON file ('-' for stdin)")
    p.add_argument(
        "--ocpp",
        choices=SUPPORTED_VERSIONS,
        default="2.0.1",
        help="OCPP version of the profiles (default: %(default)s; V2G discharge needs 2.1)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the profiles to FILE (default: stdout)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        help="solver, overriding the scenario's planning.method",
    )
    p.add_argument(
        "--json-plan",
        metavar="FILE",
        help="also write the plan (per-EVSE and per-session power and current, KPIs, "
        "and the scenario) to FILE, for 'chargeplan check'",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the summary")
    p.set_defaults(handler=_cmd_plan)

    c = sub.add_parser(
        "check",
        help="re-verify a plan file with the independent checker",
        description="Re-verify a plan file written by 'chargeplan plan --json-plan': every "
        "per-session rate and current is checked against every limit of the stored "
        "scenario, and the per-EVSE view must match the sessions. Prints each violated "
        "limit and exits 1 if there is any.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    c.add_argument("plan", metavar="PLAN", help="plan JSON file ('-' for stdin)")
    c.add_argument("-q", "--quiet", action="store_true", help="print violations only")
    c.set_defaults(handler=_cmd_check)

    s = sub.add_parser(
        "simulate",
        help="replay sessions with several strategies and print their KPIs",
        description="Replay the sessions of a scenario file, or a real day of ACN-Data "
        "sessions at Caltech, re-planning as a CSMS would with each strategy, and print "
        "the KPI table (one column per strategy). Strategies that ignore limits (such as "
        "'uncontrolled') are scored with their violations; the exit status is 0 anyway.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    s.add_argument(
        "scenario",
        metavar="SCENARIO",
        nargs="?",
        help="scenario JSON file; simulated from planning.start for planning.horizon",
    )
    s.add_argument(
        "--acn-day",
        metavar="YYYY-MM-DD",
        help="replay the ACN-Data Caltech sessions arriving on this local day instead",
    )
    s.add_argument(
        "--days",
        type=int,
        default=1,
        help="with --acn-day: number of days of arrivals (default: %(default)s)",
    )
    s.add_argument(
        "--transformer-kw",
        type=float,
        default=150.0,
        help="with --acn-day: Caltech transformer capacity in kW (default: %(default)s)",
    )
    s.add_argument(
        "--strategies",
        default=_DEFAULT_STRATEGIES,
        help="comma-separated optimize methods and baselines (default: %(default)s)",
    )
    s.add_argument("--end", metavar="TIME", help="end of the simulation (ISO 8601 with UTC offset)")
    s.add_argument("--step", help="slot length (default: the scenario's step, or 5min)")
    s.add_argument(
        "--replan-every",
        default="15min",
        help="periodic re-plan interval, or 'none' for events only (default: %(default)s)",
    )
    s.add_argument(
        "--knowledge",
        choices=("estimated", "perfect"),
        default="estimated",
        help="what strategies are told about departures and energy (default: %(default)s)",
    )
    s.add_argument("--csv", metavar="FILE", help="also write the KPI table as CSV")
    s.set_defaults(handler=_cmd_simulate)

    v = sub.add_parser(
        "validate",
        help="check a scenario file without planning",
        description="Check a scenario file: its JSON Schema, then every value as "
        "chargeplan.optimize would. Lists every problem with its JSON path.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    v.add_argument("scenario", metavar="SCENARIO", help="scenario JSON file ('-' for stdin)")
    v.set_defaults(handler=_cmd_validate)

    w = sub.add_parser(
        "warmup",
        help="compile the numba kernels into the on-disk cache (for container images)",
        description="Plan a tiny site with every solver that runs a numba kernel, so the "
        "kernels are compiled into numba's on-disk cache (NUMBA_CACHE_DIR, or next to the "
        "installed package) and later processes only load them. Run it when building an "
        "image, e.g. 'RUN chargeplan warmup'.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    w.set_defaults(handler=_cmd_warmup)
    return parser


# --------------------------------------------------------------------------- helpers


def _err(message: str) -> None:
    print(f"chargeplan: error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"chargeplan: warning: {message}", file=sys.stderr)


def _report_input_error(err: InputError, what: str) -> None:
    n = len(err.problems)
    _err(f"{n} problem{'s' if n != 1 else ''} in {what}:")
    for p in err.problems:
        print(f"  {p.path}: {p.message}", file=sys.stderr)


def _read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _UsageError(f"cannot read {name!r}: no such file") from None
    except IsADirectoryError:
        raise _UsageError(f"cannot read {name!r}: it is a directory") from None
    except OSError as err:
        raise _UsageError(f"cannot read {name!r}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise _UsageError(f"cannot read {name!r}: not UTF-8 text") from None


def _load_scenario(name: str) -> Any:
    from .scenario import loads_scenario

    text = _read_text(name)
    if not text.strip():
        raise _UsageError(f"{name!r} is empty")
    return loads_scenario(text)


def _write_outputs(outputs: Sequence[tuple[str, str]]) -> None:
    """Write every (path, text); each file is replaced atomically.

    A symlink is written through (its target is replaced, the link kept); a path that
    is not a regular file (a device or pipe, e.g. ``/dev/stdout``) is written to as is.
    """
    for name, text in outputs:
        path = Path(os.path.realpath(name))
        if path.exists() and not path.is_file():
            try:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as err:
                raise _UsageError(f"cannot write {name!r}: {err.strerror or err}") from None
            continue
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as err:
            raise _UsageError(f"cannot write {name!r}: {err.strerror or err}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError as err:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise _UsageError(f"cannot write {name!r}: {err.strerror or err}") from None


def _check_writable(name: str | None) -> None:
    if name is None or name == "-":
        return
    path = Path(name)
    if path.is_dir():
        raise _UsageError(f"cannot write {name!r}: it is a directory")
    if not path.parent.is_dir():
        raise _UsageError(f"cannot write {name!r}: no such directory {str(path.parent)!r}")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _format_violation(v: Violation, index: Any = None) -> str:
    at = ""
    if v.slot is not None:
        at = f" in slot {v.slot}"
        if index is not None and 0 <= v.slot < len(index):
            at += f" ({index[v.slot]})"
    return f"{v.kind} at {v.where}{at}: {v.value:.6g} (limit {v.limit:.6g})"


def _print_violations(violations: Sequence[Violation], out: TextIO, index: Any = None) -> None:
    shown = violations[:50]
    for v in shown:
        print(f"  {_format_violation(v, index)}", file=out)
    if len(violations) > len(shown):
        print(f"  ... and {len(violations) - len(shown)} more", file=out)


def _run_with_warnings(fn: Callable[[], Any]) -> Any:
    """Run fn, then print the warnings it issued (not Python's warning format)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            _warn(text)
    return result


# --------------------------------------------------------------------------- plan


def _cmd_plan(args: argparse.Namespace) -> int:
    from .ocpp import ProfileRuleError
    from .plan import SERVED_TOL_KWH
    from .scenario import plan_to_dict

    for name in (args.output, args.json_plan):
        _check_writable(name)
    if (
        args.output not in (None, "-")
        and args.json_plan
        and os.path.realpath(args.output) == os.path.realpath(args.json_plan)
    ):
        raise _UsageError(f"-o and --json-plan name the same file {args.output!r}")
    try:
        scenario = _load_scenario(args.scenario)
    except InputError as err:
        _report_input_error(err, args.scenario)
        return EXIT_USAGE
    if args.method is not None:
        scenario = replace(scenario, method=args.method)

    def make() -> tuple[Any, Any]:
        plan = scenario.optimize()
        return plan, scenario.to_ocpp(plan, args.ocpp)

    try:
        plan, requests = _run_with_warnings(make)
    except LimitViolationError as err:
        _err("the solver produced a plan that breaks limits; nothing was written:")
        _print_violations(err.violations, sys.stderr)
        return EXIT_FAILED
    except SolverError as err:
        _err(f"the solver failed ({err.status}); nothing was written: {err}")
        return EXIT_FAILED
    except ProfileRuleError as err:
        _err(f"an OCPP profile broke a rule; nothing was written: {err}")
        return EXIT_FAILED
    except InputError as err:
        _report_input_error(err, f"{args.scenario} (OCPP {args.ocpp} export)")
        return EXIT_USAGE
    except ImportError as err:  # e.g. --method cvxpy without cvxpy installed
        _err(f"{err}")
        return EXIT_USAGE

    profiles = [
        {"stationId": r.station_id, "action": r.action, "payload": r.payload} for r in requests
    ]
    outputs = []
    if args.json_plan:
        outputs.append(
            (args.json_plan, _dumps(plan_to_dict(plan, scenario, ocpp_version=args.ocpp)))
        )
    to_stdout = args.output is None or args.output == "-"
    if not to_stdout:
        outputs.append((args.output, _dumps(profiles)))
    _write_outputs(outputs)
    if to_stdout:
        sys.stdout.write(_dumps(profiles))
        sys.stdout.flush()

    k = plan.kpis
    unmet = plan.sessions[plan.sessions["unmet_kwh"] > SERVED_TOL_KWH]
    if len(unmet):
        ids = ", ".join(map(str, unmet.index[:5])) + (" ..." if len(unmet) > 5 else "")
        _warn(
            f"{k['unmet_kwh']:.3f} kWh of the requested energy cannot be delivered "
            f"({len(unmet)} session(s): {ids})"
        )
    if not args.quiet:
        out = sys.stderr if to_stdout else sys.stdout
        rep = plan.report
        currency = scenario.tariff.currency if scenario.tariff is not None else ""
        print(
            f"Planned {len(plan.session_inputs)} session(s) on {len(plan.power_kw.columns)} "
            f"EVSE(s): {plan.grid.n_slots} slots of {plan.grid.step_s} s from "
            f"{plan.grid.start.isoformat()}",
            file=out,
        )
        print(f"  solver:    {rep.method} ({rep.status}; {rep.reason})", file=out)
        print(
            f"  energy:    {k['delivered_kwh']:.3f} of {k['requested_kwh']:.3f} kWh delivered "
            f"(unmet {k['unmet_kwh']:.3f} kWh)",
            file=out,
        )
        print(
            f"  cost:      {k['total_cost']:.4f} {currency}".rstrip()
            + f"; peak import {k['peak_import_kw']:.3f} kW",
            file=out,
        )
        where = "stdout" if to_stdout else args.output
        print(f"  profiles:  {len(profiles)} for OCPP {args.ocpp} -> {where}", file=out)
        if args.json_plan:
            print(f"  plan:      {args.json_plan}", file=out)
    return EXIT_OK


# --------------------------------------------------------------------------- check


def _cmd_check(args: argparse.Namespace) -> int:
    from .scenario import check_plan_dict

    text = _read_text(args.plan)
    try:
        doc = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as err:
        _err(f"{args.plan} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}")
        return EXIT_USAGE
    if doc is None:
        raise _UsageError(f"{args.plan!r} is empty")
    if not isinstance(doc, dict):
        raise _UsageError(f"{args.plan!r} is not a plan file: its top level must be an object")
    try:
        violations = check_plan_dict(doc)
    except InputError as err:
        _report_input_error(err, args.plan)
        return EXIT_USAGE
    index = doc.get("index") if isinstance(doc, dict) else None
    n_sessions = len(doc["sessions"])
    n_slots = doc["grid"]["n_slots"]
    if violations:
        print(
            f"{args.plan}: the plan breaks {len(violations)} limit(s) "
            f"({n_sessions} session(s), {n_slots} slots):"
        )
        _print_violations(violations, sys.stdout, index)
        return EXIT_FAILED
    if not args.quiet:
        print(
            f"{args.plan}: OK, the plan keeps every limit ({n_sessions} session(s), "
            f"{n_slots} slots)."
        )
    return EXIT_OK


# --------------------------------------------------------------------------- simulate


def _format_kpi_table(table: Any) -> str:
    ints = {"sessions", "limit_violations", "replans"}
    names = [str(i) for i in table.index]
    rows = [["kpi", *names]]
    for col in table.columns:
        cells = []
        for v in table[col]:
            if col in ints:
                cells.append(f"{int(v)}")
            elif isinstance(v, float) and math.isfinite(v):
                cells.append(f"{v:,.3f}")
            else:
                cells.append(str(v))
        rows.append([str(col), *cells])
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = []
    for r in rows:
        first = r[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
    return "\n".join(lines)


def _simulation_end(scenario: Any, grid: Any, step: str | None) -> Any:
    """planning.start + horizon, shortened so the scenario's series cover one more step."""
    import pandas as pd

    from .timegrid import series_coverage, to_timedelta

    try:
        step_td = to_timedelta(step) if step is not None else pd.Timedelta(seconds=grid.step_s)
    except ValueError as err:
        raise _UsageError(
            f"--step must be a duration such as '5min'. Got {step!r}: {err}"
        ) from None
    end = grid.end
    values: list[Any] = []
    if scenario.tariff is not None:
        values += [scenario.tariff.import_price_per_kwh, scenario.tariff.export_price_per_kwh]
    if scenario.forecast is not None:
        values += [scenario.forecast.pv_kw, scenario.forecast.base_load_kw]
    for node in scenario.site.nodes:
        values += [node.limit_a, node.limit_kw]
    for v in values:
        if isinstance(v, (pd.Series, pd.DataFrame)):
            cov = series_coverage(v)
            if cov is not None:
                end = min(end, cov[1] - step_td)
    return end


def _cmd_simulate(args: argparse.Namespace) -> int:
    try:
        from .simulate import acn_sim_sessions, compare
    except ImportError as err:
        _err(f"'chargeplan simulate' needs the simulator (chargeplan.simulate): {err}")
        return EXIT_USAGE
    import pandas as pd

    from .baselines import BASELINES

    if (args.scenario is None) == (args.acn_day is None):
        raise _UsageError("simulate needs either a SCENARIO file or --acn-day YYYY-MM-DD")
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not strategies:
        raise _UsageError("--strategies is empty")
    known = tuple(METHODS) + tuple(BASELINES)
    unknown = [s for s in strategies if s not in known]
    if unknown:
        raise _UsageError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(known)}")
    _check_writable(args.csv)
    replan: str | None = None if args.replan_every.lower() == "none" else args.replan_every

    kwargs: dict[str, Any]
    if args.acn_day is not None:
        from .datasets import ACN_TIMEZONE, caltech_site, load_acn_sessions

        if args.days < 1:
            raise _UsageError(f"--days must be >= 1. Got {args.days} instead")
        try:
            day = pd.Timestamp(args.acn_day)
        except ValueError:
            raise _UsageError(
                f"--acn-day must be a date YYYY-MM-DD. Got {args.acn_day!r}"
            ) from None
        if day.tz is None:
            local = day.tz_localize(ACN_TIMEZONE, ambiguous="NaT", nonexistent="NaT")
            if pd.isna(local):
                raise _UsageError(
                    f"--acn-day {args.acn_day!r} is ambiguous or does not exist in "
                    f"{ACN_TIMEZONE} (a daylight saving change); give a date YYYY-MM-DD"
                )
            day = local
        site = caltech_site(transformer_cap_kw=args.transformer_kw)
        try:
            rows = load_acn_sessions(day, day + pd.Timedelta(days=args.days))
        except InputError as err:
            detail = "; ".join(problem.message for problem in err.problems)
            raise _UsageError(f"--acn-day: {detail}") from None
        sessions: list[Any] = acn_sim_sessions(rows, site)
        if not sessions:
            raise _UsageError(f"no ACN-Data sessions at Caltech arrive on {args.acn_day}")
        end = max(s.departure_true for s in sessions).ceil("h")
        kwargs = dict(start=day, end=end, step=args.step or "5min")
        label = f"ACN-Data Caltech {args.acn_day}" + (
            f" (+{args.days - 1} days)" if args.days > 1 else ""
        )
    else:
        try:
            scenario = _load_scenario(args.scenario)
        except InputError as err:
            _report_input_error(err, args.scenario)
            return EXIT_USAGE
        site, sessions = scenario.site, list(scenario.sessions)
        grid = scenario.validate()
        end = _simulation_end(scenario, grid, args.step)
        kwargs = dict(
            start=scenario.start,
            end=end,
            step=args.step or scenario.step,
            horizon=scenario.horizon,
            tariff=scenario.tariff,
            forecast=scenario.forecast,
            v2g_bids=scenario.v2g_bids,
        )
        label = args.scenario
    if args.end is not None:
        try:
            end_ts = pd.Timestamp(args.end)
        except ValueError:
            raise _UsageError(f"--end must be an ISO 8601 time. Got {args.end!r}") from None
        if end_ts.tz is None:
            raise _UsageError(f"--end must have a UTC offset. Got the naive {args.end!r}")
        kwargs["end"] = end_ts

    try:
        table = _run_with_warnings(
            lambda: compare(
                site,
                sessions,
                strategies=strategies,
                replan_every=replan,
                knowledge=args.knowledge,
                **kwargs,
            )
        )
    except InputError as err:
        _report_input_error(err, f"the simulation of {label}")
        return EXIT_USAGE
    except ImportError as err:
        _err(f"{err}")
        return EXIT_USAGE
    except SolverError as err:
        _err(f"a solver failed during the simulation ({err.status}): {err}")
        return EXIT_FAILED
    if args.csv:
        _write_outputs([(args.csv, table.to_csv())])
    print(f"Simulation of {label}: {kwargs['start']} .. {kwargs['end']}")
    print(_format_kpi_table(table))
    return EXIT_OK


# --------------------------------------------------------------------------- validate


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        scenario = _load_scenario(args.scenario)
    except InputError as err:
        _report_input_error(err, args.scenario)
        return EXIT_USAGE
    grid = scenario.validate()
    print(
        f"{args.scenario}: OK ({len(scenario.sessions)} session(s), "
        f"{len(scenario.site.evses)} EVSE(s), {grid.n_slots} slots of {grid.step_s} s)."
    )
    return EXIT_OK


def _cmd_warmup(args: argparse.Namespace) -> int:
    from .warmup import cache_dir, warm_up

    seconds = warm_up()
    print(f"numba kernels ready in {seconds:.1f} s (cache: {cache_dir()}).")
    return EXIT_OK


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``chargeplan`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except _UsageError as err:
        _err(str(err))
        return EXIT_USAGE
    except InputError as err:
        _report_input_error(err, "the input")
        return EXIT_USAGE
    except ChargeplanError as err:
        _err(str(err))
        return EXIT_FAILED
    except ImportError as err:  # a missing optional dependency (e.g. jsonschema)
        _err(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `chargeplan plan x.json | head`): not an error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # silence the flush at exit
        except (OSError, ValueError):
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
