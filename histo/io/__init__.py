"""Stage 1, input and output: bytes on disk -> pixels + pixel size, and masks from other tools.

Takes image files (TIFF, OME-TIFF, SVS, NDPI, PNG, JPEG), masks made elsewhere (label images,
ImageJ ROI sets, QuPath GeoJSON) and user-given values (stain, channel, pixel size); gives an
:class:`~histo.io.image.ImageData` (``"YX"``, ``"YXS"`` or ``"CYX"`` pixels, pixel size in µm or
None, never guessed), lazy :class:`~histo.io.slide.Slide` levels and validated ``uint32`` label
images; plus the small tools every stage shares (atomic writes, the one label check, the one
stain list, JSON values). Imports nothing from histo but :mod:`histo.errors`.

Modules
-------
image      ``read_image``, ``ImageData``, ``ImageLike``, ``image_checksum``, ``validate_channel``,
           ``normalise_axes``, ``normalise_values`` (:mod:`histo.io.image`): whole images.
slide      ``Slide``, ``open_slide``, ``da_coarsen`` (:mod:`histo.io.slide`): lazy pyramid levels.
pixelsize  ``check_pixel_size``, ``plausible``, ``unit_to_um``, ``tiff_pixel_size``, ``pil_pixel_size``
           (:mod:`histo.io.pixelsize`): pixel size from metadata.
files      ``check_file``, ``sniff_format`` (:mod:`histo.io.files`): file checks, format from the bytes.
channels   ``pick_channel`` (:mod:`histo.io.channels`): the analysed channel of a multichannel image.
stain      ``Stain``, ``STAINS``, ``check_stain``, ``guess_stain``, ``optical_density``, ``deconvolve_he``,
           ``darkness_signal``, ``image_layout``, ``estimate_background``, ``white_level``,
           ``full_scale`` (:mod:`histo.io.stain`): the stain names and stain signals.
labels     ``check_labels``, ``relabel_consecutive``, ``touches_edge`` (:mod:`histo.io.labels`).
masks      ``read_labels``, ``validate_labels`` (:mod:`histo.io.masks`): masks from other tools.
polygons   ``label_polygons``, ``polygons_to_labels``, ``rasterize_rings``, ``ring_area``
           (:mod:`histo.io.polygons`): exact outlines <-> raster (ImageJ/QuPath convention).
atomic     ``atomic_path``, ``atomic_write_bytes``, ``atomic_write_text``, ``atomic_directory``,
           ``partial_leftovers`` (:mod:`histo.io.atomic`): all-or-nothing writes.
jsonable   ``to_jsonable`` (:mod:`histo.io.jsonable`): strict JSON values (NaN -> null).
"""
