"""Layout of the "Myofiber review" dock widget: controls only, no behaviour.

:func:`build_ui` creates every control on a parent widget and returns them by name; the
widget module (:mod:`napari_histo._widget`) wires them to the review session.

The dock fits a laptop screen (1366×768): three tabs ("Analyse" for the run settings,
"Review" for the table and the flags, "Figures" for the slide figures and the histogram)
above a progress bar and a status line, so no page has to share its height with another.
Other parts of the plugin add their controls to ``ui.review_extras`` (under the table) or as
more tabs (``ui.tabs.addTab``).
"""

from __future__ import annotations

from types import SimpleNamespace

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from histo.review.options import REFERENCE_CHOICES
from histo.score.classes import CLASS_NAMES
from napari_histo._histogram import FeretHistogram
from napari_histo._summary import SummaryPanel
from napari_histo._table_model import EXTRA_FILTERS

STAIN_CHOICES = ("auto", "he", "nadh", "sdh", "atpase", "esterase", "if", "psr")
METHOD_CHOICES = ("model", "classical")
#: (button text, flag or None to clear, Qt shortcut, napari key binding)
FLAG_ACTIONS = (
    ("Exclude", "excluded", "Shift+X", "Shift-X"),
    ("Confirm SAD", "confirmed_sad", "Shift+S", "Shift-S"),
    ("Not SAD", "not_sad", "Shift+N", "Shift-N"),
    ("Restore fiber", "restored", "Shift+R", "Shift-R"),
    ("Clear flag", None, "Shift+C", "Shift-C"),
)
#: Tab indices of :func:`build_ui`.
TAB_ANALYSE, TAB_REVIEW, TAB_FIGURES = 0, 1, 2
#: Height of a table row in screen pixels.
ROW_HEIGHT_PX = 20


def _channel_spin(tooltip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(-1, 64)
    spin.setSpecialValueText("–")
    spin.setValue(-1)  # none
    spin.setToolTip(tooltip)
    return spin


def _analyse_page(ui: SimpleNamespace) -> QWidget:
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(4, 4, 4, 4)
    ui.image_combo = QComboBox()
    ui.image_combo.setToolTip("Image layer to analyse")
    ui.stain_combo = QComboBox()
    ui.stain_combo.addItems(STAIN_CHOICES)
    ui.channel_spin = _channel_spin("Channel showing the fiber membrane (multichannel images)")
    ui.pixel_spin = QDoubleSpinBox()
    ui.pixel_spin.setRange(0.0, 50.0)
    ui.pixel_spin.setDecimals(4)
    ui.pixel_spin.setSingleStep(0.05)
    ui.pixel_spin.setSpecialValueText("unknown")
    ui.pixel_spin.setSuffix(" µm/px")
    ui.pixel_spin.setToolTip("Micrometres per pixel; pre-filled from the file's metadata. "
                             "“Apply to result” sets it on the slide under review.")
    ui.apply_pixel_button = QPushButton("Apply to result")
    ui.apply_pixel_button.setToolTip("Set this pixel size on the slide under review: the µm "
                                     "columns and every figure are recomputed (saved with Export)")
    pixel_row = QHBoxLayout()
    pixel_row.addWidget(ui.pixel_spin, 2)
    pixel_row.addWidget(ui.apply_pixel_button, 1)
    ui.reference_combo = QComboBox()
    ui.reference_combo.addItems(REFERENCE_CHOICES)
    ui.reference_combo.setToolTip("Normal reference of the fiber size: adult male 40–80 µm, adult "
                                  "female 30–70 µm (Dubowitz), child by age, mouse / rat (relative)")
    ui.age_spin = QDoubleSpinBox()
    ui.age_spin.setRange(0.0, 120.0)
    ui.age_spin.setDecimals(1)
    ui.age_spin.setSpecialValueText("–")
    ui.age_spin.setSuffix(" years")
    ui.age_spin.setToolTip("Age; the child reference needs it")
    ui.type_channels_edit = QLineEdit()
    ui.type_channels_edit.setPlaceholderText("IF types, e.g. I=1, IIa=2")
    ui.type_channels_edit.setToolTip("Immunofluorescence: one channel per fiber type (0-based)")
    ui.nuclei_spin = _channel_spin("Immunofluorescence: the DAPI / nuclear channel (0-based)")
    ui.method_combo = QComboBox()
    ui.method_combo.addItems(METHOD_CHOICES)
    form.addRow("image", ui.image_combo)
    form.addRow("stain", ui.stain_combo)
    form.addRow("channel", ui.channel_spin)
    form.addRow("pixel size", pixel_row)
    form.addRow("reference", ui.reference_combo)
    form.addRow("age", ui.age_spin)
    form.addRow("type channels", ui.type_channels_edit)
    form.addRow("nuclei channel", ui.nuclei_spin)
    form.addRow("method", ui.method_combo)
    row = QHBoxLayout()
    ui.run_button = QPushButton("Segment and score")
    ui.cancel_button = QPushButton("Cancel")
    ui.cancel_button.setEnabled(False)
    row.addWidget(ui.run_button, 2)
    row.addWidget(ui.cancel_button, 1)
    form.addRow(row)
    ui.open_button = QPushButton("Open result folder…")
    ui.open_button.setToolTip("Review a slide scored earlier (RESULTS/<slide-id>/)")
    form.addRow(ui.open_button)
    return page


def _review_page(ui: SimpleNamespace, model) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.setSpacing(4)
    row = QHBoxLayout()
    ui.filter_edit = QLineEdit()
    ui.filter_edit.setPlaceholderText("filter: label, class or flag")
    ui.filter_edit.setClearButtonEnabled(True)
    ui.class_combo = QComboBox()
    ui.class_combo.addItems(list(EXTRA_FILTERS) + [c for c in CLASS_NAMES])
    row.addWidget(ui.filter_edit, 2)
    row.addWidget(ui.class_combo, 1)
    layout.addLayout(row)
    ui.table = QTableView()
    ui.table.setModel(model)
    ui.table.setSortingEnabled(True)
    ui.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    ui.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    ui.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    ui.table.verticalHeader().setVisible(False)
    ui.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT_PX)
    ui.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    ui.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    ui.table.horizontalHeader().setDefaultSectionSize(64)
    ui.table.horizontalHeader().setMinimumSectionSize(24)
    ui.table.horizontalHeader().setResizeContentsPrecision(64)  # size columns from 64 rows, not all
    ui.table.setMinimumHeight(8 * ROW_HEIGHT_PX)
    layout.addWidget(ui.table, 1)
    flags = QGridLayout()
    flags.setSpacing(2)
    ui.flag_buttons = {}
    for i, (text, flag, qt_key, _) in enumerate(FLAG_ACTIONS):
        button = QPushButton(text)
        button.setToolTip(f"{text} the selected fiber ({qt_key})")
        button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        ui.flag_buttons[flag] = button
        flags.addWidget(button, i // 3, i % 3)
    layout.addLayout(flags)
    row2 = QHBoxLayout()
    ui.recompute_button = QPushButton("Recompute")
    ui.recompute_button.setToolTip("Re-measure the fibers changed with the label tools")
    ui.save_button = QPushButton("Save review")
    ui.save_button.setToolTip("Write flags and edited labels into the result folder")
    ui.export_button = QPushButton("Export")
    ui.export_button.setToolTip("Save, then write the reviewed fibers.csv, GeoJSON and summary "
                                "into RESULTS/<slide-id>/reviewed/")
    ui.selected_only = QCheckBox("selected only")
    ui.selected_only.setToolTip("Show only the selected fiber in the canvas")
    for w in (ui.recompute_button, ui.save_button, ui.export_button):
        w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        row2.addWidget(w)
    row2.addWidget(ui.selected_only)
    layout.addLayout(row2)
    ui.review_extras = QVBoxLayout()  # queue, legend, ... (other parts of the plugin)
    ui.review_extras.setContentsMargins(0, 0, 0, 0)
    layout.addLayout(ui.review_extras)
    return page


def _figures_page(ui: SimpleNamespace) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(4, 4, 4, 4)
    ui.summary = SummaryPanel()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setWidget(ui.summary)
    scroll.setMinimumHeight(120)
    ui.summary_scroll = scroll
    ui.histogram = FeretHistogram()
    layout.addWidget(scroll, 3)
    layout.addWidget(ui.histogram, 2)
    return page


def build_ui(parent: QWidget, model) -> SimpleNamespace:
    """Create the widget's controls on ``parent``; returns them as attributes."""
    ui = SimpleNamespace()
    ui.tabs = QTabWidget()
    ui.tabs.addTab(_analyse_page(ui), "Analyse")
    ui.tabs.addTab(_review_page(ui, model), "Review")
    ui.tabs.addTab(_figures_page(ui), "Figures")
    ui.progress = QProgressBar()
    ui.progress.setRange(0, 1)
    ui.progress.setValue(0)
    ui.progress.setTextVisible(True)
    ui.progress.setMaximumHeight(18)
    ui.status = QLabel("Pick an image layer and press “Segment and score”, or open a results folder.")
    ui.status.setWordWrap(True)
    ui.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    ui.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    layout = QVBoxLayout(parent)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.setSpacing(4)
    layout.addWidget(ui.tabs, 1)
    layout.addWidget(ui.progress)
    layout.addWidget(ui.status)
    return ui
