"""Stage 8, batch: the stages glued per slide, for many slides and many machines.

Takes slide files and folders, a results folder and the scoring parameters; gives one result
folder per slide (:mod:`histo.results`), ``cohort.csv`` (one row per slide, error rows included)
and the cohort report (:mod:`histo.report`). Whole slides are scored tile by tile with bounded
memory; runs resume (fingerprints) and run in parallel on Dask. Uses every stage above it;
the segmentation modules (torch) are imported inside the functions that segment, and dask,
distributed and tqdm only when a parallel run starts.

Modules
-------
pipeline   ``analyze``, ``measure_file``, ``score_file``, ``segment_and_analyze``, ``write_result``,
           ``SlideResult``, ``slide_id``, ``resolve_stain``, ``default_channel``
           (:mod:`histo.batch.pipeline`): one image through the stages.
run        ``run_batch``, ``BatchResult``, ``cohort_table`` (:mod:`histo.batch.run`): folders of slides.
slides     ``process_slide``, ``score_slide_file``, ``SlideJob``, ``ScoreParams``, ``plan_jobs``,
           ``run_fingerprint``, ``is_up_to_date``, ``read_summary``, ``cohort_row``
           (:mod:`histo.batch.slides`): one slide's job, used by both ``run`` and ``parallel``.
parallel   ``run_dask``, ``largest_first``, ``Progress`` (:mod:`histo.batch.parallel`): Dask
           clusters and progress bars.
discovery  ``find_slides``, ``assign_slide_ids`` (:mod:`histo.batch.discovery`): slides and ids.
wsi        ``score_wsi``, ``is_whole_slide``, ``choose_level``, ``detect_tissue``,
           ``write_wsi_outputs``, ``scratch_dir`` (:mod:`histo.batch.wsi`): whole slides.
wsi_tiles  ``segment_tiles``, ``measure_tiles``, ``count_tile_nuclei``, ``nuclei_state``,
           ``nuclei_summary``, ``signal_reference``, ``tile_signal``, ``mask_region``, ``halo_px``
           (:mod:`histo.batch.wsi_tiles`): the whole-slide tile loops.
"""
