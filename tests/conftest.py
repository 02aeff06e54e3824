import os

import pandas as pd
import pytest

T0 = pd.Timestamp("2024-03-04 08:00", tz="Europe/Amsterdam")


@pytest.fixture
def t0():
    return T0


def hours(x: float) -> pd.Timedelta:
    return pd.Timedelta(hours=x)


os.environ.setdefault("HYPOTHESIS_PROFILE", "default")
