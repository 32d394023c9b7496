"""Safe image decoding: every input form, every pixel mode, bombs and broken files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mm_rag_plugin._images import load_image, read_image_bytes, to_rgb
from mm_rag_plugin.errors import DecompressionBombError, InvalidInputError


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_path_bytes_data_uri_and_pil_decode_to_the_same_pixels(tmp_path: Path) -> None:
    img = Image.new("RGB", (20, 10), (10, 200, 30))
    data = _png(img)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    decoded = [load_image(x).image for x in (path, str(path), data, uri, img)]
    for d in decoded:
        assert d.mode == "RGB" and d.size == (20, 10)
        assert d.getpixel((5, 5)) == (10, 200, 30)
    # the three encoded forms hash the same bytes
    assert len({load_image(x).hash for x in (path, data, uri)}) == 1


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("L", 128, (128, 128, 128)),
        ("1", 1, (255, 255, 255)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 32768, (128, 128, 128)),
        ("RGBA", (255, 0, 0, 0), (255, 255, 255)),  # fully transparent -> white background
        ("RGBA", (255, 0, 0, 255), (255, 0, 0)),
        ("LA", (0, 255), (0, 0, 0)),
    ],
)
def test_every_mode_becomes_8bit_rgb(mode: str, value: object, expected: tuple[int, int, int]) -> None:
    img = Image.new(mode, (4, 4), value)  # type: ignore[arg-type]
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == expected


def test_float_image_is_scaled_not_clipped() -> None:
    arr = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    out = np.asarray(to_rgb(Image.fromarray(arr, mode="F")))
    assert out[0, 0, 0] == 0 and out[3, 3, 0] == 255


def test_palette_with_transparency_is_composited_on_white() -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    img.info["transparency"] = 0
    assert to_rgb(img).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).image.size == (20, 40)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = _png(Image.new("L", (3000, 3000)))
    with pytest.raises(DecompressionBombError, match=r"9,000,000 pixels, over the limit of 1,000,000") as info:
        load_image(data, max_pixels=1_000_000, source="big.png")
    assert info.value.source == "big.png" and isinstance(info.value, InvalidInputError)
    assert load_image(data, max_pixels=None).image.size == (3000, 3000)


@pytest.mark.parametrize(
    ("inp", "message"),
    [
        (b"", "empty"),
        (b"not an image at all", "not a recognised image format"),
        ("data:image/png;base64,@@@", "not valid base64"),
        ("data:nonsense", "malformed data: URI"),
        (12345, "unsupported image input"),
    ],
)
def test_bad_inputs_raise_invalid_input(inp: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_image(inp)  # type: ignore[arg-type]


def test_missing_file_and_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"nope\.png: image file not found"):
        read_image_bytes(tmp_path / "nope.png", source="nope.png")
    with pytest.raises(InvalidInputError, match="is a directory"):
        load_image(tmp_path)


def test_truncated_png_is_reported_as_truncated() -> None:
    data = _png(Image.effect_noise((64, 64), 50).convert("RGB"))
    with pytest.raises(InvalidInputError, match="truncated"):
        load_image(data[: len(data) // 2], source="cut.png")


def _malformed(shared: Path) -> list[dict]:
    rows = [json.loads(line) for line in (shared / "malformed_images" / "index.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("path")]


def test_every_shared_malformed_image_decodes_or_fails_cleanly(shared_data: Path) -> None:
    outcomes: dict[str, str] = {}
    for row in _malformed(shared_data):
        path = shared_data / row["path"]
        try:
            loaded = load_image(path)
        except InvalidInputError as exc:
            assert exc.source == str(path), "error must name the file"
            assert str(path) in str(exc)
            outcomes[path.name] = type(exc).__name__
        else:  # anything else (OSError, ValueError, MemoryError ...) fails the test
            assert loaded.image.mode == "RGB" and min(loaded.image.size) > 0
            outcomes[path.name] = "ok"
    assert len(outcomes) == 30
    for bomb in ("decompression_bomb.gif", "decompression_bomb.ico", "bmp_b_reallybig.bmp"):
        assert outcomes[bomb] == "DecompressionBombError", bomb
    for broken in ("truncated_image.png", "truncated_jpeg.jpg", "broken.png", "zero_width.gif"):
        assert outcomes[broken] == "InvalidInputError", broken
    # files whose only damage is in metadata still yield their picture
    for fine in ("hopper_bad_exif.jpg", "invalid-exif.jpg", "exif-dpi-zerodivision.jpg"):
        assert outcomes[fine] == "ok", fine
