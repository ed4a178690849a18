"""Stage 6, review: a pathologist's corrections to a scored slide, without Qt.

Takes a slide's results (labels, scored per-fiber table, summary) and the reviewer's flags
(``"excluded"``, ``"confirmed_sad"``, ``"not_sad"``), label edits and the fibers stepped past in
the review walk (*seen*: confirmed as outlined, for training); gives the reviewed state
saved atomically beside the results (``review.json``, ``review/``), the table with the review
applied, and the slide's figures recomputed after review (through
:func:`histo.score.summary.build_summary`). :class:`~histo.review.session.ReviewSession` is the
model behind the napari plugin, which is a thin Qt view over it. Imports :mod:`histo.io`,
:mod:`histo.measure`, :mod:`histo.score`, :mod:`histo.results` (the session writes a new result
folder) and :mod:`histo.errors`.

Modules
-------
state      ``Review``, ``load_review``, ``save_review``, ``reviewed_labels``, ``file_sha256``,
           ``labels_sha256`` (:mod:`histo.review.state`): the reviewed state on disk.
flags      ``apply_review``, ``strip_review``, ``validate_flags``, ``FlagHistory`` (undo / redo),
           ``flag_label`` (:mod:`histo.review.flags`): flags applied to a per-fiber table.
queue      ``queue_order``, ``ReviewQueue``, ``walk_field_px``, ``describe_fiber``
           (:mod:`histo.review.queue`): the doubtful fibers in review order, walked one by one.
region     ``labels_inside_polygon``, ``ellipse_polygon`` (:mod:`histo.review.region`): the
           fibers inside a drawn shape (bulk flags).
colours    ``outline_palette``, ``image_backgrounds`` (:mod:`histo.review.colours`): class
           outline colours chosen to stand out from the image under them.
recompute  ``changed_labels``, ``recompute_changed`` (:mod:`histo.review.recompute`): re-measure
           only the fibers an edit changed.
rescore    ``reviewed_result``, ``rescore_flags`` (:mod:`histo.review.rescore`): a saved review
           applied to a result folder; the figures after review (pixel-free: what flags change).
options    ``settings_from_choices``, ``with_pixel_size`` (:mod:`histo.review.options`): the
           widget's scoring choices as the CLI's settings; sizes for a new pixel size.
export     ``export_review`` (:mod:`histo.review.export`): the reviewed outputs written to
           ``RESULTS/<slide-id>/reviewed/``.
session    ``ReviewSession``, ``session_from_result``, ``rescore_table``, ``rescore_snapshot`` (:mod:`histo.review.session`):
           the slide under review (flags, edits, rescoring, saving), tested without a display.
"""
