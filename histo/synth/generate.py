"""``generate_section``: one synthetic section with exact ground truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from histo.errors import HistoInputError
from histo.io.stain import Stain, check_stain
from histo.segment.targets import membrane_labels
from histo.synth import ncl
from histo.synth.bf_interstitium import carve_brightfield
from histo.synth.geometry import Geometry, generate_packing
from histo.synth.interstitium import carve_interstitium
from histo.synth.overlays import TINTS, apply_overlays, plan_overlays
from histo.synth.render import render

logger = logging.getLogger(__name__)

#: Membrane IF truth: endomysium narrower than this fraction of the fiber diameter is split
#: between the fibers it separates (the rendered membrane and endomysium fill it).
IF_GAP_FRACTION = 0.16
GEOMETRIES = ("auto", "packing", "ncl")
_PACKING_OPTIONS = ("size_cv", "endomysium_px", "fascicles", "tissue_edge", "gap_fraction", "planted_groups")
_BF_OPTIONS = ("inflammation", "low_mag", "tint", "seams", "stitch_fill", "annotations")
_OPTIONS = frozenset(
    _PACKING_OPTIONS + _BF_OPTIONS + ("geometry", "ncl_fraction", "source", "regenerating", "interstitium")
)


@dataclass
class SynthSample:
    """A synthetic section and its exact ground truth.

    Attributes
    ----------
    image : numpy.ndarray
        uint8 (Y, X, 3) RGB for brightfield stains; uint16 (Y, X) membrane channel with
        12-bit data (0-4095) for ``"if"``.
    labels : numpy.ndarray
        uint32 (Y, X) fiber instance labels 1..n (0 = not a fiber). Every label is one
        4-connected component. Brightfield stains: no two labels touch, not even diagonally
        (the endomysium lies between them). Membrane IF (``"if"``): the membrane-stain
        reference convention, each fiber includes its membrane and neighbours meet at the
        midline of the endomysium between them (gaps up to ``IF_GAP_FRACTION`` of the fiber
        diameter are split; see :func:`histo.segment.targets.membrane_labels`).
    planted : numpy.ndarray
        uint32 sorted labels of the planted small angular (dark) fibers.
    fiber_types : dict
        label -> ``"1"``, ``"2A"`` or ``"2B"`` for every label.
    stain : str
        One of :data:`STAINS`.
    info : dict
        JSON-able record of the random choices (geometry, stain, artefacts).
    tissue : numpy.ndarray
        bool (Y, X): False on empty glass beyond the tissue edge.
    """

    image: np.ndarray
    labels: np.ndarray
    planted: np.ndarray
    fiber_types: dict[int, str]
    stain: Stain
    info: dict = field(default_factory=dict)
    tissue: np.ndarray | None = None


def _as_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) or (isinstance(rng, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in rng)):
        return np.random.default_rng(rng)
    raise HistoInputError(f"rng must be None, an int seed or a numpy Generator, not {type(rng).__name__}")


def _validate(shape, stain, fiber_diameter_px, options) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"shape must be two integers (Y, X), got {shape!r}") from err
    if h < 16 or w < 16:
        raise HistoInputError(f"shape must be at least 16 x 16 pixels, got {(h, w)}")
    check_stain(stain)
    d = float(fiber_diameter_px)
    if not (4.0 <= d <= max(h, w)):
        raise HistoInputError(
            f"fiber_diameter_px must be between 4 and the image size ({max(h, w)}), got {d}"
        )
    unknown = set(options) - _OPTIONS
    if unknown:
        raise HistoInputError(
            f"unknown option(s) {', '.join(sorted(unknown))}; valid options: {', '.join(sorted(_OPTIONS))}"
        )
    geometry = options.get("geometry", "auto")
    if geometry not in GEOMETRIES:
        raise HistoInputError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    tint = options.get("tint")
    if tint is not None and not isinstance(tint, bool) and tint not in TINTS:
        raise HistoInputError(f"tint must be None, a bool or one of {sorted(TINTS)}, got {tint!r}")
    infl = options.get("inflammation")
    if infl is not None and not (0.0 <= float(infl) <= 1.0):
        raise HistoInputError(f"inflammation must be a fraction of the tissue in 0-1, got {infl!r}")
    return h, w


def make_geometry(shape, diameter_px: float, rng: np.random.Generator, **options) -> Geometry:
    """Ground-truth geometry only (no rendering); same options as :func:`generate_section`."""
    geometry = options.get("geometry", "auto")
    if geometry == "auto":
        frac = float(options.get("ncl_fraction", 0.3))
        use_ncl = rng.random() < frac and ncl.available()
        geometry = "ncl" if use_ncl else "packing"
    if geometry == "ncl":
        return _ncl_geometry(shape, diameter_px, rng, options)
    kw = {k: options[k] for k in _PACKING_OPTIONS if k in options}
    if options.get("regenerating"):
        # regenerating / inflamed muscle: scattered fibers of very mixed size in a cellular
        # interstitium
        kw.setdefault("gap_fraction", rng.uniform(0.3, 0.65))
        kw.setdefault("size_cv", rng.uniform(0.35, 0.5))
        kw["tear_fraction"] = 0.1
    return generate_packing(shape, diameter_px, rng, **kw)


def _ncl_geometry(shape, diameter_px, rng, options) -> Geometry:
    return ncl.ncl_crop(
        shape, diameter_px, rng, source=options.get("source"), planted_groups=options.get("planted_groups")
    )


def generate_section(
    shape: tuple[int, int] = (512, 512),
    *,
    stain: Stain = "he",
    fiber_diameter_px: float = 40.0,
    rng=None,
    **options,
) -> SynthSample:
    """Generate one synthetic muscle section with exact instance labels.

    Parameters
    ----------
    shape : (int, int)
        Image shape (Y, X), at least 16 x 16.
    stain : str
        One of :data:`STAINS`: ``"he"``, ``"nadh"``, ``"sdh"``, ``"atpase"``, ``"esterase"``,
        ``"if"`` (membrane channel), ``"psr"``.
    fiber_diameter_px : float
        Mean (packing) or median (NCL-SM) equivalent diameter of the normal fibers, pixels.
    rng : None, int or numpy.random.Generator
        Seed or generator; the same seed gives the same sample.
    **options
        ``geometry``: ``"auto"`` (default: NCL-SM crops for ``ncl_fraction`` = 0.3 of the
        samples when the masks are available, packings otherwise), ``"packing"`` or ``"ncl"``;
        ``source``: NCL-SM mask file name; packing controls ``size_cv``, ``endomysium_px``,
        ``fascicles``, ``tissue_edge``, ``gap_fraction``, ``planted_groups`` (see
        :func:`histo.synth.geometry.generate_packing`); ``regenerating``: regenerating /
        inflamed muscle (scattered fibers, basophilic fibers with central nuclei, a cellular
        interstitium; by default one H&E sample in eight); ``interstitium``: unlabelled
        non-fiber tissue, default True: on ``"if"`` capillaries, vessels, nerve bundles and
        debris (:mod:`histo.synth.interstitium`); on brightfield stains interstitial and
        inflammatory cell infiltrates (also replacing fibers), capillaries with red cells,
        arterioles, nerve twigs, connective-tissue wedges at fiber corners, loose or dense
        perimysium, fat cells, fibrosis and empty glass, in each stain's colours
        (:mod:`histo.synth.bf_interstitium`, :mod:`histo.synth.bf_render`).
        Brightfield only: ``inflammation``: fraction 0-1 of the tissue replaced by
        infiltrate (default random: none in 55 % of sections, 2-8 % in a third, 10-25 % in the
        rest); ``low_mag``: low-power look, tight packing (endomysium 1-1.6 px unless
        ``endomysium_px`` is given) and a faint endomysium (default False); ``tint``: a strong
        colour cast, True / ``"brown"`` / ``"orange"`` / ``"yellow"`` (default: 15 % of H&E,
        5 % of the others); ``seams``: brightness / colour steps on a grid of stitched tiles
        (default 10 %); ``stitch_fill``: a black or white rectangle along an edge or in a
        corner (default 8 %); ``annotations``: scale bar and text (default 10 %) (see
        :mod:`histo.synth.overlays`). All of them stay label 0; planted fibers are never
        covered. ``info`` records every choice (``"nonfiber"``, ``"overlays"``, ``"low_mag"``).

    Returns
    -------
    SynthSample

    Raises
    ------
    HistoInputError
        On a bad shape, stain, diameter, option name or rng.

    Examples
    --------
    >>> s = generate_section((128, 128), stain="nadh", fiber_diameter_px=24, rng=0, geometry="packing")
    >>> s.image.shape, s.image.dtype, s.labels.dtype
    ((128, 128, 3), dtype('uint8'), dtype('uint32'))
    >>> bool(set(s.planted.tolist()) <= set(s.fiber_types))
    True
    """
    h, w = _validate(shape, stain, fiber_diameter_px, options)
    gen = _as_rng(rng)
    # separate streams for the overlays, so toggling one leaves the section itself unchanged
    options = dict(options)
    d = float(fiber_diameter_px)
    bright = stain != "if"
    if bright:
        plan_rng, look_rng = (np.random.default_rng(s) for s in gen.integers(0, 2**63, 2))
    low_mag = bool(options.get("low_mag", False)) and bright
    if low_mag:
        options.setdefault("endomysium_px", float(look_rng.uniform(1.0, 1.6)))
    if options.get("regenerating") is None:
        options["regenerating"] = stain == "he" and gen.random() < 1 / 8
    geom = make_geometry((h, w), d, gen, **options)
    geom.info["regenerating"] = bool(options["regenerating"])
    extra = None
    if options.get("interstitium", True):
        if bright:
            geom, extra, counts = carve_brightfield(geom, d, gen, inflammation=options.get("inflammation"),
                                                    low_mag=low_mag)
            geom.info["nonfiber"] = counts
        else:
            geom, extra, counts = carve_interstitium(geom, d, gen)
            geom.info["interstitium"] = counts
    plan = {}
    if bright:
        geom, plan, oinfo = plan_overlays(geom, d, plan_rng, stitch_fill=options.get("stitch_fill"),
                                          annotations=options.get("annotations"))
        geom.info["low_mag"] = low_mag
    image, rinfo = render(geom, stain, gen, diameter_px=d, interstitium=extra, low_mag=low_mag)
    if bright:
        image, pinfo = apply_overlays(image, plan, look_rng, seams=options.get("seams"), tint=options.get("tint"),
                                      stain=stain)
        geom.info["overlays"] = {**oinfo, **pinfo}
    labels = geom.labels
    if stain == "if":  # the membrane-stain reference convention: neighbours meet mid-membrane
        labels = membrane_labels(labels, IF_GAP_FRACTION * float(fiber_diameter_px))
    info = {
        "stain": stain,
        "shape": [h, w],
        "n_fibers": int(geom.labels.max()),
        "n_planted": int(len(geom.planted)),
        **geom.info,
        "render": rinfo,
    }
    return SynthSample(
        image=image,
        labels=labels.astype(np.uint32, copy=False),
        planted=np.asarray(geom.planted, np.uint32),
        fiber_types=dict(geom.fiber_types),
        stain=stain,
        info=info,
        tissue=geom.tissue,
    )
