"""Stage 3, morphometry: instance labels + pixels -> the per-fiber table.

Takes a label image (and optionally the stained image, the pixel size, a tissue mask); gives
a :class:`pandas.DataFrame` with one row per fiber (centroid, bounding box, area, perimeter,
Feret diameters, shape, darkness, neighbours, edge flag; sizes in ``_um`` / ``_um2`` when the
pixel size is known, ``_px`` otherwise) and the fiber neighbour graph (an ``(E, 2)`` array of
label pairs). Imports :mod:`histo.io` and :mod:`histo.errors` only.

Modules
-------
morphometry  ``measure_fibers``, ``robust_z`` (:mod:`histo.measure.morphometry`): the per-fiber table.
darkness     ``fiber_darkness``, ``fit_type_levels``, ``local_z``, ``local_reference``, ``robust_z``
             (:mod:`histo.measure.darkness`): darkness against the right reference per stain
             (darkest fiber-type level with the stain gradient; local neighbours on H&E).
fiber_table  ``table_columns``, ``size_column``, ``empty_table``, the column registry ``COLUMNS``,
             ``to_export`` / ``from_export`` (:mod:`histo.measure.fiber_table`): the table's column
             names and unit suffixes, and the one exported schema (``docs/columns.md``).
adjacency    ``fiber_adjacency``, ``gap_in_pixels``, ``degree``, ``grow_labels``
             (:mod:`histo.measure.adjacency`): the fiber neighbour graph.
feret        ``calipers``, ``convex_hull_xy``, ``caliper_widths``, ``feret_diameters_px``,
             ``feret_diameters_batch``, ``lattice_area_px``, ``lattice_areas_px``
             (:mod:`histo.measure.feret`): Feret diameters and convex area by rotating calipers.
shape        ``outer_contours``, ``perimeter_px``, ``outline_length_px``, ``angularity``,
             ``corner_turns``, ``main_outline``, ``inertia_normalised_batch`` and the ``*_batch`` forms
             (:mod:`histo.measure.shape`): outline, perimeter, angularity.
collagen     ``collagen_fractions``, ``collagen_masks``, ``collagen_summary``, ``red_collagen_od``
             (:mod:`histo.measure.collagen`): endomysial / perimysial collagen of PSR images.
_ragged      private: many polygons stored end to end (offsets), for the batch geometry.
"""
