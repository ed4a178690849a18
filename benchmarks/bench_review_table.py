"""The review table with many fibers: numpy sorting/filtering vs Qt's QSortFilterProxyModel.

``napari_histo._table_model.FiberTableModel`` sorts and filters whole columns with numpy.
The baseline is the textbook Qt design: a plain QAbstractTableModel over the same DataFrame
behind a QSortFilterProxyModel, which compares rows one pair at a time through Python.
Both sort 10,000 and 100,000 fibers by min Feret (descending) and filter the SAD ones;
the first rows must agree.

Run: .venv/bin/python benchmarks/bench_review_table.py   (no display needed: offscreen Qt)
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from napari_histo._table_model import FiberTableModel  # noqa: E402


def table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    small = rng.random(n) < 0.2
    return pd.DataFrame({
        "label": np.arange(1, n + 1), "min_feret_um": rng.uniform(10, 90, n),
        "area_um2": rng.uniform(100, 6000, n), "angularity": rng.random(n),
        "darkness": rng.normal(size=n), "circularity": rng.random(n), "is_edge": rng.random(n) < 0.05,
        "counted": True, "is_small": small, "is_sad": small & (rng.random(n) < 0.3),
    })


class NaiveModel(QAbstractTableModel):
    """One cell at a time from the DataFrame (the usual pandas-in-Qt example)."""

    def __init__(self, df):
        super().__init__()
        self.df = df

    def rowCount(self, parent=QModelIndex()):  # noqa: B008, N802
        return len(self.df)

    def columnCount(self, parent=QModelIndex()):  # noqa: B008, N802
        return self.df.shape[1]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.UserRole):
            value = self.df.iat[index.row(), index.column()]
            return float(value) if role == Qt.ItemDataRole.UserRole else str(value)
        return None


class SadFilter(QSortFilterProxyModel):
    sad_only = False

    def filterAcceptsRow(self, row, parent):  # noqa: N802
        return not self.sad_only or bool(self.sourceModel().df["is_sad"].iat[row])


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    app = QApplication.instance() or QApplication([])  # noqa: F841
    for n in (10_000, 100_000):
        df = table(n)
        ours = FiberTableModel()
        t_load = timed(lambda: ours.set_fibers(df))
        col = ours.column_of("min Feret µm")
        t_sort = timed(lambda: ours.sort(col, Qt.SortOrder.DescendingOrder))
        t_filter = timed(lambda: ours.set_filter("", "sad"))

        proxy = SadFilter()
        proxy.setSortRole(Qt.ItemDataRole.UserRole)
        b_load = timed(lambda: proxy.setSourceModel(NaiveModel(df)))
        b_sort = timed(lambda: proxy.sort(1, Qt.SortOrder.DescendingOrder))

        def base_filter():
            proxy.sad_only = True
            proxy.invalidateFilter()
            proxy.rowCount()

        b_filter = timed(base_filter)
        first = [ours.label_at(r) for r in range(3)]
        base = [int(proxy.data(proxy.index(r, 0))) for r in range(3)]
        assert first == base, (first, base)
        print(f"{n:>7} fibers  load  {t_load:6.3f} s vs {b_load:6.3f} s | sort {t_sort:6.3f} s vs "
              f"{b_sort:6.3f} s ({b_sort / t_sort:5.0f}x) | filter {t_filter:6.3f} s vs {b_filter:6.3f} s "
              f"({b_filter / t_filter:5.0f}x)")


if __name__ == "__main__":
    main()
