"""The review walk without a viewer: queue order, undo / redo of flags, regions, outline colours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.io import imread

from histo.errors import HistoInputError
from histo.review.colours import CANDIDATES, MIN_CONTRAST, contrast_table, image_backgrounds, outline_palette
from histo.review.flags import FLAG_LABELS, FLAGS, FlagHistory, flag_label
from histo.review.queue import ReviewQueue, describe_fiber, queue_order, walk_field_px
from histo.review.region import ellipse_polygon, labels_inside_polygon
from histo.review.session import ReviewSession
from histo.score.classes import CLASS_COLORS

DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "real"


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "label": [1, 2, 3, 4, 5, 6, 7, 8],
        "min_feret_um": [50.0, 14.0, 9.0, 12.0, 55.0, 60.0, 8.0, 30.0],
        "is_small": [False, True, True, True, False, False, True, False],
        "is_sad": [False, False, True, False, False, False, False, False],
        "is_dark": [False, True, True, False, False, False, False, False],
        "is_angular": [False, False, True, False, False, False, False, False],
        "fiber_score": [0.99, 0.9, 0.9, 0.8, 0.3, 0.45, 0.9, 0.005],
        "rejected": [False, False, False, False, False, False, False, True],
        "is_edge": [False, False, False, False, False, False, True, False],
        "counted": [True, True, True, True, True, True, False, False],
    })


def test_queue_order_puts_sad_candidates_then_small_then_doubtful_objects():
    order = queue_order(_table())
    assert order.values.tolist() == [[3, "sad"], [2, "sad"], [4, "small"], [5, "low_score"],
                                     [6, "low_score"], [8, "not_fiber"]]
    # edge fibers (7) are never queued; a confident normal fiber (1) neither
    assert 7 not in order["label"].tolist() and 1 not in order["label"].tolist()


def test_queue_is_the_same_after_review_flags_change_the_sad_calls():
    from histo.review.flags import apply_review

    reviewed = apply_review(_table(), {3: "not_sad", 4: "confirmed_sad"})
    pd.testing.assert_frame_equal(queue_order(reviewed), queue_order(_table()))


def test_queue_walk_keeps_its_place_and_is_rebuilt_at_the_same_fiber():
    q = ReviewQueue.from_fibers(_table())
    assert q.previous() == 3 and q.progress() == (1, 6)
    assert [q.next() for _ in range(6)] == [2, 4, 5, 6, 8, None]
    assert q.next() is None and q.previous() == 8
    assert q.go_to(4) and q.current == 4 and q.reason_of(4) == "small"
    assert not q.go_to(1) and q.current == 4
    # fiber 4 was erased and re-measured: the walk goes on at the fiber that followed it
    rebuilt = q.rebuilt(_table()[lambda d: d["label"] != 4])
    assert rebuilt.current == 5


def test_walk_field_is_a_fixed_multiple_of_the_typical_fiber():
    df = _table()
    counted = df.loc[df["counted"], "min_feret_um"]
    assert walk_field_px(df.rename(columns={"min_feret_um": "min_feret_px"})) == pytest.approx(5 * counted.median())


def test_describe_fiber_names_the_reason_measurements_and_the_flag_in_words():
    row = _table().iloc[2].copy()
    row["review_flag"] = "confirmed_sad"
    text = describe_fiber(row, reason="sad")
    assert text.startswith("fiber 3 · SAD candidate") and "min Feret 9.0 µm" in text
    assert "SAD (confirmed)" in text and "confirmed_sad" not in text


def test_flag_labels_cover_every_flag():
    assert set(FLAG_LABELS) == set(FLAGS)
    assert all(flag_label(f) and "_" not in flag_label(f) for f in FLAGS)


def test_flag_history_undo_redo_and_a_new_step_drops_the_redo():
    h = FlagHistory(limit=2)
    f = h.apply({}, {1: "excluded"})
    f = h.apply(f, {1: "excluded"})  # no change: no step
    f = h.apply(f, {2: "not_sad", 3: "excluded"})
    f = h.apply(f, {1: None})
    assert f == {2: "not_sad", 3: "excluded"}
    f = h.undo(f)
    f = h.undo(f)
    assert f == {1: "excluded"} and not h.can_undo  # the limit forgot the first step
    f = h.redo(f)
    assert f == {1: "excluded", 2: "not_sad", 3: "excluded"}
    f = h.apply(f, {2: "confirmed_sad"})
    assert not h.can_redo and h.last_labels() == [2]
    with pytest.raises(HistoInputError):
        h.apply(f, {4: "maybe"})


def test_session_flags_undo_and_redo_follow_in_the_table():
    df = _table().drop(columns=["is_edge"])
    session = ReviewSession(labels=None, fibers=df, summary={})
    assert session.set_flags({2: "excluded", 5: "excluded", 6: "excluded"}) == [2, 5, 6]
    assert session.set_flag(3, "not_sad")
    assert session.fibers.set_index("label").loc[[2, 5, 6], "excluded"].all()
    assert session.undo_flags() == [3]
    assert session.undo_flags() == [2, 5, 6]
    assert session.flags == {} and not session.fibers["excluded"].any()
    assert session.undo_flags() == []
    assert session.redo_flags() == [2, 5, 6] and session.flags == {2: "excluded", 5: "excluded", 6: "excluded"}
    with pytest.raises(HistoInputError):
        session.set_flags({99: "excluded"})


def test_labels_inside_polygon_and_ellipse_shapes():
    df = _table().assign(centroid_y_px=np.arange(8) * 10.0 + 5, centroid_x_px=50.0)
    square = np.array([[0, 0], [0, 100], [32, 100], [32, 0]])
    assert labels_inside_polygon(df, square).tolist() == [1, 2, 3]
    ellipse = ellipse_polygon(np.array([[0, 0], [0, 100], [32, 100], [32, 0]]))
    assert labels_inside_polygon(df, ellipse).tolist() == [1, 2, 3]
    assert labels_inside_polygon(df, square + 1000).tolist() == []
    with pytest.raises(HistoInputError):
        labels_inside_polygon(df, square[:2])


def _if_cyan_membrane():
    stack = tifffile.imread(DATA / "if" / "fs_rat.tif").astype(float)
    m = np.clip(stack[3] / np.percentile(stack[3], 99.5), 0, 1)
    return np.stack([0 * m, m, m], -1) * 255, tifffile.imread(DATA / "if" / "fs_rat_labels.tif")


def test_outline_colours_stand_out_on_real_he_and_a_cyan_membrane_channel():
    he = tifffile.imread(DATA / "he" / "cn_img02.tif")
    he_bg = image_backgrounds(he, imread(DATA / "he" / "cn_img02_labels.png"))
    fixed = contrast_table(CLASS_COLORS, he_bg)
    assert fixed["angular"] < MIN_CONTRAST and fixed["dark"] < MIN_CONTRAST  # the trial's complaint
    he_palette = outline_palette(he_bg)
    chosen = contrast_table(he_palette, he_bg)
    assert he_palette["normal"] == CLASS_COLORS["normal"]  # cyan reads on H&E: kept
    for name in ("angular", "dark", "sad"):
        assert chosen[name] > fixed[name]

    rgb, labels = _if_cyan_membrane()
    if_bg = image_backgrounds(rgb, labels)
    palette = outline_palette(if_bg)
    assert palette["normal"] != CLASS_COLORS["normal"]  # cyan on a cyan membrane: replaced
    assert contrast_table(palette, if_bg)["normal"] >= MIN_CONTRAST
    # every colour keeps its meaning: it is one of its class's candidates
    assert all(palette[c] in CANDIDATES[c] for c in palette)
    # and the classes stay apart from each other
    colours = list(palette.values())
    assert len(set(colours)) == len(colours)


def test_local_neighbours_equal_the_whole_slide_adjacency_on_real_labels():
    from histo.measure.adjacency import fiber_adjacency
    from histo.review.queue import local_neighbours, neighbours_of

    labels = imread(DATA / "he" / "cn_img02_labels.png").astype(np.int64)
    edges = fiber_adjacency(labels, max_gap_px=3)
    for label in np.unique(labels)[1:]:
        yx = np.argwhere(labels == label)
        bbox = (*yx.min(0), *(yx.max(0) + 1))
        assert local_neighbours(labels, int(label), bbox, max_gap_px=3).tolist() == neighbours_of(edges, int(label)).tolist()
