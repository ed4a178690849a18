"""pick_channel: one rule for the membrane channel of a multichannel image."""

import pytest

from histo.errors import HistoInputError
from histo.io.channels import pick_channel


def test_single_channel_needs_no_name_and_a_named_one_is_checked():
    assert pick_channel(1, None) == 0
    assert pick_channel(4, 3) == 3
    with pytest.raises(HistoInputError, match=r"4 channels.*channel=0\.\.3.*--channel N") as err:
        pick_channel(4, None, path="a/b.tif")
    assert "b.tif" in str(err.value)
    with pytest.raises(HistoInputError, match="channel 4 out of range: the slide has channels 0..3"):
        pick_channel(4, 4, what="the slide")
