"""The per-fiber table as a Qt model: sorted and filtered with numpy, fast for many rows.

:class:`FiberTableModel` shows a chosen set of columns of the per-fiber DataFrame. Sorting
and filtering are done on whole columns with numpy (one ``argsort`` and one boolean mask),
never row by row in Python, so tens of thousands of fibers stay instant; the view asks only
for the visible cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt
from qtpy.QtGui import QColor

from histo.review.flags import flag_label
from histo.score.classes import CLASS_COLORS, fiber_class


@dataclass(frozen=True)
class Column:
    """One displayed column: its header, the DataFrame column(s) it reads and its format."""

    header: str
    sources: tuple[str, ...]  # first one present in the table is shown
    fmt: str = "%.1f"  # printf-style, for numbers; booleans show as a tick


COLUMNS: tuple[Column, ...] = (
    Column("label", ("label",), "%.0f"),
    Column("class", ("fiber_class",)),
    Column("flag", ("review_flag",)),
    Column("min Feret µm", ("min_feret_um",)),
    Column("min Feret px", ("min_feret_px",)),
    Column("area µm²", ("area_um2",), "%.0f"),
    Column("area px", ("area_px",), "%.0f"),
    Column("max Feret µm", ("max_feret_um",)),
    Column("max Feret px", ("max_feret_px",)),
    Column("angularity", ("angularity",), "%.2f"),
    Column("darkness", ("darkness",), "%.2f"),
    Column("circularity", ("circularity",), "%.2f"),
    Column("solidity", ("solidity",), "%.2f"),
    Column("aspect", ("aspect_ratio",), "%.2f"),
    Column("neighbours", ("n_neighbors",), "%.0f"),
    Column("group", ("atrophy_group",), "%.0f"),
    Column("type", ("fiber_type",)),
    Column("central nuclei", ("n_central_nuclei",), "%.0f"),
    Column("edge", ("is_edge",)),
    Column("counted", ("counted",)),
)

#: Filter choices besides the display classes.
EXTRA_FILTERS: tuple[str, ...] = ("all", "flagged", "counted")

SORT_ROLE = Qt.ItemDataRole.UserRole
_TEXT_HEADERS = ("class", "flag", "type")


@dataclass
class TableData:
    """Everything the model shows, computed from the table once (:func:`prepare_table`)."""

    columns: list[Column]
    source_names: list[str]
    text: list[np.ndarray]
    keys: list[np.ndarray]
    labels: np.ndarray
    classes: np.ndarray
    flags: np.ndarray
    counted: np.ndarray
    row_of_label: dict[int, int]


def _display_table(fibers: pd.DataFrame) -> pd.DataFrame:
    df = fibers.reset_index(drop=True)
    if "fiber_class" not in df:
        df = df.assign(fiber_class=fiber_class(df).to_numpy())
    if "review_flag" in df:  # "SAD (confirmed)", not "confirmed_sad"
        df = df.assign(review_flag=[flag_label(f) for f in df["review_flag"].fillna("").to_numpy(dtype=object)])
    return df


def prepare_table(fibers: pd.DataFrame) -> TableData:
    """The model's arrays for a per-fiber table: display text and sort keys of every shown
    column, formatted with numpy. Pure and Qt-free, so a worker thread prepares it and the GUI
    thread only swaps it in (:meth:`FiberTableModel.set_table`)."""
    df = _display_table(fibers)
    columns, names = [], []
    for col in COLUMNS:
        src = next((s for s in col.sources if s in df), None)
        if src is not None:
            columns.append(col)
            names.append(src)
    labels = df["label"].to_numpy(dtype=np.int64)
    flags = df["review_flag"].fillna("").astype(str) if "review_flag" in df else pd.Series([""] * len(df))
    return TableData(
        columns=columns, source_names=names,
        text=[np.array(_format(df[n], c.fmt), dtype=object) for c, n in zip(columns, names)],  # writable copies:
        keys=[np.array(_sort_key(df[n]), dtype=float) for n in names],  # update_rows changes them in place
        labels=labels,
        classes=np.array(df["fiber_class"].astype(str).to_numpy(dtype=object), dtype=object),
        flags=np.array(flags.to_numpy(dtype=object), dtype=object),
        counted=np.array(df["counted"].fillna(False).to_numpy(dtype=bool) if "counted" in df else np.ones(len(df), bool)),
        row_of_label={int(v): i for i, v in enumerate(labels)},
    )


def _format(series: pd.Series, fmt: str) -> np.ndarray:
    """Display strings of a whole column at once (printf-style ``fmt`` for numbers)."""
    if pd.api.types.is_bool_dtype(series):
        return np.where(series.fillna(False).to_numpy(dtype=bool), "✓", "").astype(object)
    if pd.api.types.is_numeric_dtype(series):
        values = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
        missing = np.isnan(values)
        text = np.char.mod(fmt, np.where(missing, 0.0, values)).astype(object)
        text[missing] = ""
        return text
    return series.astype("string").fillna("").to_numpy(dtype=object)


def _sort_key(series: pd.Series) -> np.ndarray:
    """A numpy array that sorts like the column, missing values last."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        key = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
        return np.where(np.isnan(key), np.inf, key)
    codes = pd.Categorical(series.astype("string").fillna("\uffff")).codes
    return codes.astype(float)


class FiberTableModel(QAbstractTableModel):
    """Qt table model over a per-fiber DataFrame, with numpy sorting and filtering."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._columns: list[Column] = []
        self._source_names: list[str] = []
        self._text: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._labels = np.zeros(0, dtype=np.int64)
        self._classes = np.zeros(0, dtype=object)
        self._flags = np.zeros(0, dtype=object)
        self._counted = np.zeros(0, dtype=bool)
        self._order = np.zeros(0, dtype=np.int64)  # displayed row -> table row
        self._row_of_label: dict[int, int] = {}
        self._table_row: dict[int, int] = {}  # label -> row of the table (unfiltered)
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._filter_text = ""
        self._filter_class = "all"
        self.palette = dict(CLASS_COLORS)  # class swatches; the legend sets the canvas's colours

    # -- data ----------------------------------------------------------------------------
    def set_fibers(self, fibers: pd.DataFrame) -> None:
        """Show a new table, keeping the current sort and filter."""
        self.set_table(prepare_table(fibers))

    def set_table(self, data: TableData) -> None:
        """Show prepared table data (:func:`prepare_table`), keeping the sort and filter."""
        self.beginResetModel()
        self._columns, self._source_names = data.columns, data.source_names
        self._text, self._keys = data.text, data.keys
        self._labels, self._classes, self._flags, self._counted = data.labels, data.classes, data.flags, data.counted
        self._table_row = data.row_of_label
        self._refresh_order()
        self.endResetModel()

    def update_rows(self, fibers: pd.DataFrame, labels) -> None:
        """Refresh the rows of some labels from ``fibers`` in place (after a flag): only those
        cells are formatted again; the order and the filter stay as they are, so a flagged
        row never jumps away from under the reviewer."""
        wanted = [int(v) for v in labels if int(v) in self._table_row]
        if not wanted or not self._columns:
            return
        sub = _display_table(fibers[fibers["label"].isin(wanted)])
        rows = np.array([self._table_row[int(v)] for v in sub["label"]], dtype=np.int64)
        for i, (col, name) in enumerate(zip(self._columns, self._source_names)):
            if name in sub:
                self._text[i][rows] = _format(sub[name], col.fmt)
                if pd.api.types.is_bool_dtype(sub[name]) or pd.api.types.is_numeric_dtype(sub[name]):
                    self._keys[i][rows] = _sort_key(sub[name])  # text keys are codes over the whole column
        self._classes[rows] = sub["fiber_class"].astype(str).to_numpy(dtype=object)
        if "review_flag" in sub:
            self._flags[rows] = sub["review_flag"].fillna("").astype(str).to_numpy(dtype=object)
        if "counted" in sub:
            self._counted[rows] = sub["counted"].fillna(False).to_numpy(dtype=bool)
        for r in rows:
            shown = np.flatnonzero(self._order == r)
            if len(shown):
                self.dataChanged.emit(self.index(int(shown[0]), 0), self.index(int(shown[0]), len(self._columns) - 1))

    def set_filter(self, text: str = "", fiber_class: str = "all") -> None:
        """Keep rows whose label, class or flag contains ``text`` and whose class matches.

        ``fiber_class`` is ``"all"``, ``"flagged"``, ``"counted"`` or a display class.
        """
        self.beginResetModel()
        self._filter_text = text.strip().lower()
        self._filter_class = fiber_class
        self._refresh_order()
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:  # noqa: D401
        """Sort by a column (Qt calls this when a header is clicked)."""
        if not 0 <= column < len(self._columns):
            return
        self.layoutAboutToBeChanged.emit()
        self._sort = (column, order)
        self._refresh_order()
        self.layoutChanged.emit()

    def _refresh_order(self) -> None:
        keep = np.ones(len(self._labels), dtype=bool)
        if self._filter_class == "flagged":
            keep &= self._flags != ""
        elif self._filter_class == "counted":
            keep &= self._counted
        elif self._filter_class != "all":
            keep &= self._classes == self._filter_class
        if self._filter_text:
            t = self._filter_text
            hay = np.char.lower(
                np.char.add(np.char.add(self._labels.astype(str), " "),
                            np.char.add(self._classes.astype(str), np.char.add(" ", self._flags.astype(str))))
            )
            keep &= np.char.find(hay, t) >= 0
        rows = np.flatnonzero(keep)
        if self._sort is not None:
            col, order = self._sort
            idx = np.argsort(self._keys[col][rows], kind="stable")
            if order == Qt.SortOrder.DescendingOrder:
                idx = idx[::-1]
            rows = rows[idx]
        self._order = rows
        self._row_of_label = {int(self._labels[r]): i for i, r in enumerate(rows)}

    # -- lookups ------------------------------------------------------------------------
    def label_at(self, row: int) -> int | None:
        """The fiber label shown in a displayed row."""
        if 0 <= row < len(self._order):
            return int(self._labels[self._order[row]])
        return None

    def row_of(self, label: int) -> int | None:
        """The displayed row of a label (None when filtered out or absent)."""
        return self._row_of_label.get(int(label))

    def column_of(self, header: str) -> int | None:
        """Index of a displayed column by header."""
        return next((i for i, c in enumerate(self._columns) if c.header == header), None)

    # -- Qt API --------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self._order[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text[col][row]
        if role == SORT_ROLE:
            return float(self._keys[col][row])
        if role == Qt.ItemDataRole.DecorationRole and self._columns[col].header == "class":
            return QColor(*self.palette.get(self._classes[row], (255, 255, 255)))
        if role == Qt.ItemDataRole.TextAlignmentRole and self._columns[col].header not in _TEXT_HEADERS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._columns[section].header
        return None
