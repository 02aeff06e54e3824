"""Warm re-solves of the planning LP: keep the HiGHS model loaded and edit it in place.

A CSMS re-plans on every event. Rebuilding the arrays is cheap (milliseconds); what
costs is HiGHS starting from scratch. :class:`LpSession` keeps the loaded model and,
for the next problem on the same time grid, maps every row and column by its stable
key (:func:`.lp.key`): new rows and columns are appended (rows basic, columns at 0),
rows and columns that disappeared are relaxed (free row, column fixed at 0), and
bounds, costs and changed coefficients are updated in place. HiGHS then starts from
the previous basis.

A new price curve is re-solved cold: hot starts from the old basis after a price
change were measured erratic (up to 27x slower than cold, design.md section 7).
Everything else (arrivals, departures, new limits, new energy requests) is warm.
"""

from __future__ import annotations

import numpy as np

from ..problem import ProblemArrays
from .lp import LpModel, _highs, _run, build_lp

__all__ = ["LpSession"]


class LpSession:
    """A HiGHS LP kept loaded between re-plans (LP relaxation, no V2G, no MILP).

    Parameters
    ----------
    time_limit_s : float, optional
        HiGHS time limit per run.
    """

    def __init__(self, time_limit_s: float | None = None) -> None:
        self.time_limit_s = time_limit_s
        self.h = None
        self.col_keys: np.ndarray | None = None  # key of each HiGHS column
        self.row_keys: np.ndarray | None = None
        self._pairs = np.zeros(0, np.int64)  # (column << 32) + row of each loaded coefficient
        self._values = np.zeros(0)
        self.model: LpModel | None = None
        self.last = {"warm": False, "reason": "first solve"}

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
        warm, reason = False, "first solve"
        if self.h is not None:
            if prices_changed:
                reason = "new prices: cold re-solve"
            else:
                warm, reason = self._update(model, verify)
        if not warm:
            self._load(model)
        status = _run(self.h)
        x_h = np.asarray(self.h.getSolution().col_value)
        pos = self._positions(self.col_keys, model.col_keys)
        x = x_h[pos]
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
        self.col_keys = model.col_keys.copy()
        self.row_keys = model.row_keys.copy()
        m = model.matrix.tocoo()
        self._pairs = (m.col.astype(np.int64) << 32) + m.row.astype(np.int64)
        self._values = m.data.copy()

    @staticmethod
    def _positions(have: np.ndarray, want: np.ndarray) -> np.ndarray:
        """Index in ``have`` of every key of ``want`` (all must be present)."""
        order = np.argsort(have, kind="stable")
        return order[np.searchsorted(have[order], want)]

    def _update(self, model: LpModel, verify: bool = True) -> tuple[bool, str]:
        """Edit the loaded model into ``model``; False if that is not possible."""
        import highspy

        inf = highspy.kHighsInf
        h = self.h
        old_c, old_r = self.col_keys, self.row_keys
        new_c, new_r = model.col_keys, model.row_keys
        if model.integrality is not None and model.integrality.any():
            return False, "MILP: cold"
        in_old_c = np.isin(new_c, old_c)
        in_old_r = np.isin(new_r, old_r)
        gone_c = ~np.isin(old_c, new_c)
        gone_r = ~np.isin(old_r, new_r)
        m = model.matrix.tocoo()
        if verify:
            # coefficients between rows and columns that both existed must be unchanged
            both = in_old_r[m.row] & in_old_c[m.col]
            rpos = self._positions(old_r, new_r[m.row[both]])
            cpos = self._positions(old_c, new_c[m.col[both]])
            new_pairs = (cpos.astype(np.int64) << 32) + rpos.astype(np.int64)
            old_pairs, value = self._pairs, self._values
            order = np.argsort(old_pairs)
            found = np.minimum(np.searchsorted(old_pairs[order], new_pairs), len(old_pairs) - 1)
            same = old_pairs[order][found] == new_pairs
            if not same.all() or not np.allclose(
                value[order][found], m.data[both], rtol=1e-12, atol=1e-12
            ):
                return False, "coefficients changed: cold"
            old_col_of, old_row_of = old_pairs >> 32, old_pairs & 0xFFFFFFFF
            if int(both.sum()) != int((~gone_r[old_row_of] & ~gone_c[old_col_of]).sum()):
                return False, "coefficients removed: cold"

        # append new rows (empty, then filled by their new and old columns) and columns
        add_r = np.flatnonzero(~in_old_r)
        if len(add_r):
            lo = np.where(np.isinf(model.row_lower[add_r]), -inf, model.row_lower[add_r])
            hi = np.where(np.isinf(model.row_upper[add_r]), inf, model.row_upper[add_r])
            h.addRows(
                len(add_r), lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)
            )
            self.row_keys = np.concatenate([self.row_keys, new_r[add_r]])
        add_c = np.flatnonzero(~in_old_c)
        csc = model.matrix.tocsc()
        if len(add_c):
            sub = csc[:, add_c].tocsc()
            rows_h = self._positions(self.row_keys, new_r[sub.indices]).astype(np.int32)
            lo = model.col_lower[add_c]
            hi = np.where(np.isinf(model.col_upper[add_c]), inf, model.col_upper[add_c])
            h.addCols(
                len(add_c),
                model.cost[add_c],
                lo,
                hi,
                sub.nnz,
                sub.indptr.astype(np.int32),
                rows_h,
                sub.data,
            )
            self.col_keys = np.concatenate([self.col_keys, new_c[add_c]])
        # new rows' coefficients on old columns
        new_row_old_col = ~in_old_r[m.row] & in_old_c[m.col]
        if new_row_old_col.any():
            rr = self._positions(self.row_keys, new_r[m.row[new_row_old_col]])
            cc = self._positions(self.col_keys, new_c[m.col[new_row_old_col]])
            for r, c, v in zip(rr, cc, m.data[new_row_old_col], strict=True):
                h.changeCoeff(int(r), int(c), float(v))
            self._pairs = np.concatenate([self._pairs, (cc.astype(np.int64) << 32) + rr])
            self._values = np.concatenate([self._values, m.data[new_row_old_col]])
        # relax what disappeared
        if gone_c.any():
            idx = np.flatnonzero(gone_c).astype(np.int32)
            h.changeColsBounds(len(idx), idx, np.zeros(len(idx)), np.zeros(len(idx)))
            h.changeColsCost(len(idx), idx, np.zeros(len(idx)))
        if gone_r.any():
            idx = np.flatnonzero(gone_r).astype(np.int32)
            h.changeRowsBounds(len(idx), idx, np.full(len(idx), -inf), np.full(len(idx), inf))
        # bounds and costs of everything that exists now
        cpos = self._positions(self.col_keys, new_c).astype(np.int32)
        rpos = self._positions(self.row_keys, new_r).astype(np.int32)
        h.changeColsBounds(
            len(cpos),
            cpos,
            model.col_lower,
            np.where(np.isinf(model.col_upper), inf, model.col_upper),
        )
        h.changeColsCost(len(cpos), cpos, model.cost)
        h.changeRowsBounds(
            len(rpos),
            rpos,
            np.where(np.isinf(model.row_lower), -inf, model.row_lower),
            np.where(np.isinf(model.row_upper), inf, model.row_upper),
        )
        return True, (
            f"warm: +{len(add_c)} columns, +{len(add_r)} rows, "
            f"{int(gone_c.sum())} columns and {int(gone_r.sum())} rows relaxed"
        )
