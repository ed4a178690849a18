import pandas as pd

from histo.score.classes import CLASS_COLORS, CLASS_NAMES, fiber_class


def test_priority_sad_over_small_and_excluded_over_all():
    df = pd.DataFrame(
        {
            "is_small": [True, True, False, True],
            "is_dark": [False, True, True, True],
            "is_angular": [False, True, False, True],
            "is_sad": [False, True, False, True],
            "excluded": [False, False, False, True],
        }
    )
    assert list(fiber_class(df)) == ["small", "sad", "dark", "excluded"]


def test_missing_columns_mean_normal():
    assert list(fiber_class(pd.DataFrame({"label": [1, 2]}))) == ["normal", "normal"]
    assert set(CLASS_COLORS) == set(CLASS_NAMES)
