"""Normal references of fiber size: which normal range a slide is compared with, and why.

A *reference* names the population a section is compared with (``adult-male``,
``adult-female``, ``child`` at an age, ``mouse``, ``rat``) and carries its normal range of the
lesser (minimum Feret) diameter with the citation it comes from, or says that no published
range is used and a relative criterion (below a fraction of the slide's median) stands in.
Every figure compared with a normal range names its reference (:attr:`Reference.tag`), so
"atrophy factor 1200 (normal < 150)" can no longer be read off a rat section against the
adult-male human range without saying so. ``docs/scoring.md`` lists the sources.

Pure: no I/O, no settings; :func:`resolve_reference` is what
:class:`histo.score.settings.ScoringSettings` uses to pick the reference in force.

Examples
--------
>>> reference_for("adult-male").range_text()
'normal 40–80 µm, adult male, Dubowitz'
>>> reference_for("child", age_years=5).min_feret_um
(14.4, 33.6)
>>> reference_for("rat").min_feret_um is None
True
>>> resolve_reference().tag
'adult male, Dubowitz (assumed: no reference given)'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

#: The references ``--reference`` accepts.
REFERENCES = ("adult-male", "adult-female", "child", "mouse", "rat")
#: Species a cases file may name (human slides pick adult-male/-female or child by age and sex).
SPECIES = ("human", "mouse", "rat")

DUBOWITZ = ("Dubowitz V, Sewry CA, Oldfors A. Muscle Biopsy: A Practical Approach "
            "(5th ed., Elsevier 2020); Brooke MH, Engel WK. The histographic analysis of human "
            "muscle biopsies with regard to fiber types. 1. Adult male and female. "
            "Neurology 1969;19:221-233")
OERTEL = ("Oertel G. Morphometric analysis of normal skeletal muscles in infancy, childhood "
          "and adolescence. An autopsy study. J Neurol Sci 1988;88:303-313")
BRIGUET = ("Briguet A, Courdier-Fruh I, Foster M, Meier T, Magyar JP. Histological parameters "
           "for the quantitative assessment of muscular dystrophy in the mdx-mouse. "
           "Neuromuscul Disord 2004;14:675-682")

#: Adult normal ranges of min Feret in µm (Dubowitz; Brooke & Engel 1969).
ADULT_RANGES_UM: dict[str, tuple[float, float]] = {"male": (40.0, 80.0), "female": (30.0, 70.0)}

#: Oertel 1988: mean fiber diameter 10-12 µm shortly after birth and 40-60 µm at 15-20 years,
#: no sex difference before 15, SD never above 20 % of the mean. Anchors (age in years, mean
#: diameter in µm) at the middle of each published span; ages in between are interpolated.
CHILD_MEAN_ANCHORS_UM: tuple[tuple[float, float], ...] = ((0.0, 11.0), (15.0, 50.0))
#: The child range is mean ± 2 SD with SD = 20 % of the mean (Oertel's upper bound).
CHILD_SD_FRACTION = 0.2
#: From this age on the adult range of the given sex applies (Oertel: sexes differ from 15).
ADULT_FROM_YEARS = 15.0


@dataclass(frozen=True)
class Reference:
    """A normal reference of fiber size and where it comes from.

    Attributes
    ----------
    name : str
        One of :data:`REFERENCES`, or ``"custom"`` for a range the user gave.
    label : str
        How a reader sees it: ``"adult male"``, ``"child, 5 years"``, ``"mouse, soleus"``.
    source : str
        Short source: ``"Dubowitz"``, ``"Oertel 1988, interpolated by age"``, or
        ``"relative criterion, no published range used"``.
    citation : str
        The full reference(s), or why none is used.
    min_feret_um : (lo, hi) or None
        Normal range of the lesser diameter in µm; None = no published range is used (the small
        rule is relative, the atrophy / hypertrophy factors are not computed).
    human : bool
        The adult human limits of AF / HF / VC, central nuclei and type predominance
        (Dubowitz) apply only to human references.
    assumed : bool
        No reference was given; this one was assumed (every figure that uses it says so).
    note : str or None
        What a reader must know (interpolation, relative criterion, ...).
    """

    name: str
    label: str
    source: str
    citation: str
    min_feret_um: tuple[float, float] | None
    human: bool = True
    assumed: bool = False
    note: str | None = None

    @property
    def tag(self) -> str:
        """Label and source, as printed beside every figure that uses the reference."""
        tag = f"{self.label}, {self.source}"
        return tag + " (assumed: no reference given)" if self.assumed else tag

    def range_text(self) -> str:
        """``"normal 40–80 µm, adult male, Dubowitz"`` (or the relative criterion's words)."""
        if self.min_feret_um is None:
            return f"no normal range, {self.tag}"
        lo, hi = self.min_feret_um
        return f"normal {lo:g}–{hi:g} µm, {self.tag}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, with ``tag`` and ``range_text``."""
        out = asdict(self)
        out["min_feret_um"] = None if self.min_feret_um is None else list(self.min_feret_um)
        out["tag"] = self.tag
        out["range_text"] = self.range_text()
        return out


def child_mean_um(age_years: float) -> float:
    """Expected mean fiber diameter (µm) of a child, interpolated linearly between
    :data:`CHILD_MEAN_ANCHORS_UM` (Oertel 1988); constant beyond the last anchor.

    Examples
    --------
    >>> child_mean_um(0), child_mean_um(7.5), child_mean_um(15), child_mean_um(30)
    (11.0, 30.5, 50.0, 50.0)
    """
    anchors = CHILD_MEAN_ANCHORS_UM
    if age_years <= anchors[0][0]:
        return anchors[0][1]
    for (a0, m0), (a1, m1) in zip(anchors, anchors[1:]):
        if age_years <= a1:
            return m0 + (m1 - m0) * (age_years - a0) / (a1 - a0)
    return anchors[-1][1]


def child_range_um(age_years: float) -> tuple[float, float]:
    """Normal min Feret range (µm) of a child: mean ± 2 SD, SD = 20 % of the mean.

    Examples
    --------
    >>> child_range_um(10)
    (22.2, 51.8)
    """
    m = child_mean_um(age_years)
    k = 2 * CHILD_SD_FRACTION
    return (round(m * (1 - k), 2), round(m * (1 + k), 2))


def _check_age(age_years: Any) -> float:
    if isinstance(age_years, bool) or not isinstance(age_years, (int, float)):
        raise ValueError(f"age must be a number of years, got {age_years!r}")
    age = float(age_years)
    if not 0 <= age <= 130:
        raise ValueError(f"age must be between 0 and 130 years, got {age_years!r}")
    return age


def reference_for(name: str, *, age_years: float | None = None, sex: str | None = None,
                  muscle: str | None = None) -> Reference:
    """The reference called ``name`` (one of :data:`REFERENCES`).

    Parameters
    ----------
    name : str
        ``adult-male``, ``adult-female``, ``child`` (needs ``age_years``), ``mouse``, ``rat``.
    age_years : float, optional
        Age of a child; from :data:`ADULT_FROM_YEARS` on the adult range of ``sex`` applies.
    sex : ``"male"``, ``"female"`` or None
        For a child of 15 or more (without it, Oertel's 15-20 year range is used).
    muscle : str, optional
        Named in the label (no per-muscle range is built in).

    Raises
    ------
    ValueError
        Unknown name, a child without an age, an age out of range.
    """
    where = f", {muscle}" if muscle else ""
    if name in ("adult-male", "adult-female"):
        s = name.split("-")[1]
        return Reference(name, f"adult {s}{where}", "Dubowitz", DUBOWITZ, ADULT_RANGES_UM[s])
    if name == "child":
        if age_years is None:
            raise ValueError("the child reference needs the age in years (--age YEARS, or the "
                             "age column of the cases file)")
        age = _check_age(age_years)
        label = f"child, {age:g} years{where}"
        if age >= ADULT_FROM_YEARS and sex in ADULT_RANGES_UM:
            return Reference(name, label, f"adult {sex} range from {ADULT_FROM_YEARS:g} years, "
                             "Dubowitz", f"{DUBOWITZ}; {OERTEL}", ADULT_RANGES_UM[sex])
        return Reference(
            name, label, "Oertel 1988, interpolated by age", OERTEL, child_range_um(age),
            note=(f"mean diameter interpolated linearly between the published {11:g} µm at birth "
                  f"and {50:g} µm at 15-20 years (Oertel 1988); range = mean ± 2 SD with SD = "
                  "20 % of the mean (Oertel's upper bound); intermediate ages are interpolated, "
                  "not published values. The atrophy / hypertrophy factor limits (150) are the "
                  "adult ones (Dubowitz), applied to this range"))
    if name in ("mouse", "rat"):
        return Reference(
            name, f"{name}{where}", "relative criterion, no published range used",
            f"no per-muscle normal range is built in: normal rodent fiber size depends on strain, "
            f"muscle, age and sex (mouse muscles, minimum Feret: {BRIGUET}); give a published "
            "range for your strain and muscle with --normal-range LO HI", None, human=False,
            note=("small = below a fraction of the slide's median min Feret; atrophy and "
                  "hypertrophy factors need a normal range and are not computed; the human "
                  "limits of VC, central nuclei and type predominance are not applied"))
    raise ValueError(f"unknown reference {name!r}; choose one of {', '.join(REFERENCES)}")


def resolve_reference(reference: str | None = None, *, sex: str | None = None,
                      age_years: float | None = None, muscle: str | None = None,
                      normal_range_um: tuple[float, float] | None = None) -> Reference:
    """The reference in force for a set of scoring settings.

    In order: ``reference`` (with ``age_years``, ``sex``, ``muscle``); else ``sex`` (the
    adult range of that sex, as before references existed); else adult male, marked
    ``assumed``. An explicit ``normal_range_um`` replaces the range and becomes the source
    ("range given"), keeping the reference's species (rodent limits stay off).

    Examples
    --------
    >>> resolve_reference(sex="female").tag
    'adult female, Dubowitz'
    >>> resolve_reference("rat", normal_range_um=(30, 60)).range_text()
    'normal 30–60 µm, rat, range given by the user'
    """
    if reference is not None:
        ref = reference_for(reference, age_years=age_years, sex=sex, muscle=muscle)
    elif sex is not None:
        ref = reference_for(f"adult-{sex}", muscle=muscle)
    else:
        ref = replace(reference_for("adult-male", muscle=muscle), assumed=True)
    if normal_range_um is not None:
        lo, hi = (float(v) for v in normal_range_um)
        label = ref.label if (reference is not None or sex is not None) else "custom"
        ref = Reference("custom" if label == "custom" else ref.name, label,
                        "range given by the user", "normal_range_um setting (--normal-range)",
                        (lo, hi), human=ref.human)
    return ref


def type_family(name: str) -> str | None:
    """``"1"`` or ``"2"`` for a fiber type name (``1``, ``I``, ``2A``, ``IIb``, ...), else None.

    Examples
    --------
    >>> [type_family(t) for t in ("1", "I", "2A", "IIa", "IIx/IIb", "light", "negative")]
    ['1', '1', '2', '2', '2', None, None]
    """
    t = str(name).strip().upper()
    if t.startswith(("II", "2")):
        return "2"
    if t.startswith(("I", "1")) and not t.startswith("IN"):
        return "1"
    return None


#: Dubowitz: type 1 predominance above 55 % type 1 fibers, type 2 predominance above 80 %.
PREDOMINANCE_PCT = {"1": 55.0, "2": 80.0}
