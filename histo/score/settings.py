"""Scoring settings: every threshold of the denervation scoring in one frozen, typed object.

:class:`ScoringSettings` holds the normal range of fiber size, the small / angular / dark rules,
the adjacency gap, the permutation test, fiber typing (:class:`FiberTypeSettings`) and central
nuclei (:class:`NucleiSettings`). It is saved into every ``summary.json`` (:meth:`to_dict`), so
each figure can be traced to the thresholds that produced it. ``docs/scoring.md`` gives every
default with its reason and source. The command-line flags that set it are
in :mod:`histo.commands._settings`.

Examples
--------
>>> s = ScoringSettings(sex="female")
>>> s.normal_range
(30.0, 70.0)
>>> ScoringSettings(reference="child", age_years=10).reference_in_force.range_text()
'normal 22.2–51.8 µm, child, 10 years, Oertel 1988, interpolated by age'
>>> ScoringSettings(reference="mouse").normal_range is None
True
>>> s.replace(normal_range_um=(20, 50)).normal_range
(20.0, 50.0)
>>> s.replace(nuclei={"channel": 0}).nuclei.channel
0
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

try:  # Python >= 3.11
    import tomllib  # novermin (3.10 takes tomli below)
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib

from histo.errors import HistoInputError
from histo.io.stain import STAINS, Stain
from histo.measure.adjacency import gap_in_pixels
from histo.score.reference import ADULT_RANGES_UM, REFERENCES, Reference, resolve_reference

#: Normal range of the lesser (minimum Feret) diameter of adult muscle fibers, in µm
#: (Dubowitz, *Muscle Biopsy: A Practical Approach*); all references: histo.score.reference.
NORMAL_RANGES_UM: dict[str, tuple[float, float]] = ADULT_RANGES_UM

SEXES = ("male", "female")
SMALL_RULES = ("auto", "absolute", "relative", "either", "both")
GROUP_ON = ("small", "atrophic", "sad")


def _fail(message: str) -> None:
    raise HistoInputError(message)


def _check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(f"setting {name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        _fail(f"setting {name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        _fail(f"setting {name} must be <= {high}, got {value!r}")


def _check_int(name: str, value: Any, *, low: int = 0, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(f"setting {name} must be an integer >= {low}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(f"setting {name} must be one of {', '.join(choices)}; got {value!r}")


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _pairs(name: str, value: Any, kind: type) -> tuple[tuple[str, Any], ...]:
    """A ``{name: value}`` mapping (or sequence of pairs) as a tuple of pairs, validated."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, dict) else value
    try:
        pairs = tuple((str(k), v) for k, v in items)
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"setting {name} must map names to {kind.__name__} values, "
                              f"e.g. {{I = 1, IIa = 2}}; got {value!r}") from err
    for key, v in pairs:
        if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
            _fail(f"setting {name}: value of {key!r} must be {kind.__name__}, got {v!r}")
    if len({k for k, _ in pairs}) != len(pairs):
        _fail(f"setting {name} names a type twice: {value!r}")
    return tuple((k, kind(v)) for k, v in pairs)


@dataclass(frozen=True)
class FiberTypeSettings:
    """How fibers are typed (ATPase / NADH / SDH intensity levels, or IF type channels)."""

    enabled: bool = True
    """Type fibers at all (intensity stains, or IF when ``type_channels`` is set)."""
    n_types: int | None = None
    """Intensity levels on ATPase / NADH / SDH: 2 or 3, or None to choose 1-3 by BIC of a
    1-D Gaussian mixture (1 level = types not separable; no type is then assigned)."""
    atpase_ph: float | None = None
    """Pre-incubation pH of an ATPase section (9.4, 4.6 or 4.3); names the levels by type.
    Unknown pH gives neutral names ``light`` / ``intermediate`` / ``dark``."""
    level_names: tuple[str, ...] | None = None
    """Names of the intensity levels from lightest to darkest; overrides the stain's defaults."""
    type_channels: tuple[tuple[str, int], ...] = ()
    """IF: one channel per type, e.g. ``{I = 1, IIa = 2}`` (0-based channel index)."""
    channel_thresholds: tuple[tuple[str, float], ...] = ()
    """IF: fixed positivity threshold (raw intensity) per type; missing types use Otsu on
    the per-fiber mean intensities of the slide."""
    negative_name: str = "negative"
    """IF: type given to fibers positive for no channel (e.g. ``IIx/IIb`` in rodents)."""
    hybrid_name: str = "hybrid"
    """IF: type given to fibers positive for more than one channel."""
    enclosed_min_neighbors: int = 3
    """A fiber can be *enclosed* (Jennekens 1971) only with at least this many neighbours."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            _fail(f"setting fiber_types.enabled must be true or false, got {self.enabled!r}")
        _check_int("fiber_types.n_types", self.n_types, low=1, allow_none=True)
        if self.n_types is not None and self.n_types > 3:
            _fail(f"setting fiber_types.n_types must be 1, 2 or 3 (or unset), got {self.n_types}")
        _check_number("fiber_types.atpase_ph", self.atpase_ph, low=0, high=14, allow_none=True)
        if self.level_names is not None:
            names = tuple(str(n) for n in self.level_names)
            if not 1 <= len(names) <= 3 or len(set(names)) != len(names):
                _fail("setting fiber_types.level_names needs 1-3 distinct names, light to dark; "
                      f"got {self.level_names!r}")
            _set(self, "level_names", names)
        channels = _pairs("fiber_types.type_channels", self.type_channels, int)
        for key, ch in channels:
            if ch < 0:
                _fail(f"setting fiber_types.type_channels: channel of {key!r} must be >= 0")
        _set(self, "type_channels", channels)
        _set(self, "channel_thresholds",
             _pairs("fiber_types.channel_thresholds", self.channel_thresholds, float))
        unknown = {k for k, _ in self.channel_thresholds} - {k for k, _ in channels}
        if unknown:
            _fail(f"setting fiber_types.channel_thresholds names types without a channel: "
                  f"{sorted(unknown)}; add them to type_channels")
        _check_int("fiber_types.enclosed_min_neighbors", self.enclosed_min_neighbors, low=1)


@dataclass(frozen=True)
class NucleiSettings:
    """How nuclei are detected (hematoxylin on H&E, a DAPI channel on IF) and called central."""

    enabled: bool = True
    """Detect nuclei and count centrally nucleated fibers."""
    channel: int | None = None
    """IF: the nuclear (DAPI / Hoechst) channel; without it no nuclei are counted on IF."""
    central_ratio: float = 0.75
    """A nucleus is central when centroid-to-nucleus <= ratio x centroid-to-border along the
    same ray (MyoQuant's rule)."""
    threshold: float | None = None
    """Fixed threshold on the nuclear signal (hematoxylin OD, or raw DAPI intensity);
    None = Otsu on the signal inside the fibers and their gaps."""
    min_diameter_um: float = 3.0
    """Smallest nucleus kept, as the diameter of a disk of the same area (µm); myonuclei cut
    across are ~3-6 µm wide, smaller blobs are specks."""
    min_diameter_fraction: float = 0.06
    """Without a pixel size: smallest nucleus as a fraction of the slide's median fiber min
    Feret (3 µm in a 50 µm fiber)."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            _fail(f"setting nuclei.enabled must be true or false, got {self.enabled!r}")
        _check_int("nuclei.channel", self.channel, low=0, allow_none=True)
        _check_number("nuclei.central_ratio", self.central_ratio, low=0, high=1, low_open=True)
        _check_number("nuclei.threshold", self.threshold, allow_none=True)
        _check_number("nuclei.min_diameter_um", self.min_diameter_um, low=0, low_open=True)
        _check_number("nuclei.min_diameter_fraction", self.min_diameter_fraction, low=0,
                      high=1, low_open=True)


@dataclass(frozen=True)
class ScoringSettings:
    """Every threshold of the scoring; defaults and sources in ``docs/scoring.md``."""

    reference: Literal["adult-male", "adult-female", "child", "mouse", "rat"] | None = None
    """The normal reference (:mod:`histo.score.reference`): adult male 40-80 µm, adult female
    30-70 µm (Dubowitz), child (by ``age_years``, Oertel 1988), mouse / rat (relative
    criterion, no published range). None: ``sex`` decides, else adult male is assumed and
    every figure using it says so."""
    age_years: float | None = None
    """Age in years; needed by the ``child`` reference."""
    muscle: str | None = None
    """The muscle, named beside the reference (no per-muscle range is built in)."""
    sex: Literal["male", "female"] | None = None
    """Without ``reference``: the adult normal range of that sex (male 40-80 µm, female
    30-70 µm); with ``reference="child"``: the adult range from 15 years."""
    normal_range_um: tuple[float, float] | None = None
    """Explicit normal range (lo, hi) of min Feret in µm (other muscles, rodent strains);
    overrides the reference's range."""
    small_rule: Literal["auto", "absolute", "relative", "either", "both"] = "auto"
    """How *small* is decided: ``absolute`` (min Feret < ``small_max_um``), ``relative``
    (below a fraction of the slide median or a percentile), ``either``, ``both``; ``auto`` is
    absolute when sizes are in µm and relative otherwise."""
    small_max_um: float | None = None
    """Absolute small threshold in µm; None = the lower bound of the normal range."""
    small_median_fraction: float = 0.6
    """Relative rule: small when min Feret < this fraction of the slide's median min Feret."""
    small_percentile: float | None = None
    """Relative rule alternative: small when below this percentile of the slide (replaces the
    median fraction when set)."""
    angular_min: float = 0.34
    """A fiber is angular when its ``angularity`` (histo.measure.shape) is >= this. 0.34 is
    the 98th percentile of the manual NCL-SM human masks (S11 1 %, S60 3 % angular), below
    a square / any parallelogram (0.4) and a triangle (0.6); ``docs/angularity.md``."""
    dark_min_z: float = 3.0
    """A fiber is dark when its ``darkness`` >= this: on NADH/SDH/esterase a z within the
    darkest fiber-type level, on H&E against its neighbours (histo.measure.darkness,
    docs/scoring.md "Darkness"). 3 keeps normal type-1 fibers (a Gaussian level: 0.13 %
    above 3) from being called dark."""
    regenerating_min_z: float = 2.0
    """H&E: a centrally nucleated fiber whose basophilia is this many robust SDs above its
    neighbours' is regenerating-like (``is_regenerating``), never SAD."""
    dark_stains: tuple[Stain, ...] = ("he", "nadh", "sdh", "esterase")
    """Stains on which darkness means atrophy; elsewhere (ATPase: type, IF, PSR) no fiber is
    dark and so none is SAD."""
    group_on: Literal["small", "atrophic", "sad"] = "small"
    """Which fibers form atrophy groups and enter the join-count test."""
    min_group_size: int = 2
    """Connected atrophic fibers form a group (``atrophy_group`` > 0) from this size on."""
    adjacency_gap_um: float = 3.0
    """Two fibers are neighbours when their borders are at most this far apart (µm)."""
    adjacency_gap_px: float = 3.0
    """Same in pixels, used when the pixel size is unknown."""
    permutations: int = 999
    """Label permutations of the join-count tests (0 = no test); p >= 1/(permutations+1)."""
    seed: int = 0
    """Random seed of the permutations (results are reproducible)."""
    alpha: float = 0.05
    """Grouping is reported as beyond chance when p < alpha."""
    af_normal_max: float = 150.0
    """Atrophy factor above this is outside the normal range (Dubowitz)."""
    hf_normal_max: float = 150.0
    """Hypertrophy factor above this is outside the normal range (Dubowitz)."""
    vc_normal_max: float = 250.0
    """Variability coefficient above this is outside the normal range (Dubowitz)."""
    central_nuclei_normal_max_pct: float = 3.0
    """Percent of centrally nucleated fibers above this is outside the normal range (adult
    human muscle; normal mouse muscle is lower, ~1%)."""
    fiber_types: FiberTypeSettings = field(default_factory=FiberTypeSettings)
    """Fiber typing options."""
    nuclei: NucleiSettings = field(default_factory=NucleiSettings)
    """Nuclei options."""

    def __post_init__(self) -> None:
        if self.sex is not None:
            _check_choice("sex", self.sex, SEXES)
        if self.reference is not None:
            _check_choice("reference", self.reference, REFERENCES)
        _check_number("age_years", self.age_years, low=0, high=130, allow_none=True)
        if self.reference == "child" and self.age_years is None:
            _fail("setting reference 'child' needs age_years (--age YEARS)")
        if self.muscle is not None and not isinstance(self.muscle, str):
            _fail(f"setting muscle must be text, got {self.muscle!r}")
        if self.normal_range_um is not None:
            rng = self.normal_range_um
            if isinstance(rng, (str, bytes)) or len(rng) != 2:
                _fail(f"setting normal_range_um must be two numbers (lo, hi) in µm, got {rng!r}")
            for v in rng:
                _check_number("normal_range_um", v, low=0, low_open=True)
            lo, hi = float(rng[0]), float(rng[1])
            if not lo < hi:
                _fail(f"setting normal_range_um needs lo < hi, got ({lo:g}, {hi:g})")
            _set(self, "normal_range_um", (lo, hi))
        _check_choice("small_rule", self.small_rule, SMALL_RULES)
        _check_number("small_max_um", self.small_max_um, low=0, low_open=True, allow_none=True)
        _check_number("small_median_fraction", self.small_median_fraction, low=0, high=1,
                      low_open=True)
        _check_number("small_percentile", self.small_percentile, low=0, high=100, low_open=True,
                      allow_none=True)
        _check_number("angular_min", self.angular_min)
        _check_number("dark_min_z", self.dark_min_z)
        _check_number("regenerating_min_z", self.regenerating_min_z)
        stains = tuple(str(s) for s in self.dark_stains)
        for s in stains:
            _check_choice("dark_stains", s, STAINS)
        _set(self, "dark_stains", stains)
        _check_choice("group_on", self.group_on, GROUP_ON)
        _check_int("min_group_size", self.min_group_size, low=1)
        _check_number("adjacency_gap_um", self.adjacency_gap_um, low=0)
        _check_number("adjacency_gap_px", self.adjacency_gap_px, low=0)
        _check_int("permutations", self.permutations, low=0)
        _check_int("seed", self.seed, low=0)
        _check_number("alpha", self.alpha, low=0, high=1, low_open=True)
        for name in ("af_normal_max", "hf_normal_max", "vc_normal_max",
                     "central_nuclei_normal_max_pct"):
            _check_number(name, getattr(self, name), low=0)
        for name, cls in (("fiber_types", FiberTypeSettings), ("nuclei", NucleiSettings)):
            value = getattr(self, name)
            if isinstance(value, dict):
                _set(self, name, _build(cls, value, prefix=f"{name}."))
            elif not isinstance(value, cls):
                _fail(f"setting {name} must be a table of options, got {value!r}")

    # ------------------------------------------------------------------ derived values
    @property
    def reference_in_force(self) -> Reference:
        """The normal reference in force (:func:`histo.score.reference.resolve_reference`)."""
        return resolve_reference(self.reference, sex=self.sex, age_years=self.age_years,
                                 muscle=self.muscle, normal_range_um=self.normal_range_um)

    @property
    def normal_range(self) -> tuple[float, float] | None:
        """The normal range (lo, hi) of min Feret in µm in force; None when the reference
        has no published range (rodents: relative criterion)."""
        return self.reference_in_force.min_feret_um

    def gap_px(self, pixel_size_um: float | None) -> int:
        """The neighbour gap in whole pixels (``adjacency_gap_px`` when the pixel size is unknown)."""
        return gap_in_pixels(self.adjacency_gap_um, pixel_size_um, default_px=self.adjacency_gap_px)

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every setting (nested options as dicts, pairs as mappings).

        ``ScoringSettings.from_dict(s.to_dict()) == s``.
        """
        out = _plain(self)
        rng = self.normal_range
        out["normal_range_in_force_um"] = None if rng is None else list(rng)
        out["reference_in_force"] = self.reference_in_force.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | Path | None = None) -> ScoringSettings:
        """Settings from a dict (as in a file or ``summary.json``); unknown keys are an error."""
        data = dict(data)
        data.pop("normal_range_in_force_um", None)
        data.pop("reference_in_force", None)
        try:
            return _build(cls, data)
        except HistoInputError as err:
            raise HistoInputError(err.reason, path=path) from err

    @classmethod
    def from_file(cls, path: str | Path) -> ScoringSettings:
        """Read settings from a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON file.

        Keys not given keep their defaults. A ``[scoring]`` table (or a ``settings`` key, as in
        ``summary.json``) may wrap the options.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise HistoInputError(f"cannot read the settings file ({err.strerror})", path=path) from err
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                data = tomllib.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            elif suffix == ".json":
                data = json.loads(text)
            else:
                raise HistoInputError("settings files must end in .yaml, .yml, .toml or .json",
                                      path=path)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            raise HistoInputError(f"not valid {suffix[1:].upper()}: {err}", path=path) from err
        except Exception as err:  # yaml.YAMLError without importing yaml at module level
            if isinstance(err, HistoInputError):
                raise
            raise HistoInputError(f"not valid YAML: {err}", path=path) from err
        if not isinstance(data, dict):
            raise HistoInputError("the settings file must hold a table of options", path=path)
        for wrapper in ("scoring", "settings"):
            if set(data) == {wrapper} and isinstance(data[wrapper], dict):
                data = data[wrapper]
        return cls.from_dict(data, path=path)

    def replace(self, **overrides: Any) -> ScoringSettings:
        """A copy with some settings changed; nested options take a dict of changes.

        Examples
        --------
        >>> ScoringSettings().replace(sex="female", fiber_types={"n_types": 2}).fiber_types.n_types
        2
        """
        for name in ("fiber_types", "nuclei"):
            if isinstance(overrides.get(name), dict):
                overrides[name] = dataclasses.replace(getattr(self, name), **_known(
                    type(getattr(self, name)), overrides[name], prefix=f"{name}."))
        _known(type(self), overrides)
        return dataclasses.replace(self, **overrides)


def _known(cls: type, data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        _fail(f"unknown setting{'s' if len(unknown) > 1 else ''} "
              f"{', '.join(prefix + str(k) for k in unknown)}; valid: "
              f"{', '.join(prefix + n for n in names)}")
    return data


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    data = _known(cls, dict(data), prefix)
    for key in ("normal_range_um", "level_names", "dark_stains"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return cls(**data)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("type_channels", "channel_thresholds"):
                out[f.name] = {k: v for k, v in value}
            else:
                out[f.name] = _plain(value)
        return out
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    return obj

