"""Plots of the cohort report, as self-contained ``data:`` URIs (no files, no pyplot state).

Each function takes plain arrays and returns a string usable as ``<img src=...>``. Figures are
drawn with :class:`matplotlib.figure.Figure` and the Agg canvas directly, so importing this
module never touches a GUI backend or pyplot's global state (safe in Dask workers and tests).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from histo.score.classes import CLASS_COLORS

_PLOT_DPI = 110


def _rgb(name: str) -> tuple[float, float, float]:
    return tuple(c / 255 for c in CLASS_COLORS[name])  # type: ignore[return-value]


def figure_to_data_uri(fig, *, fmt: str = "png") -> str:
    """Encode a matplotlib figure as a ``data:image/png;base64,...`` (or svg) URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=_PLOT_DPI, bbox_inches="tight")
    mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _figure(width_in: float = 4.6, height_in: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def min_feret_histogram(min_feret, *, unit: str = "um", normal_range=None, is_sad=None,
                        is_small=None, reference: str | None = None) -> str:
    """Histogram of minimum Feret diameters with the normal range shaded.

    Parameters
    ----------
    min_feret : 1-D array
        Diameters of the counted fibers, in ``unit``.
    unit : {"um", "px"}
    normal_range : (lo, hi), optional
        Shaded band (only meaningful in µm).
    is_sad, is_small : 1-D bool arrays, optional
        Stack the small and small-dark-angular fibers in their class colours.
    reference : str, optional
        Name of the reference the range comes from, in the legend (e.g. "adult male").
    """
    d = np.asarray(min_feret, dtype=float)
    keep = np.isfinite(d)
    d = d[keep]
    fig, ax = _figure()
    label = "µm" if unit == "um" else "px"
    if d.size == 0:
        ax.text(0.5, 0.5, "no counted fibers", ha="center", va="center", transform=ax.transAxes)
    else:
        top = max(float(np.percentile(d, 99.5)) * 1.1, (normal_range or (0, 0))[1] + 10)
        step = 5.0 if unit == "um" and top <= 200 else max(top / 40, 1e-6)
        bins = np.arange(0, top + step, step)
        sad = _mask(is_sad, keep, d.size)
        small = _mask(is_small, keep, d.size) & ~sad
        rest = ~(sad | small)
        ax.hist([d[rest], d[small], d[sad]], bins=bins, stacked=True, edgecolor="white",
                linewidth=0.4, color=["#5b8db8", _rgb("small"), _rgb("sad")],
                label=["other", "small", "small dark angular"])
        if normal_range is not None and unit == "um":
            lo, hi = normal_range
            ax.axvspan(lo, hi, color="#2ca02c", alpha=0.13, zorder=0,
                       label=f"normal {lo:g}–{hi:g} µm" + (f", {reference}" if reference else ""))
        ax.legend(frameon=False, fontsize=7)
    ax.set_xlabel(f"minimum Feret diameter ({label})")
    ax.set_ylabel("fibers")
    return figure_to_data_uri(fig)


def min_feret_histogram_by_type(edges, counts_by_type: dict, *, unit: str = "um",
                                normal_range=None, reference: str | None = None) -> str:
    """Min-Feret histograms of each fiber type on shared bins (``summary["fiber_types"]``:
    ``histogram_edges`` and ``per_type[t]["histogram"]``), drawn as outlines over each other.

    Examples
    --------
    >>> min_feret_histogram_by_type([0, 5, 10], {"1": [1, 2], "2": [3, 0]}).startswith("data:image/png")
    True
    """
    e = np.asarray(edges, dtype=float)
    fig, ax = _figure()
    label = "µm" if unit == "um" else "px"
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    drawn = False
    for i, (name, counts) in enumerate(counts_by_type.items()):
        c = np.asarray(counts, dtype=float)
        if c.size != e.size - 1 or c.sum() == 0:
            continue
        ax.stairs(c, e, color=palette[i % len(palette)], linewidth=1.4,
                  label=f"type {name} ({int(c.sum())})")
        drawn = True
    if normal_range is not None and unit == "um":
        lo, hi = normal_range
        ax.axvspan(lo, hi, color="#2ca02c", alpha=0.13, zorder=0,
                   label=f"normal {lo:g}–{hi:g} µm" + (f", {reference}" if reference else ""))
    if drawn:
        ax.legend(frameon=False, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no typed fibers", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"minimum Feret diameter ({label})")
    ax.set_ylabel("fibers")
    return figure_to_data_uri(fig)


def _mask(values, keep: np.ndarray, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(values, dtype=bool)[keep]


def area_angularity_scatter(area, angularity, *, classes=None, unit: str = "um",
                            angular_min: float | None = None) -> str:
    """Fiber area (log scale) against angularity, small dark angular fibers marked.

    ``classes`` are the display classes (:func:`histo.score.classes.fiber_class`); SAD fibers are
    drawn last, larger, red with a black edge, so they stand out of a dense cloud.
    """
    a = np.asarray(area, dtype=float)
    g = np.asarray(angularity, dtype=float)
    cls = np.asarray(classes if classes is not None else ["normal"] * a.size, dtype=object)
    ok = np.isfinite(a) & np.isfinite(g) & (a > 0)
    fig, ax = _figure()
    for name in ("excluded", "normal", "dark", "angular", "small", "sad"):
        sel = ok & (cls == name)
        if not sel.any():
            continue
        sad = name == "sad"
        edge = {} if name == "excluded" else {"edgecolors": "black" if sad else "none"}  # "x" has no face
        ax.scatter(a[sel], g[sel], s=26 if sad else 7, color=_rgb(name), alpha=1.0 if sad else 0.6,
                   linewidths=0.6, zorder=3 if sad else 2, marker="x" if name == "excluded" else "o",
                   label=f"{name} ({int(sel.sum())})", **edge)
    if ok.any():
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(frameon=False, fontsize=7, markerscale=1.2)
    else:
        ax.text(0.5, 0.5, "no fibers", ha="center", va="center", transform=ax.transAxes)
    if angular_min is not None:
        ax.axhline(angular_min, color="#777", linestyle="--", linewidth=0.8)
    ax.set_xlabel("area (µm²)" if unit == "um" else "area (px)")
    ax.set_ylabel("angularity")
    return figure_to_data_uri(fig)


def cohort_min_feret_boxplot(per_slide: dict[str, np.ndarray], *, unit: str = "um",
                             normal_range=None) -> str:
    """Minimum Feret distribution of every slide side by side, the normal range shaded."""
    names = list(per_slide)
    fig, ax = _figure(width_in=max(4.6, 0.45 * len(names) + 1.5), height_in=3.0)
    data = [np.asarray(per_slide[n], dtype=float) for n in names]
    data = [d[np.isfinite(d)] for d in data]
    if any(d.size for d in data):
        ax.boxplot([d if d.size else [np.nan] for d in data], showfliers=False, widths=0.6,
                   medianprops={"color": "black"})
        ax.set_xticks(range(1, len(names) + 1), [n[:18] for n in names], rotation=45,
                      ha="right", fontsize=7)
    if normal_range is not None and unit == "um":
        ax.axhspan(*normal_range, color="#2ca02c", alpha=0.13, zorder=0)
    ax.set_ylabel("min Feret (µm)" if unit == "um" else "min Feret (px)")
    return figure_to_data_uri(fig)


def thumbnail_data_uri(path, *, max_px: int = 1024) -> str | None:
    """A picture file (e.g. ``overlay.png``) shrunk to ``max_px`` as a JPEG data URI."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=88)
    except (OSError, ValueError):
        return None
    return f"data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
