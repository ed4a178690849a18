"""Stage 7, report: a cohort of scored slides, for people.

Takes a results folder (``cohort.csv`` and each slide's ``summary.json``, ``fibers.csv`` /
``fibers.parquet``, ``overlay.png``, and any saved review, applied through
:mod:`histo.review.rescore`); gives ``RESULTS/report.html``, one self-contained page with the
cohort table, per-slide figures and embedded plots (template ``histo/report/templates``).
Imports :mod:`histo.io`, :mod:`histo.score`, :mod:`histo.review` and :mod:`histo.errors`;
matplotlib and jinja2 are imported only when a report is built.

Modules
-------
html   ``build_report``, ``render_report``, ``load_cohort``, ``load_slide``, ``SlideEntry``,
       ``format_number``, ``pretty_unit`` (:mod:`histo.report.html`): the cohort report.
cohort ``COHORT_COLUMNS``, ``slide_figures``, ``cohort_frame`` (:mod:`histo.report.cohort`): the
       ``cohort.csv`` table, the same typed columns for every cohort.
plots  ``min_feret_histogram``, ``area_angularity_scatter``, ``cohort_min_feret_boxplot``,
       ``thumbnail_data_uri``, ``figure_to_data_uri`` (:mod:`histo.report.plots`): plots as
       ``data:`` URIs, no pyplot state.
"""
