"""Stage 2, segmentation: pixels -> instance labels (one positive integer per fiber).

Takes an :class:`~histo.io.image.ImageData` or a (Y, X), (Y, X, 3|4) or (C, Y, X) array-like
(numpy, dask, zarr), the stain and, when known, the pixel size; gives a ``uint32`` (Y, X) label
image on the input grid, from the network or the classical baseline. Imports only :mod:`histo.io`
and :mod:`histo.errors`. torch is optional (the ``model`` extra): only ``net`` imports it, and
``inference`` imports ``net`` on the network's first use (:func:`histo.segment.inference.torch_net`,
a one-line :class:`histo.errors.MissingDependencyError` without torch), so the classical
segmenter and ``segmenter``'s other functions run without it.

Modules
-------
segmenter    ``segment``, ``Segmentation``, ``segment_image``, ``estimate_fiber_diameter``
             (:mod:`histo.segment.segmenter`): the entry point, the scale check.
evidence     ``network_evidence``, ``appearance``, ``relative_features``, ``fiber_score``, ``fit_logistic``
             (:mod:`histo.segment.evidence`): is an object a fiber?
tissue       ``detect_tissue``, ``tissue_mask``, ``objects_outside`` (:mod:`histo.segment.tissue`):
             glass, fill, ink and text hold no fibers.
inference    ``load_segmenter``, ``model_info``, ``canonical_maps``, ``region_labels``, ``estimate_scale``,
             ``MapsCache``, ``image_stats``, ``precision_for``, ``min_area_px``, ``typical_diameter_px``
             (:mod:`histo.segment.inference`): the network on regions, the scale search.
net          ``FiberNet``, ``NetConfig``, ``load_model``, ``save_model``, ``predict_maps``, ``models_dir``,
             ``default_device``, ``bf16_supported``, ``fuse_batchnorm`` (:mod:`histo.segment.net`): torch.
netinput     ``input_stats``, ``channel_percentiles``, ``network_input`` (:mod:`histo.segment.netinput`).
scale        ``factor_from_pixel_size``, ``factor_from_diameter``, ``rescale``, ``aligned_factor``,
             ``rescale_aligned``, ``scaled_shape``, ``central_crop``, ``estimate_diameter``
             (:mod:`histo.segment.scale`): the canonical scale.
postprocess  ``maps_to_labels``, ``upsample_labels``, ``drop_small`` (:mod:`histo.segment.postprocess`).
tiling       ``Tile``, ``tile_cover``, ``owned_labels``, ``write_owned`` (:mod:`histo.segment.tiling`):
             pure tile geometry, one owner tile per object.
imagesource  ``ImageSource``, ``image_source`` (:mod:`histo.segment.imagesource`): lazy region reads.
classical    ``segment_classical``, ``estimate_fiber_diameter`` (:mod:`histo.segment.classical`): no model.
interior     ``interior_map`` (:mod:`histo.segment.interior`): per-stain fiber-interior maps.
targets      ``fiber_targets``, ``median_diameter_px``, ``membrane_labels``, ``size_weights``
             (:mod:`histo.segment.targets`): what the network learns; the outline conventions.
"""
