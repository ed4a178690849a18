"""Which channel of a multichannel (C, Y, X) image to analyse.

The fiber membrane channel (laminin, dystrophin, WGA) is not recorded in image files, so a
multichannel image needs it named; a single-channel one does not. One rule and one message
for the command line, the Python API, whole slides and the plugin.
"""

from __future__ import annotations

from histo.errors import HistoInputError


def pick_channel(n_channels: int, channel: int | None, *, path=None, what: str = "the image") -> int:
    """The checked channel index: ``channel``, or 0 when the image has a single channel.

    Raises
    ------
    HistoInputError
        Several channels and none named, or ``channel`` out of range (the message says how
        to name one).

    Examples
    --------
    >>> pick_channel(1, None), pick_channel(4, 3)
    (0, 3)
    """
    n = int(n_channels)
    if channel is None:
        if n == 1:
            return 0
        raise HistoInputError(
            f"{what} has {n} channels and needs channel=0..{n - 1} (--channel N on the command "
            "line): say which one shows the fiber membrane",
            path=path,
        )
    if not 0 <= int(channel) < n:
        raise HistoInputError(f"channel {channel} out of range: {what} has channels 0..{n - 1}",
                              path=path)
    return int(channel)
