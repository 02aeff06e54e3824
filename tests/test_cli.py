"""The ``chargeplan`` command, run as a shell user would (subprocess, fresh directory)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chargeplan import __version__
from chargeplan.cli import main
from test_ocpp import schema_errors
from test_scenario import doc_example

SRC = Path(__file__).resolve().parents[1] / "src"
SUBCOMMANDS = ("plan", "check", "simulate", "validate", "warmup")


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "chargeplan.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def charge_only(d: dict) -> dict:
    """The documented example without V2G, so that OCPP 1.6 / 2.0.1 can express it."""
    d = copy.deepcopy(d)
    for key in ("v2g", "soc_min_pct", "max_discharge_power_kw", "degradation_cost_per_kwh"):
        d["sessions"][2].pop(key)
    del d["v2g_bids"]
    return d


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """`chargeplan plan` on the documented example (V2G, OCPP 2.1), run once."""
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "depot.json").write_text(json.dumps(doc_example(), indent=2))
    r = run(
        "plan",
        "depot.json",
        "--ocpp",
        "2.1",
        "-o",
        "profiles.json",
        "--json-plan",
        "plan.json",
        cwd=cwd,
    )
    return cwd, r


def test_plan_writes_schema_valid_profiles(planned):
    cwd, r = planned
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    profiles = json.loads((cwd / "profiles.json").read_text())
    assert {p["stationId"] for p in profiles} == {"CS-A", "CS-DC"}
    for p in profiles:
        assert set(p) == {"stationId", "action", "payload"}
        assert p["action"] == "SetChargingProfile"
        assert schema_errors(p["payload"], "2.1") == []
    assert "profiles:  3 for OCPP 2.1 -> profiles.json" in r.stdout
    plan = json.loads((cwd / "plan.json").read_text())
    assert plan["ocpp_version"] == "2.1"
    assert set(plan["evses"]) == {"cp1", "cp2", "dc1"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_plan_to_stdout_for_older_versions(tmp_path, version):
    (tmp_path / "s.json").write_text(json.dumps(charge_only(doc_example())))
    r = run("plan", "s.json", "--ocpp", version, "--method", "greedy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    profiles = json.loads(r.stdout)  # profiles on stdout, summary on stderr
    assert profiles and all(schema_errors(p["payload"], version) == [] for p in profiles)
    assert "solver:    greedy" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_check_accepts_the_written_plan(planned):
    cwd, _ = planned
    r = run("check", "plan.json", cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK, the plan keeps every limit (3 session(s), 48 slots)" in r.stdout


def test_check_finds_a_current_above_the_evse_max(planned, tmp_path):
    cwd, _ = planned
    plan = json.loads((cwd / "plan.json").read_text())
    cur = plan["sessions"][0]["current_a"]  # tx-1001 on cp1 (EVSE max 32 A)
    t = next(k for k, v in enumerate(cur) if v > 0)
    cur[t] = 40.0
    plan["evses"]["cp1"]["current_a"][t] = 40.0
    (tmp_path / "tampered.json").write_text(json.dumps(plan))
    r = run("check", "tampered.json", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the plan breaks" in r.stdout
    assert f"max_current at session 'tx-1001' on EVSE 'cp1' in slot {t}" in r.stdout
    assert "40 (limit 16)" in r.stdout
    assert f"evse_max_current at EVSE 'cp1' current_a in slot {t}" in r.stdout
    assert "Traceback" not in r.stderr


def test_bad_scenario_exits_2_with_the_field_path(tmp_path):
    d = doc_example()
    d["sessions"][1]["energy_kwh"] = -3
    d["sessions"][2]["evse"] = "dc9"
    (tmp_path / "bad.json").write_text(json.dumps(d))
    r = run("plan", "bad.json", "-o", "profiles.json", "--json-plan", "plan.json", cwd=tmp_path)
    assert r.returncode == 2
    assert "2 problems in bad.json" in r.stderr
    assert "$.sessions[1].energy_kwh: The 'energy_kwh' parameter of Session must be >= 0" in (
        r.stderr
    )
    assert "$.sessions[2].evse:" in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]  # nothing written


def test_help_and_version_as_a_subprocess(tmp_path):
    r = run("--help", cwd=tmp_path)
    assert r.returncode == 0
    for cmd in SUBCOMMANDS:
        assert cmd in r.stdout
    assert "exit status" in r.stdout
    r = run("--version", cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, f"chargeplan {__version__}")


# --------------------------------------------------------------------------- in process


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_of_every_subcommand(cmd, capsys):
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: chargeplan {cmd}")
    assert "exit status" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "usage: chargeplan"),
        (["plan"], "the following arguments are required: SCENARIO"),
        (["plan", "missing.json"], "cannot read 'missing.json': no such file"),
        (["plan", "s.json", "--ocpp", "3.0"], "invalid choice: '3.0'"),
        (["plan", "s.json", "-o", "nodir/p.json"], "no such directory 'nodir'"),
        (["check", "s.json"], "'kind' field of plan file is required"),
        (["check", "junk.json"], "is not valid JSON"),
        (["validate", "junk.json"], "$: The scenario is not valid JSON"),
        (["simulate"], "needs either a SCENARIO file or --acn-day"),
        (["simulate", "--acn-day", "2019-11-03T01:30"], "ambiguous or does not exist"),
        (["simulate", "--acn-day", "2019-03-10T02:30"], "ambiguous or does not exist"),
        (["simulate", "--acn-day", "nope"], "--acn-day must be a date YYYY-MM-DD"),
        (["check", "list.json"], "is not a plan file: its top level must be an object"),
        (["check", "text.json"], "is not a plan file: its top level must be an object"),
        (["simulate", "s.json", "--strategies", "greedy,best"], "unknown strategy 'best'"),
        (["simulate", "s.json", "--step", "300"], "--step must be a duration such as '5min'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(doc_example()))
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "text.json").write_text('"s.json"')  # was opened as a path
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_validate_ok(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(doc_example()))
    assert main(["validate", "s.json"]) == 0
    assert "s.json: OK (3 session(s), 3 EVSE(s), 48 slots of 900 s)." in capsys.readouterr().out


def test_warmup(capsys):
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("numba kernels ready in ") and "(cache: " in out


def test_v2g_needs_ocpp_21(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(doc_example()))
    assert main(["plan", "s.json", "--ocpp", "2.0.1", "-o", "p.json"]) == 2
    assert "OCPP 2.0.1 cannot express discharge" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_simulate_prints_the_kpi_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(charge_only(doc_example())))
    code = main(["simulate", "s.json", "--strategies", "greedy,uncontrolled", "--csv", "k.csv"])
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("kpi"))
    assert header.split() == ["kpi", "greedy", "uncontrolled"]
    violations = next(line for line in out.splitlines() if line.startswith("limit_violations"))
    assert violations.split()[1] == "0"
    assert (tmp_path / "k.csv").read_text().startswith("strategy,sessions,")


def test_simulate_without_the_simulator_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(doc_example()))
    monkeypatch.setitem(sys.modules, "chargeplan.simulate", None)  # import fails
    assert main(["simulate", "s.json"]) == 2
    assert "needs the simulator (chargeplan.simulate)" in capsys.readouterr().err


def test_plan_from_stdin(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(charge_only(doc_example()))))
    assert main(["plan", "-", "-q", "--method", "greedy"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 3
    assert captured.err == ""


def test_plan_output_through_a_symlink_and_not_twice(tmp_path, monkeypatch, capsys):
    """Found by a bug hunt: -o replaced a symlink (or, as root, a device node) by a file,
    and -o X --json-plan X kept only the profiles, with exit status 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.json").write_text(json.dumps(charge_only(doc_example())))
    (tmp_path / "target.json").write_text("old")
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    assert main(["plan", "s.json", "-q", "--method", "greedy", "-o", "link.json"]) == 0
    assert (tmp_path / "link.json").is_symlink()
    assert len(json.loads((tmp_path / "target.json").read_text())) == 3
    argv = ["plan", "s.json", "-q", "-o", "p.json", "--json-plan", "./p.json"]
    assert main(argv) == 2
    assert "-o and --json-plan name the same file" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
