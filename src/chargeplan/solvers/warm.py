"""Warm re-solves of the planning LP: keep the HiGHS model loaded and edit it in place.

A CSMS re-plans on every event. Rebuilding the arrays is cheap (milliseconds); what
costs is HiGHS starting from scratch. :class:`LpSession` keeps the loaded model and,
for the next problem on the same time grid, maps every row and column by its stable
key (:func:`.lp.key`): new rows and columns are appended (rows basic, columns at 0),
rows and columns that disappeared are relaxed (free row, column fixed at 0) and
retired (their key is forgotten, so if the key comes back, e.g. a node row that can
bind again or a session added again under its old code, it is appended afresh with
all its coefficients), and the bounds and costs that changed are updated in place.
HiGHS then starts from the previous basis. Once retired rows and columns outnumber
the live ones, the model is loaded afresh (cold).

A new price curve is re-solved cold: hot starts from the old basis after a price
change were measured erratic (up to 27x slower than cold, design.md section 7).
Everything else (arrivals, departures, new limits, new energy requests) is warm.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..problem import ProblemArrays
from .lp import LpModel, _highs, _run, build_lp

__all__ = ["LpSession", "WARM_HIGHS_OPTIONS"]

#: HiGHS options for warm runs only (a cold load keeps HiGHS's defaults). From a
#: basis that is nearly optimal, perturbing the costs and then cleaning the
#: perturbation up costs more than it saves, and Devex pricing needs no exact edge
#: weights of the new basis. Measured after one arrival at N=1 000 (benchmarks/lp.md
#: scenarios): congested 1 453 -> 373 simplex iterations (856 -> 210 ms), loose
#: 3 -> 1 (7.6 -> 5.4 ms). The same options on a cold solve are 2-4x slower.
WARM_HIGHS_OPTIONS = {
    "dual_simplex_cost_perturbation_multiplier": 0.0,
    "simplex_dual_edge_weight_strategy": 1,  # Devex
}


class _Keys:
    """Keys of the loaded rows (or columns) in HiGHS order, with a sorted index.

    Retired entries get a unique negative key (model keys are >= 0), so they never
    match again.
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.int64).copy()
        self._index()

    def _index(self) -> None:
        self.order = np.argsort(self.keys, kind="stable")
        self.sorted = self.keys[self.order]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def n_retired(self) -> int:
        return int((self.keys < 0).sum())

    def find(self, want: np.ndarray) -> np.ndarray:
        """HiGHS index of every key of ``want``, -1 where not loaded."""
        if not len(self.keys):
            return np.full(len(want), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.sorted, want), len(self.keys) - 1)
        return np.where(self.sorted[pos] == want, self.order[pos], -1)

    def retire(self, idx: np.ndarray) -> None:
        if len(idx):
            self.keys[idx] = -1 - np.asarray(idx, dtype=np.int64)
            self._index()

    def append(self, keys: np.ndarray) -> np.ndarray:
        """Append ``keys``; return their HiGHS indices."""
        first = len(self.keys)
        self.keys = np.concatenate([self.keys, keys])
        self._index()
        return np.arange(first, len(self.keys))


def _finite(x: np.ndarray, inf: float) -> np.ndarray:
    """``x`` with +-inf as HiGHS's infinity."""
    return np.where(np.isposinf(x), inf, np.where(np.isneginf(x), -inf, x))


class LpSession:
    """A HiGHS LP kept loaded between re-plans (LP relaxation, no V2G, no MILP).

    Parameters
    ----------
    time_limit_s : float, optional
        HiGHS time limit per run.
    """

    #: Re-load cold when the retired rows and columns outnumber the live ones.
    MAX_RETIRED_SHARE = 1.0

    def __init__(self, time_limit_s: float | None = None) -> None:
        self.time_limit_s = time_limit_s
        self.h = None
        self.cols: _Keys | None = None  # key of each HiGHS column
        self.rows: _Keys | None = None
        # what is loaded, per HiGHS column / row (to send only what changed)
        self._col_lower = self._col_upper = self._cost = np.zeros(0)
        self._row_lower = self._row_upper = np.zeros(0)
        self.model: LpModel | None = None
        self.last = {"warm": False, "reason": "first solve"}

    @property
    def col_keys(self) -> np.ndarray | None:
        """Key of each loaded HiGHS column (negative: retired)."""
        return None if self.cols is None else self.cols.keys

    @property
    def row_keys(self) -> np.ndarray | None:
        """Key of each loaded HiGHS row (negative: retired)."""
        return None if self.rows is None else self.rows.keys

    def solve(
        self,
        problem: ProblemArrays,
        session_codes: np.ndarray,
        *,
        prices_changed: bool = False,
        verify: bool = True,
    ) -> tuple[np.ndarray, dict]:
        """Solve the LP relaxation of ``problem``; warm when the loaded model allows.

        ``verify=False`` skips checking that coefficients between kept rows and columns
        are unchanged; callers may do so when a session whose data changed gets a new
        code (its old columns are then relaxed and new ones appended), as
        :class:`chargeplan.Replanner` does.

        Returns the (S, T) rate and an info dict (``warm``, ``reason``, objective,
        iterations).
        """
        model = build_lp(problem, session_codes=session_codes)
        warm, reason, col_pos = False, "first solve", None
        if self.h is not None:
            if prices_changed:
                reason = "new prices: cold re-solve"
            else:
                warm, reason, col_pos = self._update(model, verify)
        if not warm:
            self._load(model)
            col_pos = np.arange(model.n_cols)
        status = _run(self.h)
        x = np.asarray(self.h.getSolution().col_value)[col_pos]
        S, T = problem.n_sessions, problem.n_slots
        cs, ct = model.c_cells
        rate = np.zeros((S, T))
        rate[cs, ct] = np.maximum(x[model.c_off : model.c_off + len(cs)], 0.0)
        info = {
            "warm": warm,
            "reason": reason,
            "status": status,
            "objective": float(self.h.getInfo().objective_function_value),
            "simplex_iterations": int(self.h.getInfo().simplex_iteration_count),
            "n_cols": model.n_cols,
            "n_rows": model.n_rows,
        }
        self.model = model
        self.last = info
        return rate, info

    # -- internals ---------------------------------------------------------------------
    def _load(self, model: LpModel) -> None:
        self.h = _highs(model, self.time_limit_s, None)
        self.cols = _Keys(model.col_keys)
        self.rows = _Keys(model.row_keys)
        self._col_lower, self._col_upper = model.col_lower.copy(), model.col_upper.copy()
        self._cost = model.cost.copy()
        self._row_lower, self._row_upper = model.row_lower.copy(), model.row_upper.copy()

    def _same_coefficients(self, model: LpModel) -> bool:
        """Coefficients between rows and columns in both the last and the new model agree."""
        old = self.model
        if old is None:
            return False
        rows_new, rows_old = _common(model.row_keys, old.row_keys)
        cols_new, cols_old = _common(model.col_keys, old.col_keys)
        a = model.matrix[:, cols_new].tocsr()[rows_new]
        b = old.matrix[:, cols_old].tocsr()[rows_old]
        diff = abs(a - b)
        if diff.nnz and diff.max() > 1e-12 * (1.0 + abs(b).max()):
            return False
        # a coefficient that appeared or vanished (not just changed) also counts
        pattern = (a != 0).astype(np.int8) - (b != 0).astype(np.int8)
        return pattern.count_nonzero() == 0

    def _update(self, model: LpModel, verify: bool = True):
        """Edit the loaded model into ``model``; (warm, reason, HiGHS column of each column)."""
        import highspy

        inf = highspy.kHighsInf
        h = self.h
        if model.integrality is not None and model.integrality.any():
            return False, "MILP: cold", None
        if verify and not self._same_coefficients(model):
            return False, "coefficients changed: cold", None
        col_pos = self.cols.find(model.col_keys)
        row_pos = self.rows.find(model.row_keys)
        # what disappeared: relaxed and retired
        gone_c = np.ones(len(self.cols), dtype=bool)
        gone_c[col_pos[col_pos >= 0]] = False
        gone_c &= self.cols.keys >= 0
        gone_r = np.ones(len(self.rows), dtype=bool)
        gone_r[row_pos[row_pos >= 0]] = False
        gone_r &= self.rows.keys >= 0
        retired = self.cols.n_retired + self.rows.n_retired + int(gone_c.sum() + gone_r.sum())
        if retired > self.MAX_RETIRED_SHARE * max(len(self.cols) + len(self.rows) - retired, 1):
            return False, "many relaxed rows and columns: cold", None
        if gone_c.any():
            idx = np.flatnonzero(gone_c).astype(np.int32)
            zeros = np.zeros(len(idx))
            h.changeColsBounds(len(idx), idx, zeros, zeros)
            h.changeColsCost(len(idx), idx, zeros)
            self._col_lower[idx] = self._col_upper[idx] = self._cost[idx] = 0.0
            self.cols.retire(idx)
        if gone_r.any():
            idx = np.flatnonzero(gone_r).astype(np.int32)
            h.changeRowsBounds(len(idx), idx, np.full(len(idx), -inf), np.full(len(idx), inf))
            self._row_lower[idx], self._row_upper[idx] = -np.inf, np.inf
            self.rows.retire(idx)

        mat = model.matrix  # csc
        # new columns, with their coefficients on the rows already loaded
        add_c = np.flatnonzero(col_pos < 0)
        if len(add_c):
            sub = mat[:, add_c].tocsc()
            r_h = row_pos[sub.indices]
            keep = r_h >= 0
            col_of = np.repeat(np.arange(len(add_c)), np.diff(sub.indptr))
            count = np.bincount(col_of[keep], minlength=len(add_c))
            starts = np.cumsum(count) - count
            h.addCols(
                len(add_c),
                model.cost[add_c],
                model.col_lower[add_c],
                _finite(model.col_upper[add_c], inf),
                int(keep.sum()),
                starts.astype(np.int32),
                r_h[keep].astype(np.int32),
                sub.data[keep],
            )
            col_pos[add_c] = self.cols.append(model.col_keys[add_c])
            self._col_lower = np.concatenate([self._col_lower, model.col_lower[add_c]])
            self._col_upper = np.concatenate([self._col_upper, model.col_upper[add_c]])
            self._cost = np.concatenate([self._cost, model.cost[add_c]])
        # new rows, with all their coefficients (every column is loaded now)
        add_r = np.flatnonzero(row_pos < 0)
        if len(add_r):
            new_row = np.full(model.n_rows, -1, np.int64)
            new_row[add_r] = np.arange(len(add_r))
            on = np.flatnonzero(new_row[mat.indices] >= 0)
            col_of = np.searchsorted(mat.indptr, on, side="right") - 1
            rows = sp.csr_matrix(
                (mat.data[on], (new_row[mat.indices[on]], col_pos[col_of])),
                shape=(len(add_r), len(self.cols)),
            )
            h.addRows(
                len(add_r),
                _finite(model.row_lower[add_r], inf),
                _finite(model.row_upper[add_r], inf),
                rows.nnz,
                rows.indptr[:-1].astype(np.int32),
                rows.indices.astype(np.int32),
                rows.data,
            )
            row_pos[add_r] = self.rows.append(model.row_keys[add_r])
            self._row_lower = np.concatenate([self._row_lower, model.row_lower[add_r]])
            self._row_upper = np.concatenate([self._row_upper, model.row_upper[add_r]])

        # objective constant and presolve choice of the new model; warm-run options
        h.changeObjectiveOffset(model.offset)
        h.setOptionValue("presolve", model.presolve)
        for k, v in WARM_HIGHS_OPTIONS.items():
            h.setOptionValue(k, v)
        # bounds and costs that changed
        old = np.ones(model.n_cols, dtype=bool)
        old[add_c] = False
        cp_, lo, hi = col_pos[old], model.col_lower[old], model.col_upper[old]
        ch = (self._col_lower[cp_] != lo) | (self._col_upper[cp_] != hi)
        if ch.any():
            idx = cp_[ch].astype(np.int32)
            h.changeColsBounds(len(idx), idx, lo[ch], _finite(hi[ch], inf))
            self._col_lower[idx], self._col_upper[idx] = lo[ch], hi[ch]
        cost = model.cost[old]
        ch = self._cost[cp_] != cost
        if ch.any():
            idx = cp_[ch].astype(np.int32)
            h.changeColsCost(len(idx), idx, cost[ch])
            self._cost[idx] = cost[ch]
        old = np.ones(model.n_rows, dtype=bool)
        old[add_r] = False
        rp, lo, hi = row_pos[old], model.row_lower[old], model.row_upper[old]
        ch = (self._row_lower[rp] != lo) | (self._row_upper[rp] != hi)
        if ch.any():
            idx = rp[ch].astype(np.int32)
            h.changeRowsBounds(len(idx), idx, _finite(lo[ch], inf), _finite(hi[ch], inf))
            self._row_lower[idx], self._row_upper[idx] = lo[ch], hi[ch]
        return (
            True,
            (
                f"warm: +{len(add_c)} columns, +{len(add_r)} rows, "
                f"{int(gone_c.sum())} columns and {int(gone_r.sum())} rows relaxed"
            ),
            col_pos,
        )


def _common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``a`` and in ``b`` of the keys in both, in the same order."""
    _, ia, ib = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    return ia, ib
