"""Stage 4, denervation scoring: the per-fiber table -> fiber classes + slide figures.

Takes the table of :func:`histo.measure.morphometry.measure_fibers`, the labels, optionally the
image (fiber types and nuclei need pixels), the stain and a frozen
:class:`~histo.score.settings.ScoringSettings`; gives the table with class columns (``counted``,
``is_small``, ``is_angular``, ``is_dark``, ``is_sad``, ``is_atrophic``, ``is_hypertrophic``,
``atrophy_group``, ``fiber_type``, nuclei counts) and the JSON-able scoring part of
``summary.json``, assembled by the one summary builder :func:`histo.score.summary.build_summary`.
Imports :mod:`histo.io`, :mod:`histo.measure` and :mod:`histo.errors` only.

Modules
-------
scoring     ``score_slide``, ``classify_fibers``, ``slide_statistics``, ``score_table``,
            ``reviewed_sad``, ``resolve_pixel_size``, ``area_basis``, ``fiber_counts``
            (:mod:`histo.score.scoring`): classes and slide statistics.
settings    ``ScoringSettings``, ``FiberTypeSettings``, ``NucleiSettings`` (:mod:`histo.score.settings`).
reference   ``Reference``, ``reference_for``, ``resolve_reference``, ``child_range_um``,
            ``type_family`` (:mod:`histo.score.reference`): named normal references with citations.
cases       ``read_cases``, ``parse_cases``, ``case_for``, ``Case`` (:mod:`histo.score.cases`): the
            ``--cases`` file, one reference per slide of a cohort.
summary     ``build_summary``, ``pixel_size_warnings`` (:mod:`histo.score.summary`): one slide's summary.
classes     ``fiber_class`` (:mod:`histo.score.classes`): display classes and their colours.
dubowitz    ``atrophy_factor``, ``hypertrophy_factor``, ``variability_coefficient``, ``size_figures``,
            ``describe_sizes``, ``type_figures``, ``predominance`` (:mod:`histo.score.dubowitz`):
            Dubowitz size figures, pooled and per fiber type.
grouping    ``connected_groups``, ``join_count_test``, ``category_join_test``, ``atrophy_groups``,
            ``group_summary``, ``index_edges``, ``join_moments``, ``expected_group_count``,
            ``JoinCountResult``
            (:mod:`histo.score.grouping`): groups and join-count tests on the neighbour graph.
fibertypes  ``type_fibers``, ``type_statistics``, ``fit_levels``, ``level_names``, ``fiber_means``,
            ``otsu_1d``, ``enclosed_fibers`` (:mod:`histo.score.fibertypes`): fiber typing.
nuclei      ``central_nuclei``, ``detect_nuclei``, ``nuclear_signal``, ``count_nuclei``,
            ``border_ratio``, ``recount_central`` (:mod:`histo.score.nuclei`): central nuclei.
evidence    ``build_evidence``, ``figure``, ``format_p`` (:mod:`histo.score.evidence`): figures with
            normal ranges and one plain-language line, never a diagnosis.
"""
