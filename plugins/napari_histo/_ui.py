"""Layout of the "Myofiber review" dock widget: controls only, no behaviour.

:func:`build_ui` creates every control on a parent widget and returns them by name; the
widget module (:mod:`napari_histo._widget`) wires them to the review session.
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
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

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


def _run_box(ui: SimpleNamespace) -> QGroupBox:
    box = QGroupBox("Segment and score")
    form = QFormLayout(box)
    ui.image_combo = QComboBox()
    ui.image_combo.setToolTip("Image layer to analyse")
    ui.stain_combo = QComboBox()
    ui.stain_combo.addItems(STAIN_CHOICES)
    ui.channel_spin = QSpinBox()
    ui.channel_spin.setRange(-1, 64)
    ui.channel_spin.setSpecialValueText("–")
    ui.channel_spin.setToolTip("Channel showing the fiber membrane (multichannel images)")
    ui.pixel_spin = QDoubleSpinBox()
    ui.pixel_spin.setRange(0.0, 50.0)
    ui.pixel_spin.setDecimals(4)
    ui.pixel_spin.setSingleStep(0.05)
    ui.pixel_spin.setSpecialValueText("unknown")
    ui.pixel_spin.setSuffix(" µm/px")
    ui.pixel_spin.setToolTip("Micrometres per pixel; pre-filled from the file's metadata")
    ui.sex_combo = QComboBox()
    ui.sex_combo.addItems(["male", "female"])
    ui.sex_combo.setToolTip("Normal range of the lesser diameter: male 40–80 µm, female 30–70 µm")
    ui.method_combo = QComboBox()
    ui.method_combo.addItems(METHOD_CHOICES)
    form.addRow("image", ui.image_combo)
    form.addRow("stain", ui.stain_combo)
    form.addRow("channel", ui.channel_spin)
    form.addRow("pixel size", ui.pixel_spin)
    form.addRow("normal range", ui.sex_combo)
    form.addRow("method", ui.method_combo)
    row = QHBoxLayout()
    ui.run_button = QPushButton("Segment and score")
    ui.cancel_button = QPushButton("Cancel")
    ui.cancel_button.setEnabled(False)
    row.addWidget(ui.run_button, 2)
    row.addWidget(ui.cancel_button, 1)
    form.addRow(row)
    ui.progress = QProgressBar()
    ui.progress.setRange(0, 1)
    ui.progress.setValue(0)
    ui.progress.setTextVisible(True)
    form.addRow(ui.progress)
    return box


def _review_box(ui: SimpleNamespace, model) -> QGroupBox:
    box = QGroupBox("Review")
    layout = QVBoxLayout(box)
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
    ui.table.verticalHeader().setDefaultSectionSize(20)
    ui.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    ui.table.horizontalHeader().setDefaultSectionSize(70)
    ui.table.horizontalHeader().setResizeContentsPrecision(64)  # size columns from 64 rows, not all
    ui.table.setMinimumHeight(160)
    layout.addWidget(ui.table, 1)
    flags = QHBoxLayout()
    ui.flag_buttons = {}
    for text, flag, qt_key, _ in FLAG_ACTIONS:
        button = QPushButton(text)
        button.setToolTip(f"{text} the selected fiber ({qt_key.replace('+', '+')})")
        ui.flag_buttons[flag] = button
        flags.addWidget(button)
    layout.addLayout(flags)
    row2 = QHBoxLayout()
    ui.recompute_button = QPushButton("Recompute")
    ui.recompute_button.setToolTip("Re-measure the fibers changed with the label tools")
    ui.save_button = QPushButton("Save review")
    ui.save_button.setToolTip("Write flags and edited labels into the result folder")
    ui.selected_only = QCheckBox("selected only")
    ui.selected_only.setToolTip("Show only the selected fiber in the canvas")
    row2.addWidget(ui.recompute_button)
    row2.addWidget(ui.save_button)
    row2.addWidget(ui.selected_only)
    layout.addLayout(row2)
    return box


def build_ui(parent: QWidget, model) -> SimpleNamespace:
    """Create the widget's controls on ``parent``; returns them as attributes."""
    ui = SimpleNamespace()
    ui.status = QLabel("Pick an image layer and press “Segment and score”, or open a results folder.")
    ui.status.setWordWrap(True)
    ui.summary = SummaryPanel()
    ui.histogram = FeretHistogram()
    figures = QGroupBox("Figures")
    fig_layout = QVBoxLayout(figures)
    fig_layout.addWidget(ui.summary)
    fig_layout.addWidget(ui.histogram, 1)
    ui.splitter = QSplitter(Qt.Orientation.Vertical)
    ui.splitter.addWidget(_review_box(ui, model))
    ui.splitter.addWidget(figures)
    ui.splitter.setStretchFactor(0, 3)
    ui.splitter.setStretchFactor(1, 2)
    layout = QVBoxLayout(parent)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(_run_box(ui))
    layout.addWidget(ui.status)
    layout.addWidget(ui.splitter, 1)
    return ui
