"""Questions the widget asks the user, as plain functions so tests can monkeypatch them.

The widget always calls them through this module (``_dialogs.ask_unsaved(...)``), so a
test replaces e.g. ``napari_histo._dialogs.ask_unsaved`` with a lambda returning "discard".
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QMessageBox

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def ask_unsaved(parent, action: str) -> str:
    """Ask what to do with unsaved review changes before ``action``.

    Returns
    -------
    str
        ``"save"``, ``"discard"`` or ``"cancel"``.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved review")
    box.setText(f"The review has unsaved flags or edits. Save them before {action}?")
    box.setStandardButtons(
        QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
    )
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    box.exec()
    answer = box.standardButton(box.clickedButton())  # an enum on PyQt6, unlike exec()'s int
    if answer == QMessageBox.StandardButton.Save:
        return SAVE
    if answer == QMessageBox.StandardButton.Discard:
        return DISCARD
    return CANCEL


def ask_results_folder(parent) -> Path | None:
    """Ask for the folder that receives ``<slide-id>/`` (None when cancelled)."""
    path = QFileDialog.getExistingDirectory(parent, "Folder for the results (RESULTS/<slide-id>/)")
    return Path(path) if path else None


def ask_result_folder(parent) -> Path | None:
    """Ask for a slide's result folder to open (None when cancelled)."""
    path = QFileDialog.getExistingDirectory(parent, "Open a histo result folder (RESULTS/<slide-id>/)")
    return Path(path) if path else None


def show_error(parent, title: str, message: str) -> None:
    """Tell the user something failed (non-blocking napari notification)."""
    from napari.utils.notifications import show_error as napari_show_error

    napari_show_error(f"{title}: {message}")
