"""Beside the stages, training: reference labels -> network weights, and how good they are.

Takes images with instance labels (real pairs, synthetic sections from :mod:`histo.synth`,
membrane renderings, partial annotations, reviewed slides) and a
:class:`~histo.train.loop.TrainSettings`; gives weights in
``models/`` (safetensors + config, :mod:`histo.segment.net`) and accuracy figures (F1 at IoU
thresholds, min-Feret error). Imports :mod:`histo.io`, :mod:`histo.segment`,
:mod:`histo.measure`, :mod:`histo.synth` and :mod:`histo.errors`; :mod:`~histo.train.reviews` also
:mod:`histo.review` and :mod:`histo.score` (it learns from saved reviews); no stage imports it
(``histo eval`` / ``histo train`` in :mod:`histo.commands` do). :mod:`~histo.train.loop` and
:mod:`~histo.train.trainset` load torch; :mod:`~histo.train.evaluate` and
:mod:`~histo.train.matching` do not.

Modules
-------
loop      ``train``, ``TrainSettings``, ``loss_fn`` (:mod:`histo.train.loop`): the training loop.
trainset  ``Sample``, ``find_pairs``, ``prepare_real``, ``synth_sample``, ``render_membrane``,
          ``membrane_sample``, ``make_batch``, ``targets_for`` (:mod:`histo.train.trainset`):
          training data at the canonical scale.
evaluate  ``match_labels``, ``MatchResult``, ``FeretError`` (:mod:`histo.train.evaluate`):
          predicted vs reference labels.
partial   ``read_partial``, ``prepare_partial``, ``known_region_samples`` (:mod:`histo.train.partial`):
          partially known truth (hand-drawn polygons, reviews), loss weight 0 elsewhere.
reviews   ``train_from_reviews``, ``review_truth``, ``split_holdout``, ``evaluate_holdout``,
          ``list_models`` (:mod:`histo.train.reviews`): fine-tuning on reviewed slides, with
          before/after figures on held-out reviewed fibers and a model card.
matching  ``label_overlap``, ``match_pairs``, ``counted_objects``, ``detection_scores``,
          ``check_label_image``, ``Overlap`` (:mod:`histo.train.matching`): IoU table and optimal
          one-to-one matching.
"""
