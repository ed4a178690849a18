"""The review session without Qt (histo.review.session): flags, re-scoring, edits, saving.

The napari widget is a thin view over this model; these tests drive the model directly on the
bundled H&E sample with its reference labels, as the widget would, with no viewer.
"""

from __future__ import annotations

import numpy as np
import pytest

from histo.batch.pipeline import analyze
from histo.errors import HistoInputError
from histo.io.image import read_image
from histo.io.masks import read_labels
from histo.review.session import ReviewSession, rescore_snapshot
from histo.review.state import load_review
from histo.sample_data import demo_image_path, demo_labels_path


@pytest.fixture(scope="module")
def sample():
    image = read_image(demo_image_path(), pixel_size_um=0.5)
    labels = read_labels(demo_labels_path(), shape=image.shape_yx)
    return image, analyze(image, labels, stain="he")


def _session(sample) -> ReviewSession:
    image, result = sample
    return ReviewSession(labels=result.labels.copy(), fibers=result.fibers, summary=result.summary,
                         image=image, stain="he", base=result)


def _counted_label(session: ReviewSession) -> int:
    return int(session.fibers.loc[session.fibers["counted"], "label"].iloc[0])


def test_excluding_a_fiber_changes_the_table_at_once_and_the_figures_on_rescore(sample):
    session = _session(sample)
    n_counted = session.summary["statistics"]["n_counted"]
    label = _counted_label(session)
    assert session.set_flag(label, "excluded") is True
    assert session.dirty
    row = session.row(label)
    assert row["excluded"] and not row["counted"]
    assert session.summary["statistics"]["n_counted"] == n_counted  # figures wait for rescore
    session.rescore()
    assert session.summary["statistics"]["n_counted"] == n_counted - 1
    assert session.set_flag(label, "excluded") is False  # unchanged flag
    session.set_flag(label, None)
    session.rescore()
    assert session.summary["statistics"]["n_counted"] == n_counted


def test_confirmed_sad_overrides_the_classifier_and_stale_worker_results_are_refused(sample):
    session = _session(sample)
    label = _counted_label(session)
    inputs = session.rescore_inputs()  # a snapshot, as a worker thread gets it
    session.set_flag(label, "confirmed_sad")
    fibers, part = rescore_snapshot(**inputs)
    assert not session.accept_rescore(fibers, part, inputs["flags"])  # flags moved on
    inputs = session.rescore_inputs()
    fibers, part = rescore_snapshot(**inputs)
    assert session.accept_rescore(fibers, part, inputs["flags"])
    assert bool(session.row(label)["is_sad"])
    assert int(session.fibers["is_sad"].sum()) >= 1


def test_unknown_flags_and_fibers_are_clear_errors(sample):
    session = _session(sample)
    with pytest.raises(HistoInputError, match="unknown flag"):
        session.set_flag(_counted_label(session), "maybe")
    with pytest.raises(HistoInputError, match="not in the table"):
        session.set_flag(10**6, "excluded")


def test_a_deleted_fiber_is_remeasured_and_must_be_recomputed_before_saving(sample, tmp_path):
    session = _session(sample)
    label = _counted_label(session)
    n_fibers = len(session.fibers)
    painted = session.labels.copy()
    painted[painted == label] = 0
    assert session.pending_changes(painted).tolist() == [label]
    with pytest.raises(HistoInputError, match="recompute before saving"):
        session.save(painted, tmp_path)
    assert session.recompute(painted).tolist() == [label]
    assert len(session.fibers) == n_fibers - 1 and session.row(label) is None
    assert session.edited and session.summary["n_fibers"] == n_fibers - 1

    other = _counted_label(session)
    session.set_flag(other, "excluded")
    out_dir = session.save(painted, tmp_path)
    assert out_dir == tmp_path / "cn_img02" and not session.dirty
    review = load_review(out_dir)
    assert review.flags == {other: "excluded"}
    assert review.edited_labels
    assert not np.any(review.labels == label)
    assert label not in set(review.fibers["label"].tolist())


def test_fibers_stepped_past_are_saved_as_seen_unless_edited_or_flagged(sample, tmp_path):
    from histo.review.session import session_from_result

    session = _session(sample)
    counted = session.fibers.loc[session.fibers["counted"], "label"].astype(int).tolist()
    a, b, c, d = counted[:4]
    assert session.mark_seen(a) and not session.mark_seen(a) and session.dirty
    assert not session.mark_seen(10**6)  # not in the table
    for k in (b, c, d):
        session.mark_seen(k)
    assert session.seen == {a, b, c, d}
    session.set_flag(c, "excluded")  # a later flag wins: excluded, not seen
    painted = session.labels.copy()
    ys, xs = np.nonzero(painted == d)
    painted[ys[:5], xs[:5]] = 0  # d edited
    assert d in session.recompute(painted).tolist()
    assert d not in session.seen  # an edited fiber is edited, not seen
    out_dir = session.save(painted, tmp_path)
    review = load_review(out_dir)
    assert review.seen_labels == tuple(sorted((a, b)))
    assert review.flags == {c: "excluded"} and review.edited_labels
    # reopened from its folder (as the reader gives it), the session keeps them
    again = session_from_result(review.labels, review.fibers, {"seen_labels": list(review.seen_labels)})
    assert again.seen == {a, b}


def test_rejected_objects_are_not_recorded_as_seen(sample):
    session = _session(sample)
    label = _counted_label(session)
    session.fibers = session.fibers.assign(rejected=session.fibers["label"] == label)
    assert not session.mark_seen(label) and label not in session.seen
