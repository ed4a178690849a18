"""Reading images and slides: layouts, pixel size from metadata, bad files, lazy levels."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import tifffile
from PIL import Image

from histo.errors import HistoInputError
from histo.io.image import ImageData, image_checksum, read_image, sniff_format
from histo.io.slide import open_slide


# --------------------------------------------------------------------------- real files
def test_real_fluorescence_is_cyx_with_imagej_pixel_size(real_data):
    img = read_image(real_data / "if" / "fs_rat.tif", channel=3)
    assert img.axes == "CYX" and img.pixels.shape == (4, 592, 592) and img.pixels.dtype == np.uint16
    assert img.pixel_size_um == pytest.approx(0.9224, abs=1e-4)
    assert img.pixel_size_source == "imagej"
    assert img.n_channels == 4 and img.shape_yx == (592, 592) and not img.is_rgb
    assert np.array_equal(img.plane(), img.pixels[3])


def test_real_he_patch_info_string_is_not_parsed(real_data):
    # its ImageJ "Info" embeds the OME of the parent image: the pixel size stays unknown
    img = read_image(real_data / "he" / "fs_he_patch.tif")
    assert img.axes == "YXS" and img.pixels.dtype == np.uint8
    assert img.pixel_size_um is None and img.pixel_size_source is None


def test_real_jpeg_and_user_pixel_size(real_data):
    img = read_image(real_data / "he" / "regen_section.jpg", pixel_size_um=0.65)
    assert img.axes == "YXS" and img.shape_yx == (3905, 3209)
    assert img.pixel_size_um == 0.65 and img.pixel_size_source == "user"


# --------------------------------------------------------------------------- pixel size
def test_ome_physical_size_with_unit(tmp_path):
    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 9), np.uint16), ome=True,
                     metadata={"axes": "CYX", "PhysicalSizeX": 325.0, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 325.0, "PhysicalSizeYUnit": "nm",
                               "Channel": {"Name": ["DAPI", "Laminin"]}})
    img = read_image(path, channel="laminin")
    assert img.pixel_size_um == pytest.approx(0.325) and img.pixel_size_source == "ome"
    assert img.channel_names == ("DAPI", "Laminin") and img.channel == 1


@pytest.mark.parametrize("unit,res,expected", [("CENTIMETER", 20000.0, 0.5), ("INCH", 50800.0, 0.5),
                                               ("INCH", 72.0, None), ("NONE", 2.0, None)])
def test_tiff_resolution_tags(tmp_path, unit, res, expected):
    path = tmp_path / "r.tif"
    tifffile.imwrite(path, np.zeros((5, 5), np.uint8), resolution=(res, res), resolutionunit=unit)
    img = read_image(path)
    assert img.pixel_size_um == (pytest.approx(expected) if expected else None)
    assert img.pixel_size_source == ("tiff-resolution" if expected else None)


def test_implausible_ome_value_is_ignored_with_a_warning(tmp_path, caplog):
    path = tmp_path / "b.ome.tif"
    tifffile.imwrite(path, np.zeros((5, 5), np.uint8), ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 1.0, "PhysicalSizeXUnit": "mm"})
    img = read_image(path)
    assert img.pixel_size_um is None
    assert "ignoring the pixel size 1000" in caplog.text


def test_aperio_mpp(tmp_path):
    path = tmp_path / "s.svs"
    desc = "Aperio Image Library v12.0.15\r\n64x48 [0,0 64x48] (16x16) RAW|AppMag = 20|MPP = 0.4990"
    tifffile.imwrite(path, np.full((48, 64, 3), 200, np.uint8), photometric="rgb", tile=(16, 16),
                     description=desc)
    img = read_image(path)
    assert img.pixel_size_um == pytest.approx(0.499) and img.pixel_size_source == "aperio"
    assert open_slide(path).pixel_size_um == pytest.approx(0.499)


def test_png_density(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path, dpi=(50800, 50800))
    img = read_image(path)
    assert img.pixel_size_um == pytest.approx(0.5, rel=1e-3) and img.pixel_size_source == "png-resolution"


@pytest.mark.parametrize("bad", [0.0, -1, 500, "abc"])
def test_implausible_user_pixel_size(tmp_path, bad):
    path = tmp_path / "g.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    with pytest.raises(HistoInputError, match="pixel size"):
        read_image(path, pixel_size_um=bad)


# --------------------------------------------------------------------------- layouts
def test_rgba_png_drops_alpha(tmp_path):
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    path = tmp_path / "a.png"
    Image.fromarray(rgba).save(path)
    img = read_image(path)
    assert img.axes == "YXS" and img.pixels.shape == (6, 7, 3) and img.pixels[0, 0, 0] == 200


def test_16bit_rgb_with_12bit_data_is_scaled_to_8bit(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint16)
    rgb[0, 0] = (4095, 2048, 0)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    img = read_image(path)
    assert img.pixels.dtype == np.uint8 and img.pixels[0, 0].tolist() == [255, 128, 0]


def test_float_rgb_and_planar_rgb(tmp_path):
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, np.full((3, 5, 4), 0.5, np.float32), photometric="rgb", planarconfig="separate")
    img = read_image(path)
    assert img.axes == "YXS" and img.pixels.shape == (5, 4, 3) and img.pixels[0, 0, 0] == 128


def test_grey_alpha_palette_and_bilevel_png(tmp_path):
    Image.fromarray(np.dstack([np.full((3, 3), 7, np.uint8), np.full((3, 3), 255, np.uint8)]), "LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").axes == "YX"
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").pixels[0, 1].tolist() == [255, 0, 0]
    Image.fromarray(np.array([[0, 1]], bool)).save(tmp_path / "b.png")
    assert read_image(tmp_path / "b.png").pixels.tolist() == [[0, 255]]


def test_16bit_grey_png_keeps_dtype(tmp_path):
    path = tmp_path / "g16.png"
    Image.fromarray(np.array([[0, 40000]], np.uint16)).save(path)
    img = read_image(path)
    assert img.axes == "YX" and img.pixels.dtype == np.uint16 and img.pixels[0, 1] == 40000


def test_unnamed_stack_becomes_channels_but_z_stack_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((3, 5, 5), np.uint8), imagej=True, metadata={"axes": "CYX"})
    assert read_image(tmp_path / "c.tif").axes == "CYX"
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((3, 5, 5), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(HistoInputError, match="z-stack of 3 planes") as err:
        read_image(tmp_path / "z.tif")
    assert "z.tif" in str(err.value)


def test_nan_pixels_are_refused_clearly(tmp_path):
    arr = np.ones((4, 4), np.float32)
    arr[1, 1] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, arr)
    with pytest.raises(HistoInputError, match="1 NaN") as err:
        read_image(path)
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------- channels
def test_channel_validation_and_plane(tmp_path):
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4), imagej=True,
                     metadata={"axes": "CYX"})
    with pytest.raises(HistoInputError, match=r"channel 5 does not exist.*has 2 channels.*0 and 1"):
        read_image(path, channel=5)
    with pytest.raises(HistoInputError, match="no channel named"):
        read_image(path, channel="laminin")
    img = read_image(path)
    with pytest.raises(HistoInputError, match="choose the one to analyse"):
        img.plane()
    assert img.plane(1)[0, 0] == 12
    rgb = ImageData(pixels=np.full((2, 2, 3), (255, 0, 0), np.uint8), axes="YXS")
    assert rgb.plane()[0, 0] == 54 and rgb.plane(0)[0, 0] == 255
    with pytest.raises(HistoInputError, match="only channel 0"):
        ImageData(pixels=np.zeros((2, 2)), axes="YX").plane(1)
    with pytest.raises(ValueError, match="do not fit"):
        ImageData(pixels=np.zeros((2, 2)), axes="CYX")


# --------------------------------------------------------------------------- bad files
def test_zero_byte_truncated_text_and_missing_files(tmp_path):
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(HistoInputError, match="empty") as err:
        read_image(empty)
    assert str(empty) in str(err.value)

    text = tmp_path / "notes.tif"
    text.write_text("these are my notes, not an image\n")
    with pytest.raises(HistoInputError, match="not an image") as err:
        read_image(text)
    assert str(text) in str(err.value)

    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, np.random.default_rng(0).integers(0, 255, (300, 300, 3), np.uint8), photometric="rgb")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(HistoInputError, match="truncated or corrupt") as err:
        read_image(cut)
    assert str(cut) in str(err.value)

    jpeg = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "w.jpg")
    jpeg.write_bytes((tmp_path / "w.jpg").read_bytes()[:600])
    with pytest.raises(HistoInputError, match="truncated or corrupt"):
        read_image(jpeg)

    with pytest.raises(HistoInputError, match="not found"):
        read_image(tmp_path / "missing.tif")
    with pytest.raises(HistoInputError, match="folder"):
        read_image(tmp_path)


def test_foreign_formats_get_a_hint(tmp_path):
    czi = tmp_path / "scan.czi"
    czi.write_bytes(b"ZISRAWFILE" + b"\x00" * 100)
    with pytest.raises(HistoInputError, match="OME-TIFF"):
        read_image(czi)
    assert sniff_format(czi) == "czi"


def test_image_checksum_streams_the_file(tmp_path):
    data = np.random.default_rng(2).bytes(3_000_000)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    assert image_checksum(path, chunk_bytes=4096) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- slides
def _pyramid(path, base, levels=3, tile=64, **kw):
    with tifffile.TiffWriter(path) as tw:
        tw.write(base, tile=(tile, tile), subifds=levels - 1, **kw)
        for k in range(1, levels):
            tw.write(base[:: 2**k, :: 2**k] if base.ndim == 2 or kw.get("photometric") == "rgb"
                     else base[:, :: 2**k, :: 2**k], tile=(tile, tile), subfiletype=1,
                     photometric=kw.get("photometric"))


def test_slide_levels_regions_dask_and_pickle(tmp_path):
    rng = np.random.default_rng(4)
    base = rng.integers(0, 255, (300, 200, 4), np.uint8)  # RGBA: alpha dropped
    path = tmp_path / "pyr.tif"
    _pyramid(path, base, photometric="rgb", extrasamples=("unassalpha",),
             resolution=(1e4 / 0.25, 1e4 / 0.25), resolutionunit="CENTIMETER")
    slide = open_slide(path)
    assert slide.axes == "YXS" and slide.level_count == 3 and slide.n_channels == 3
    assert slide.level_shapes == [(300, 200), (150, 100), (75, 50)]
    assert slide.level_downsamples == [1.0, 2.0, 4.0]
    assert slide.pixel_size_um == pytest.approx(0.25) and slide.level_pixel_size_um(2) == pytest.approx(1.0)
    assert np.array_equal(slide.read_region(1, 10, 20, 30, 40), base[::2, ::2][10:40, 20:60, :3])
    assert slide.read_region(0, 290, 190, 50, 50).shape == (10, 10, 3)  # clipped at the edge
    arr = slide.to_dask(0)
    assert arr.chunksize == (64, 64, 3)
    assert np.array_equal(arr[50:130, 7:99].compute(), base[50:130, 7:99, :3])
    again = pickle.loads(pickle.dumps(arr))
    assert np.array_equal(again.compute(), base[..., :3])
    assert slide.thumbnail(100).shape == (100, 67, 3)
    assert np.array_equal(slide.image(2).pixels, base[::4, ::4, :3])
    with pytest.raises(ValueError, match="levels 0 to 2"):
        slide.read_region(3, 0, 0, 1, 1)


def test_slide_multichannel_16bit_and_coarse_thumbnail(tmp_path):
    base = np.random.default_rng(5).integers(0, 4000, (2, 1024, 512), np.uint16)
    path = tmp_path / "fl.ome.tif"
    tifffile.imwrite(path, base, tile=(128, 128), ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 0.65})
    slide = open_slide(path)
    assert slide.axes == "CYX" and slide.level_count == 1 and slide.dtype == np.uint16
    assert slide.to_dask(0).chunksize == (2, 128, 128)
    assert np.array_equal(slide.read_region(0, 5, 6, 7, 8), base[:, 5:12, 6:14])
    thumb = slide.thumbnail(128)  # factor 8: averaged block by block through dask
    assert thumb.shape == (2, 128, 64) and thumb.dtype == np.uint16
    assert abs(float(thumb.mean()) - float(base.mean())) < 20


def test_slide_16bit_rgb_scaled_like_read_image(tmp_path):
    rgb = np.zeros((64, 64, 3), np.uint16)
    rgb[0, 0] = (4095, 0, 0)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", tile=(32, 32))
    assert open_slide(path).read_region(0, 0, 0, 2, 2)[0, 0].tolist() == [255, 0, 0]


def test_png_opens_as_one_level_slide(real_data):
    slide = open_slide(real_data / "he" / "cn_img01_labels.png")
    assert slide.level_count == 1 and slide.axes == "YX" and slide.level_shapes == [(1002, 1002)]
    assert slide.to_dask(0).shape == (1002, 1002)


def test_slide_bad_file(tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 50)
    with pytest.raises(HistoInputError, match="bad.tif"):
        open_slide(path)
