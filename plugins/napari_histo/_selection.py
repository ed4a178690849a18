"""Keeps the table row, the layer's selected label and the camera in step.

Clicking a row selects the fiber in the labels layer and centres the camera on it; a click
(not a drag) on a fiber in the canvas, or napari's label picker, selects its row.
"""

from __future__ import annotations

import numpy as np

from histo.review.queue import walk_field_px
from napari_histo._layers import center_on, label_at


class SelectionSync:
    """Table <-> labels layer <-> camera for a :class:`MyofiberReviewWidget`."""

    def __init__(self, widget):
        self.widget = widget
        self.ui = widget.ui
        self.model = widget.model
        self._syncing = False
        self._field = (None, None)  # (session key, walk field in data pixels)
        self.ui.table.selectionModel().currentRowChanged.connect(self._on_row_changed)
        self.ui.selected_only.toggled.connect(self._on_selected_only)
        widget.viewer.mouse_drag_callbacks.append(self._on_canvas_drag)

    def connect_layer(self, layer) -> None:
        layer.events.selected_label.connect(self._on_selected_label)
        layer.show_selected_label = self.ui.selected_only.isChecked()

    def disconnect_layer(self, layer) -> None:
        try:
            layer.events.selected_label.disconnect(self._on_selected_label)
        except (TypeError, ValueError, RuntimeError):
            pass

    def selected_label(self) -> int | None:
        """The fiber selected in the table (or, failing that, in the layer)."""
        index = self.ui.table.currentIndex()
        if index.isValid():
            label = self.model.label_at(index.row())
            if label:
                return label
        layer, session = self.widget.layer, self.widget.session
        if layer is not None and session is not None:
            label = int(layer.selected_label)
            if session.row(label) is not None:
                return label
        return None

    def select_row(self, label: int) -> None:
        """Select and show the row of ``label`` without moving the camera."""
        row = self.model.row_of(label)
        if row is None:
            return
        self._syncing = True
        try:
            self.ui.table.selectRow(row)
            self.ui.table.scrollTo(self.model.index(row, 0))
        finally:
            self._syncing = False

    def field_px(self) -> float | None:
        """Side of the field shown around a fiber (data pixels): one fixed zoom per slide."""
        session = self.widget.session
        if session is None:
            return None
        key = (id(session), session.version)
        if self._field[0] != key:
            self._field = (key, walk_field_px(session.fibers))
        return self._field[1]

    def center_on_label(self, label: int) -> None:
        """Centre the camera on a fiber at the slide's fixed review zoom."""
        session, layer = self.widget.session, self.widget.layer
        row = session.row(label) if session is not None else None
        if row is None or layer is None:
            return
        bbox = None
        if "bbox_y0_px" in row:
            bbox = tuple(float(row[c]) for c in ("bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px"))
        center_on(self.widget.viewer, layer, (float(row["centroid_y_px"]), float(row["centroid_x_px"])), bbox,
                  field_px=self.field_px())

    def show_label(self, label: int) -> None:
        """Select a fiber in the layer and the table (when listed) and centre on it.

        A fiber the table's filter hides is still selected in the layer, and the table's
        current row is cleared, so flags go to this fiber and not to a stale row.
        """
        layer = self.widget.layer
        if layer is None:
            return
        self._syncing = True
        try:
            layer.selected_label = int(label)
        finally:
            self._syncing = False
        if self.model.row_of(label) is None:
            self._syncing = True
            try:
                self.ui.table.clearSelection()
                self.ui.table.setCurrentIndex(self.model.index(-1, -1))
            finally:
                self._syncing = False
        else:
            self.select_row(label)
        self.center_on_label(label)

    def keep_place(self, label: int, row_before: int | None) -> None:
        """After a flag hid ``label``'s row (a filtered list), select the row now in its place."""
        if row_before is None or self.model.row_of(label) is not None:
            return
        n = self.model.rowCount()
        if n:
            self.ui.table.selectRow(min(row_before, n - 1))  # selects the fiber and centres on it

    def _on_row_changed(self, current, _previous) -> None:
        layer = self.widget.layer
        if self._syncing or layer is None or not current.isValid():
            return
        label = self.model.label_at(current.row())
        if label is None:
            return
        self._syncing = True
        try:
            layer.selected_label = label
        finally:
            self._syncing = False
        self.center_on_label(label)

    def _on_selected_label(self, _event=None) -> None:
        if self._syncing or self.widget.layer is None:
            return
        self.select_row(int(self.widget.layer.selected_label))

    def _on_selected_only(self, checked: bool) -> None:
        if self.widget.layer is not None:
            self.widget.layer.show_selected_label = bool(checked)

    def _on_canvas_drag(self, viewer, event):
        """A click (not a drag) on a fiber selects it, whichever layer is active in pan mode."""
        layer, session = self.widget.layer, self.widget.session
        if layer is None or session is None or event.button != 1:
            return
        active = viewer.layers.selection.active
        if active is not None and str(getattr(active, "mode", "pan_zoom")) not in ("pan_zoom", "pick"):
            return
        start = np.asarray(event.pos, dtype=float)
        moved = False
        yield
        while event.type == "mouse_move":
            moved = moved or float(np.abs(np.asarray(event.pos, dtype=float) - start).max()) > 3
            yield
        if not moved:
            label = label_at(layer, event.position)
            if label > 0 and session.row(label) is not None:
                layer.selected_label = label
