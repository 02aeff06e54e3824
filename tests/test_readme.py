"""The README's API example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    plan = namespace["plan"]
    assert plan.violations() == []
    assert len(namespace["requests"]) == 3  # three sessions active at t0
    assert (plan.sessions["delivered_kwh"] <= plan.sessions["requested_kwh"] + 1e-9).all()
