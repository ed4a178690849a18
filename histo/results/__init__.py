"""Stage 5, results: one slide's output folder, written all or nothing.

Takes the labels, the scored per-fiber table, the summary and optionally the image; gives the
slide folder ``labels.tif`` (uint32 OME-TIFF pyramid with pixel size), ``fibers.csv``,
``fibers.parquet``, ``summary.json``, ``fibers.geojson`` (QuPath detections), ``rois.zip``
(ImageJ ROI set) and ``overlay.png`` (class-coloured outlines), built in a temporary sibling
folder and renamed into place. Imports :mod:`histo.io`, :mod:`histo.score` (display classes)
and :mod:`histo.errors`.

Modules
-------
tables  ``write_fiber_tables``, ``read_fiber_table``, ``collect_fiber_tables``
        (:mod:`histo.results.tables`): fibers.parquet / fibers.csv in the common schema.
writer  ``write_slide_outputs``, ``write_labels_pyramid``, ``fibers_geojson``, ``write_roi_zip``,
        ``render_overlay`` (:mod:`histo.results.writer`); ``to_jsonable`` is re-exported there
        from :mod:`histo.io.jsonable`.
"""
