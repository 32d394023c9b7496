from __future__ import annotations

import io

import pytest
from PIL import Image

from mm_rag_plugin.errors import DecompressionBombError, InvalidInputError
from mm_rag_plugin.generators import prepare_inline_image
from tests._generator_helpers import write_png


def test_small_png_is_sent_unchanged(tmp_path):
    path = write_png(tmp_path / "a.png", (40, 30))
    img = prepare_inline_image(path)
    assert img.data == path.read_bytes()
    assert (img.mime_type, img.width, img.height, img.resized) == ("image/png", 40, 30, False)


def test_large_image_is_downscaled_to_max_side(tmp_path):
    path = write_png(tmp_path / "big.png", (3000, 1200))
    img = prepare_inline_image(path, max_side=512)
    assert img.resized and img.mime_type == "image/jpeg"
    assert (img.width, img.height) == (512, 205)
    with Image.open(io.BytesIO(img.data)) as decoded:
        assert decoded.size == (512, 205)


def test_byte_budget_forces_smaller_encoding(tmp_path):
    noisy = Image.effect_noise((800, 800), 90).convert("RGB")
    path = tmp_path / "noise.png"
    noisy.save(path)
    assert path.stat().st_size > 200_000
    img = prepare_inline_image(path, max_side=800, max_bytes=40_000)
    assert img.resized and len(img.data) <= 40_000


def test_unsupported_format_is_converted_to_jpeg(tmp_path):
    path = tmp_path / "a.gif"
    Image.new("RGB", (20, 20), (0, 255, 0)).save(path, format="GIF")
    img = prepare_inline_image(path)
    assert img.mime_type == "image/jpeg" and img.resized


def test_bytes_input(tmp_path):
    data = write_png(tmp_path / "a.png").read_bytes()
    assert prepare_inline_image(data).data == data


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("decompression_bomb.gif", DecompressionBombError),
        ("truncated_image.png", InvalidInputError),
        ("zero_width.gif", InvalidInputError),
        ("broken.png", InvalidInputError),
    ],
)
def test_hostile_images_raise_naming_the_file(shared_data, name, error):
    path = shared_data / "malformed_images" / "files" / name
    with pytest.raises(error) as info:
        prepare_inline_image(path)
    assert name in str(info.value)


def test_missing_file_and_empty_bytes(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        prepare_inline_image(tmp_path / "nope.png")
    with pytest.raises(InvalidInputError, match="empty"):
        prepare_inline_image(b"")


def test_impossible_budget_is_refused():
    with pytest.raises(InvalidInputError, match="max_side"):
        prepare_inline_image(b"x", max_side=10)
