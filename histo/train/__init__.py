"""Beside the stages, training: reference labels -> network weights, and how good they are.

Takes images with instance labels (real pairs, synthetic sections from :mod:`histo.synth`,
membrane renderings) and a :class:`~histo.train.loop.TrainSettings`; gives weights in
``models/`` (safetensors + config, :mod:`histo.segment.net`) and accuracy figures (F1 at IoU
thresholds, min-Feret error). Imports :mod:`histo.io`, :mod:`histo.segment`,
:mod:`histo.measure`, :mod:`histo.synth` and :mod:`histo.errors`; no stage imports it
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
matching  ``label_overlap``, ``match_pairs``, ``counted_objects``, ``detection_scores``,
          ``check_label_image``, ``Overlap`` (:mod:`histo.train.matching`): IoU table and optimal
          one-to-one matching.
"""
