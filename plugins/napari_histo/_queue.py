"""The review walk of the dock widget: the queue of doubtful fibers, stepped with the keyboard.

Space steps to the next queued fiber (:class:`histo.review.queue.ReviewQueue`: SAD candidates,
small fibers, objects with a low fiber score, rejected objects), Shift+Space back. Each step
selects the fiber, centres it at the slide's fixed review zoom, outlines it and its
neighbours in a "review focus" shapes layer, and shows its measurements under the table. A
flag moves on to the next fiber, so one key per fiber reviews the slide: in the canvas a
single key (S confirm SAD, N not SAD, Delete exclude, R restore, C clear; napari's labels
layer leaves these keys free), anywhere the Shift+letter keys of the flag buttons. U / Shift+U undo and redo flags; "Exclude in shape" excludes every fiber whose centre
lies inside the shapes drawn in a napari Shapes layer (one undo step). Moving on with Space
(or Next) records the fiber left behind as *seen*: confirmed as the model outlined it, saved
in ``review.json`` and learned from by ``histo train --from-reviews``.

While a labels tool that paints is active, Space keeps napari's meaning (hold to pan).
The queue itself, its order and the geometry are pure code in :mod:`histo.review`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from napari.layers import Shapes
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QShortcut, QSizePolicy, QVBoxLayout, QWidget
from skimage.measure import approximate_polygon

from histo.review.colours import outline_palette
from histo.review.queue import ReviewQueue, describe_fiber, focus_outlines, local_neighbours
from histo.review.region import ellipse_polygon, labels_inside_polygon
from histo.score.classes import fiber_class

#: (action, napari key binding, Qt shortcut, button text, tooltip)
WALK_KEYS = (
    ("previous", "Shift-Space", "Shift+Space", "◀ Previous", "Previous fiber of the review queue (Shift+Space)"),
    ("next", "Space", "Space", "Next ▶", "Next fiber of the review queue: SAD candidates, small fibers, "
                                        "doubtful objects (Space). A flag moves on by itself."),
    ("undo", "U", "U", "Undo flag", "Undo the last flag or bulk exclusion (U)"),
    ("redo", "Shift-U", "Shift+U", "Redo flag", "Redo the last undone flag (Shift+U)"),
)
#: One-key flags in the canvas (no modifier: one physical key per fiber during the walk), beside
#: the Shift+letter flags of the buttons. (napari key binding, flag or None to clear)
CANVAS_FLAG_KEYS = (("S", "confirmed_sad"), ("N", "not_sad"), ("Delete", "excluded"),
                    ("R", "restored"), ("C", None))
#: Name of the shapes layer outlining the current fiber and its neighbours.
FOCUS_LAYER = "review focus"
#: Colours the focus outline may take (chosen against the image, like the class colours).
FOCUS_CANDIDATES = {"focus": ((255, 255, 255), (255, 255, 0), (0, 0, 0))}
#: Modes of a labels layer in which Space keeps napari's "hold to pan".
_PAINT_MODES = ("paint", "erase", "fill", "polygon")


class QueuePanel(QWidget):
    """Walk buttons, the current fiber's measurements, and "Exclude in shape"."""

    def __init__(self):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(2)
        self.buttons: dict[str, QPushButton] = {}
        for action, _, _, text, tip in WALK_KEYS:
            button = QPushButton(text)
            button.setToolTip(tip)
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self.buttons[action] = button
            row.addWidget(button)
        self.exclude_button = QPushButton("Exclude in shape")
        self.exclude_button.setToolTip("Exclude every fiber whose centre lies inside the shapes of "
                                       "the selected (or top) Shapes layer; U undoes")
        self.exclude_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        row.addWidget(self.exclude_button)
        layout.addLayout(row)
        self.info = QLabel("Review queue: press Space to walk the doubtful fibers.")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.info)


class ReviewWalk:
    """Keyboard walk over the review queue for a :class:`MyofiberReviewWidget`."""

    def __init__(self, widget):
        self.widget = widget
        self.viewer = widget.viewer
        self.queue: ReviewQueue | None = None
        self._queue_for = (None, None)  # (id(session), session.version)
        self.focus_layer: Shapes | None = None
        self.panel = QueuePanel()
        actions = {"previous": partial(self.step, -1), "next": partial(self.step, 1),
                   "undo": widget.actions.undo_flags, "redo": widget.actions.redo_flags}
        for action, napari_key, qt_key, _, _ in WALK_KEYS:
            self.panel.buttons[action].clicked.connect(actions[action])
            shortcut = QShortcut(QKeySequence(qt_key), widget)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(actions[action])
            handler = self._space_handler(action) if "Space" in napari_key else self._key_handler(actions[action], action)
            self.viewer.bind_key(napari_key, handler, overwrite=True)
        self.panel.exclude_button.clicked.connect(self.exclude_in_shapes)
        for napari_key, flag in CANVAS_FLAG_KEYS:
            self.viewer.bind_key(napari_key, self._key_handler(partial(widget.actions.flag_selected, flag),
                                                               f"flag_{flag or 'clear'}"), overwrite=True)

    # -- key handlers (napari reads ``__name__``) -----------------------------------------------
    def _key_handler(self, func, action: str):
        def handler(_viewer=None):
            func()

        handler.__name__ = handler.__qualname__ = f"histo_walk_{action}"
        return handler

    def _space_handler(self, action: str):
        delta = 1 if action == "next" else -1

        def handler(viewer):
            layer = viewer.layers.selection.active
            mode = str(getattr(getattr(layer, "mode", None), "value", getattr(layer, "mode", "")))
            if layer is not None and mode in _PAINT_MODES:  # napari's hold-Space-to-pan while painting
                layer.mode = "pan_zoom"
                yield
                layer.mode = mode
                return
            self.step(delta)
            yield

        handler.__name__ = handler.__qualname__ = f"histo_walk_{action}"
        return handler

    # -- the queue ------------------------------------------------------------------------------
    def current_queue(self) -> ReviewQueue | None:
        """The queue of the session under review, rebuilt at the same place after Recompute."""
        session = self.widget.session
        if session is None:
            self.queue, self._queue_for = None, (None, None)
            return None
        key = (id(session), session.version)
        if self.queue is None or self._queue_for[0] != key[0]:
            self.queue = ReviewQueue.from_fibers(session.fibers)
            if self.focus_layer is not None and self.focus_layer in self.viewer.layers:
                self.focus_layer.data = []  # outlines of another slide's fiber
        elif self._queue_for[1] != key[1]:
            self.queue = self.queue.rebuilt(session.fibers)
        self._queue_for = key
        return self.queue

    def step(self, delta: int = 1, *, mark_seen: bool = True) -> int | None:
        """Go to the next (``delta`` 1) or previous (-1) queued fiber; returns its label.

        Moving on (next) from a fiber records it as seen, confirmed as outlined
        (:meth:`histo.review.session.ReviewSession.mark_seen`), unless ``mark_seen`` is False
        (the move after a flag: the flag says what the reviewer decided).
        """
        queue = self.current_queue()
        if queue is None:
            return None
        if not len(queue):
            self._show_info("Review queue: empty (no SAD candidates, small fibers or doubtful objects).")
            return None
        left = queue.current if delta > 0 and mark_seen else None
        label = queue.next() if delta > 0 else queue.previous()
        if left is not None:
            self.widget.session.mark_seen(left)
        if label is None:
            flagged = sum(1 for k in queue.labels if int(k) in self.widget.session.flags)
            self._show_info(f"End of the review queue: {flagged} of {len(queue)} fibers flagged. "
                            "Shift+Space goes back.")
            self._draw_focus(None)
            return None
        self.show(label)
        return label

    def after_flag(self, label: int) -> bool:
        """A flag during the walk: move on to the next fiber (True when it did)."""
        queue = self.current_queue()
        if queue is None or queue.current != int(label):
            return False
        self.step(1, mark_seen=False)
        return True

    def show(self, label: int) -> None:
        """Select, centre and outline a fiber and show its measurements."""
        queue = self.current_queue()
        if queue is not None:
            queue.go_to(label)
        self.widget.selection.show_label(label)
        self._draw_focus(label)
        self.update_info()

    def update_info(self) -> None:
        """The current fiber's measurements and the queue's progress under the table."""
        queue, session = self.queue, self.widget.session
        if queue is None or session is None or queue.current is None:
            return
        label = queue.current
        row = session.row(label)
        if row is None:
            return
        row = row.copy()
        row["fiber_class"] = fiber_class(pd.DataFrame([row])).iloc[0]
        step, total = queue.progress()
        self._show_info(f"Queue {step}/{total}: " + describe_fiber(row, reason=queue.reason_of(label)))

    def _show_info(self, text: str) -> None:
        self.panel.info.setText(text)

    # -- the focus outlines -----------------------------------------------------------------------
    def _ensure_focus_layer(self) -> Shapes | None:
        layer = self.widget.layer
        if layer is None:
            return None
        if self.focus_layer is None or self.focus_layer not in self.viewer.layers:
            self.focus_layer = Shapes(name=FOCUS_LAYER, scale=layer.scale[-2:], translate=layer.translate[-2:],
                                      face_color="transparent", opacity=1.0)
            self.focus_layer.editable = False
            self.viewer.add_layer(self.focus_layer)
            self.viewer.layers.selection.active = layer  # keys and clicks stay with the fibers
        return self.focus_layer

    def _focus_colour(self) -> tuple[float, float, float, float]:
        backgrounds = getattr(getattr(self.widget, "legend", None), "backgrounds", None)
        if backgrounds is None:
            return (1.0, 1.0, 1.0, 1.0)
        r, g, b = outline_palette(backgrounds, classes=("focus",), candidates=FOCUS_CANDIDATES)["focus"]
        return (r / 255, g / 255, b / 255, 1.0)

    def _draw_focus(self, label: int | None) -> None:
        session = self.widget.session
        focus = self._ensure_focus_layer() if label is not None else self.focus_layer
        if focus is None:
            return
        focus.data = []
        if label is None or session is None:
            return
        row = session.row(label)
        if row is None:
            return
        field = self.widget.selection.field_px() or 100.0
        cy, cx = float(row["centroid_y_px"]), float(row["centroid_x_px"])
        if session.labels is not None:
            bbox = tuple(float(row[c]) for c in ("bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px"))
            gap_px = session.settings.gap_px(session.pixel_size_um)
            neighbours = local_neighbours(session.labels, label, bbox, max_gap_px=gap_px)
            half = field
            outlines = focus_outlines(session.labels, [label, *neighbours.tolist()],
                                      (cy - half, cx - half, cy + half, cx + half))
        else:  # whole slide without labels in memory: the fiber's box
            y0, x0, y1, x1 = (float(row[c]) for c in ("bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px"))
            outlines = {label: np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]]) - 0.5}
        if not outlines:
            return
        colour = self._focus_colour()
        width = max(field / 120.0, 1.0)
        polys, widths, colours = [], [], []
        for k, poly in outlines.items():
            # closed paths of few vertices: napari triangulates no face for a path, and a
            # pixel-edge outline simplified to 0.75 px keeps its look with ~5x fewer vertices
            ring = approximate_polygon(np.vstack([poly, poly[:1]]), tolerance=0.75)
            polys.append(ring)
            widths.append(width * (2.0 if k == label else 0.7))
            colours.append(colour if k == label else (*colour[:3], 0.6))
        focus.add_paths(polys, edge_width=widths, edge_color=colours)

    # -- bulk exclusion ---------------------------------------------------------------------------
    def _shapes_layer(self) -> Shapes | None:
        active = self.viewer.layers.selection.active
        if isinstance(active, Shapes) and active is not self.focus_layer and len(active.data):
            return active
        drawn = [layer for layer in self.viewer.layers
                 if isinstance(layer, Shapes) and layer is not self.focus_layer and len(layer.data)]
        return drawn[-1] if drawn else None

    def polygons_in_labels(self, shapes: Shapes) -> list[np.ndarray]:
        """The areas of a Shapes layer as (y, x) polygons in the labels layer's pixels."""
        layer = self.widget.layer
        out = []
        for data, kind in zip(shapes.data, shapes.shape_type):
            pts = np.asarray(data, dtype=float)[:, -2:]
            if kind == "ellipse":
                pts = ellipse_polygon(pts)
            elif kind not in ("polygon", "rectangle"):
                continue  # lines and paths enclose nothing
            world = np.array([shapes.data_to_world(p) for p in pts])[:, -2:]
            out.append(np.array([layer.world_to_data(w) for w in world])[:, -2:])
        return out

    def exclude_in_shapes(self) -> list[int]:
        """Exclude every fiber whose centre lies inside the drawn shapes (one undo step)."""
        session = self.widget.session
        if session is None or self.widget.layer is None:
            return []
        shapes = self._shapes_layer()
        if shapes is None:
            self.widget.status("Draw a polygon, rectangle or ellipse in a Shapes layer (Layers > New "
                               "Shapes layer) around the fibers to exclude, then press Exclude in shape.")
            return []
        polygons = self.polygons_in_labels(shapes)
        if not polygons:
            self.widget.status(f"{shapes.name} holds only lines or paths; draw a closed shape.")
            return []
        inside = np.unique(np.concatenate([labels_inside_polygon(session.fibers, p) for p in polygons]))
        changes = {int(k): "excluded" for k in inside if session.flags.get(int(k)) != "excluded"}
        changed = self.widget.actions.flag_labels(changes, f"Excluded inside {shapes.name}")
        self.widget.status(f"Excluded {len(changed)} fiber(s) inside the shapes of {shapes.name} "
                           f"({len(inside)} inside; U undoes).")
        self.viewer.layers.selection.active = self.widget.layer
        return changed
