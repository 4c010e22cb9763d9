"""Image folder trees to .npy: scanning, odd and bad files, determinism, centre crop, and kill safety."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobopt import MobOptError
from mobopt.datasets import images
from mobopt.datasets.images import BadImage, Problems, check_problems, load_image, scan_class_tree, write_split
from mobopt.datasets.standins import write_fake_class_tree

CLASSES = ("A", "B", "C")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    assert write_fake_class_tree(root, CLASSES, 7, size=(48, 40), workers=1) == 21
    return root


def _jpeg_bytes(size=(64, 48), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _write(items, tmp_path, name="out", **kwargs):
    problems = kwargs.pop("problems", Problems())
    x_path, y_path = tmp_path / f"{name}_x.npy", tmp_path / f"{name}_y.npy"
    n = write_split(items, kwargs.pop("size", 16), x_path, y_path, problems=problems, progress=False, **kwargs)
    return n, np.load(x_path, mmap_mode="r"), np.load(y_path), problems


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or p.suffix == ".npy")


# --------------------------------------------------------------------------- scanning

def test_scan_sorted_with_unexpected_folder_and_files(tree):
    (tree / "extra").mkdir()
    (tree / "extra" / "x.jpg").write_bytes(_jpeg_bytes())
    (tree / "extra" / "y.jpg").write_bytes(_jpeg_bytes())
    (tree / "README.txt").write_text("hello")
    (tree / "B" / "notes.txt").write_text("hi")
    (tree / "B" / "B99.JPEG").write_bytes(_jpeg_bytes())  # upper-case extension is an image
    problems = Problems()
    items = scan_class_tree(tree, CLASSES, problems)
    assert len(items) == 22
    assert [y for _, y in items] == [0] * 7 + [1] * 8 + [2] * 7
    assert [p.name for p, _ in items[:3]] == ["A1.jpg", "A2.jpg", "A3.jpg"]
    assert items == sorted(items, key=lambda it: (it[1], it[0].name))
    assert (problems.unexpected_folders, problems.unexpected_files) == (1, 2)
    assert problems.examples["unexpected_folders"] == [f"{tree / 'extra'} (2 files)"]
    assert problems.as_dict()["unexpected_files"]["count"] == 2


def test_image_list_is_compact_and_behaves_like_a_list_of_pairs(tree, tmp_path):
    from mobopt.datasets.images import ImageList

    items = scan_class_tree(tree, CLASSES, Problems())
    pairs = list(items)
    assert isinstance(items, ImageList) and all(isinstance(p, Path) and p.is_file() for p, _ in pairs)
    per_image = (items.relative.nbytes + items.labels.nbytes + items.base_index.nbytes) / len(items)
    assert per_image < 32, per_image  # vs ~400 bytes for a (Path, int) tuple
    idx = np.array([5, 0, 20])
    assert list(items[idx]) == [pairs[i] for i in idx]
    assert list(items[2:4]) == pairs[2:4] and items[-1] == pairs[-1]
    assert list(items[items.labels == 1]) == [p for p in pairs if p[1] == 1]
    assert list(items.relabel([10, 11, 12]).labels) == [y + 10 for _, y in pairs]
    assert items.names()[0] == b"A1.jpg"
    other = ImageList.from_pairs([(tmp_path / "x" / "a.jpg", 2), (tmp_path / "y" / "b.jpg", 0)])
    assert list(other) == [(tmp_path / "x" / "a.jpg", 2), (tmp_path / "y" / "b.jpg", 0)]
    both = ImageList.concat(items[:2], other)
    assert list(both) == pairs[:2] + list(other) and len(both.bases) == 3
    assert len(ImageList.from_pairs([])) == 0 and not ImageList.from_pairs([])
    with pytest.raises(IndexError):
        items[len(items)]


def test_scan_missing_or_empty_class_folder(tree):
    with pytest.raises(MobOptError, match=r"tree/D: class folder missing"):
        scan_class_tree(tree, (*CLASSES, "D"), Problems())
    (tree / "D").mkdir()
    (tree / "D" / "readme.md").write_text("no images here")
    with pytest.raises(MobOptError, match=r"tree/D: class folder holds no images"):
        scan_class_tree(tree, (*CLASSES, "D"), Problems())
    with pytest.raises(MobOptError, match="dataset folder not found"):
        scan_class_tree(tree / "nope", CLASSES, Problems())


# --------------------------------------------------------------------------- decoding

def test_odd_modes_are_converted_and_counted(tmp_path):
    folder = tmp_path / "A"
    folder.mkdir()
    Image.new("L", (20, 20), 100).save(folder / "grey.png")
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 0, 10, 200, 10])
    palette.save(folder / "palette.png")
    Image.new("RGBA", (20, 20), (200, 10, 10, 128)).save(folder / "alpha.png")
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(folder / "deep.png")
    Image.new("RGB", (20, 20), (1, 2, 3)).save(folder / "plain.png")
    items = [(folder / n, 0) for n in ("grey.png", "palette.png", "alpha.png", "cmyk.jpg", "deep.png", "plain.png")]
    assert [load_image(p, 8).mode for p, _ in items] == ["L", "P", "RGBA", "CMYK", "I;16", "RGB"]
    n, x, _, problems = _write(items, tmp_path, size=8, workers=1)
    assert n == 6 and x.shape == (6, 8, 8, 3)
    assert problems.converted == 5 and problems.bad == 0
    assert "cmyk.jpg (CMYK)" in " ".join(problems.examples["converted"])
    np.testing.assert_array_equal(x[0], 100)
    assert tuple(x[1, 4, 4]) == (10, 200, 10)
    assert tuple(x[2, 4, 4]) == (200, 10, 10)  # alpha dropped
    assert np.abs(x[3, 4, 4].astype(int) - (255, 0, 0)).max() < 8  # CMYK (0, 255, 255, 0) is red
    np.testing.assert_array_equal(x[4], 40000 >> 8)  # scaled to 8 bits, not clipped to 255


def test_bad_files_are_skipped_and_counted(tmp_path, tree):
    good = scan_class_tree(tree, CLASSES, Problems())
    (tree / "A" / "zero.jpg").write_bytes(b"")
    full = (tree / "B" / "B1.jpg").read_bytes()
    (tree / "B" / "cut.jpg").write_bytes(full[: len(full) // 2])
    (tree / "C" / "text.png").write_text("not an image")
    items = scan_class_tree(tree, CLASSES, Problems())
    assert len(items) == len(good) + 3
    with pytest.raises(BadImage) as info:
        load_image(tree / "A" / "zero.jpg", 8)
    assert info.value.kind == "empty"
    with pytest.raises(BadImage) as info:
        load_image(tree / "B" / "cut.jpg", 8)  # opens fine; decoding the pixels fails
    assert info.value.kind == "unreadable" and "truncated" in str(info.value)
    clone = pickle.loads(pickle.dumps(info.value))  # crosses process boundaries intact
    assert (clone.kind, clone.path, str(clone)) == (info.value.kind, info.value.path, str(info.value))

    problems = Problems()
    n, x, y, _ = _write(items, tmp_path, workers=2, chunksize=4, problems=problems)
    assert n == len(good) == len(x) == len(y)
    assert (problems.empty, problems.unreadable) == (1, 2)
    assert any("cut.jpg" in e for e in problems.examples["unreadable"])
    np.testing.assert_array_equal(y, [label for _, label in good])
    for i in (0, 8, len(good) - 1):
        np.testing.assert_array_equal(x[i], load_image(good[i][0], 16).pixels)


def test_output_is_deterministic_for_any_worker_count(tmp_path, tree):
    (tree / "B" / "B0.jpg").write_bytes(b"")  # a hole early on shifts every later image
    items = scan_class_tree(tree, CLASSES, Problems())
    n1, x1, y1, _ = _write(items, tmp_path, "w1", workers=1, size=24)
    n2, x2, y2, _ = _write(items, tmp_path, "w2", workers=2, chunksize=3, size=24)  # more chunks than slots
    assert n1 == n2 == len(items) - 1
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1[:7].mean() != x1[7:14].mean()  # classes look different


def test_centre_crop_of_non_square_image(tmp_path):
    # 400 x 200: shorter side 200 -> 50, width 100, the centre 50 columns are source columns 100..300.
    pixels = np.zeros((200, 400, 3), np.uint8)
    pixels[:, :96] = (255, 0, 0)
    pixels[:, 96:304] = (0, 255, 0)
    pixels[:, 304:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(load_image(tmp_path / "wide.png", 50).pixels, np.broadcast_to((0, 255, 0), (50, 50, 3)))

    # Left half red, right half blue: the crop keeps them on their sides.
    pixels[:, :200] = (255, 0, 0)
    pixels[:, 200:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "halves.png")
    out = load_image(tmp_path / "halves.png", 50).pixels.astype(int)
    assert (out[:, :24] == (255, 0, 0)).all() and (out[:, 26:] == (0, 0, 255)).all()

    # crop_fraction 0.5 on a square keeps the central half; 0.875 matches PIL resize-then-crop.
    square = np.zeros((200, 200, 3), np.uint8)
    square[44:156, 44:156] = 255
    Image.fromarray(square).save(tmp_path / "square.png")
    assert (load_image(tmp_path / "square.png", 40, crop_fraction=0.5).pixels == 255).all()
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).resize((320, 240))
    photo = photo.filter(_blur())
    photo.save(tmp_path / "photo.png")
    ref = photo.resize((256 * 320 // 240, 256), Image.Resampling.BILINEAR)
    left = (ref.width - 224) // 2
    ref = np.asarray(ref.crop((left, 16, left + 224, 240))).astype(int)
    got = load_image(tmp_path / "photo.png", 224, crop_fraction=0.875).pixels.astype(int)
    assert np.abs(got - ref).mean() < 3


def _blur():
    from PIL import ImageFilter

    return ImageFilter.GaussianBlur(3)


def test_large_jpeg_uses_draft_without_losing_geometry(tmp_path):
    yy, xx = np.mgrid[0:800, 0:1000]
    pixels = np.stack([xx * 255 // 1000, yy * 255 // 800, np.full_like(xx, 128)], -1).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.jpg", quality=95)
    got = load_image(tmp_path / "big.jpg", 64).pixels.astype(int)
    full = Image.open(tmp_path / "big.jpg").convert("RGB")  # no draft: full-size decode
    ref = np.asarray(full.resize((64, 64), Image.Resampling.BILINEAR, box=(100, 0, 900, 800))).astype(int)
    assert np.abs(got - ref).max() <= 4


def test_images_over_the_limits_are_unreadable_before_their_cost_is_paid(tmp_path, tree):
    """A decompression bomb in miniature: the limits are lowered instead of writing a huge image."""
    Image.new("RGB", (300, 200), (0, 0, 0)).save(tmp_path / "wide.png")  # 60,000 pixels, a few hundred bytes
    with pytest.raises(BadImage) as info:
        load_image(tmp_path / "wide.png", 16, max_pixels=50_000)
    assert info.value.kind == "unreadable"
    assert "300x200 would decode to 60000 pixels, more than max_image_pixels = 50000" in str(info.value)
    size = (tmp_path / "wide.png").stat().st_size
    with pytest.raises(BadImage, match=f"{size} bytes, more than 100: not read"):
        load_image(tmp_path / "wide.png", 16, max_bytes=100)
    assert load_image(tmp_path / "wide.png", 16, max_pixels=60_000).pixels.shape == (16, 16, 3)
    # the limit is on decoded pixels: a big JPEG that the decoder shrinks 8x on the fly stays cheap, and passes
    Image.new("RGB", (1000, 800), (9, 9, 9)).save(tmp_path / "big.jpg")
    assert load_image(tmp_path / "big.jpg", 64, max_pixels=20_000).pixels.shape == (64, 64, 3)

    # through the worker processes too: the limit travels with each task
    (tree / "C" / "bomb.png").write_bytes((tmp_path / "wide.png").read_bytes())
    items = scan_class_tree(tree, CLASSES, Problems())
    n, x, _, problems = _write(items, tmp_path, workers=2, chunksize=4, max_pixels=50_000)
    assert n == len(items) - 1 == len(x) and problems.unreadable == 1
    assert "bomb.png" in problems.examples["unreadable"][0] and "max_image_pixels" in problems.examples["unreadable"][0]


def test_npy_header_and_mmap(tmp_path, tree):
    items = scan_class_tree(tree, CLASSES, Problems())
    n, x, y, _ = _write(items, tmp_path, size=20, workers=1)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((21, 20, 20, 3), np.uint8, (21,), np.int64)
    assert isinstance(x, np.memmap)
    raw = (tmp_path / "out_x.npy").read_bytes()
    assert raw[:8] == b"\x93NUMPY\x01\x00" and len(raw) == 128 + 21 * 20 * 20 * 3
    with open(tmp_path / "out_x.npy", "rb") as fh:
        np.lib.format.read_magic(fh)
        assert np.lib.format.read_array_header_1_0(fh) == ((21, 20, 20, 3), False, np.dtype(np.uint8))
        assert fh.tell() % 64 == 0


# --------------------------------------------------------------------------- limits and safety

def test_check_problems_limit(tmp_path):
    problems = Problems()
    for i in range(3):
        problems.add("unreadable", f"/data/A/bad{i}.jpg (OSError)")
    problems.add("empty", "/data/B/zero.jpg (zero-byte file)")
    check_problems(problems, 100, 0.04, "asl train")  # 4 % is not more than 4 %
    with pytest.raises(MobOptError, match=r"asl train: 4 of 50 .*max_bad_fraction.*bad0\.jpg") as info:
        check_problems(problems, 50, 0.05, "asl train")
    assert "`max_bad_fraction`" in str(info.value)


def test_too_many_bad_images_writes_nothing(tmp_path, tree):
    for i in range(5):
        (tree / "A" / f"zero{i}.jpg").write_bytes(b"")
    items = scan_class_tree(tree, CLASSES, Problems())
    problems = Problems()
    with pytest.raises(MobOptError, match="max_bad_fraction"):
        _write(items, tmp_path, workers=1, chunksize=4, problems=problems, max_bad_fraction=0.1, label="asl train")
    assert problems.empty == 5
    assert _leftovers(tmp_path) == []
    with pytest.raises(MobOptError, match="none of the 5 images could be decoded"):
        _write([it for it in items if it[0].name.startswith("zero")], tmp_path, workers=1)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_failure_mid_write_leaves_nothing(tmp_path, tree, workers):
    items = scan_class_tree(tree, CLASSES, Problems())
    (tmp_path / "out_x.npy").write_bytes(b"stale")  # an older output must not survive next to a failed run
    items = list(items)
    items.insert(15, (tree / "A" / "vanished.jpg", 0))  # not a bad image but an I/O error: the run must stop
    with pytest.raises(MobOptError, match=r"vanished\.jpg: cannot read"):
        _write(items, tmp_path, workers=workers, chunksize=2)
    assert _leftovers(tmp_path) == []


def test_interrupt_mid_write_leaves_nothing(tmp_path, tree, monkeypatch):
    items = scan_class_tree(tree, CLASSES, Problems())
    real, calls = images._decode, []

    def flaky(*args):
        calls.append(args)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(images, "_decode", flaky)
    with pytest.raises(KeyboardInterrupt):
        _write(items, tmp_path, workers=1, chunksize=4)
    assert len(calls) == 10
    assert _leftovers(tmp_path) == []


def test_bad_arguments(tmp_path, tree):
    items = scan_class_tree(tree, CLASSES, Problems())
    with pytest.raises(MobOptError, match="crop_fraction"):
        _write(items, tmp_path, crop_fraction=1.5)
    with pytest.raises(MobOptError, match="no images to write"):
        _write([], tmp_path)


def test_fake_tree_is_deterministic_and_distinguishable(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert write_fake_class_tree(a, CLASSES, 4, size=(32, 32), seed=3, workers=1) == 12
    assert write_fake_class_tree(b, CLASSES, 4, size=(32, 32), seed=3, workers=2) == 12
    for cls in CLASSES:
        for i in range(1, 5):
            assert (a / cls / f"{cls}{i}.jpg").read_bytes() == (b / cls / f"{cls}{i}.jpg").read_bytes()
    means = [np.asarray(Image.open(a / cls / f"{cls}1.jpg")).mean((0, 1)) for cls in CLASSES]
    assert min(np.abs(m1 - m2).max() for i, m1 in enumerate(means) for m2 in means[i + 1:]) > 30


def test_sigkill_leaves_nothing_under_final_names_and_no_orphans(tmp_path, tree):
    import os
    import subprocess
    import sys
    import time

    import psutil

    os.mkfifo(tree / "A" / "A0.jpg")  # opening a FIFO blocks: the run hangs on its first image, mid-write
    out_x, out_y = tmp_path / "out_x.npy", tmp_path / "out_y.npy"
    script = (
        "from pathlib import Path\n"
        "from mobopt.datasets.images import Problems, scan_class_tree, write_split\n"
        f"items = scan_class_tree(Path({str(tree)!r}), {list(CLASSES)!r}, Problems())\n"
        f"write_split(items, 16, Path({str(out_x)!r}), Path({str(out_y)!r}), workers=2, chunksize=2, problems=Problems(),"
        " progress=False)\n"
    )
    shm_before = set(os.listdir("/dev/shm"))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    family = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            family = psutil.Process(proc.pid).children(recursive=True)
            if len(family) >= 3 and list(tmp_path.glob(".out_x.*.tmp.npy")):  # forkserver, 2 workers (+ tracker)
                break
            time.sleep(0.05)
        else:
            raise AssertionError("write_split did not start its workers")
        time.sleep(0.3)
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(family, timeout=15)
        assert alive == [], f"orphans left: {[p.cmdline() for p in alive]}"
    finally:
        for p in [proc, *family]:
            with __import__("contextlib").suppress(Exception):
                p.kill()
        proc.stderr.close()
    assert not out_x.exists() and not out_y.exists()
    assert set(os.listdir("/dev/shm")) - shm_before == set()  # the resource tracker removed the slots
    # The next run removes the killed run's temporaries and writes complete outputs.
    (tree / "A" / "A0.jpg").unlink()
    n, x, _, _ = _write(scan_class_tree(tree, CLASSES, Problems()), tmp_path, workers=2)
    assert n == 21 and len(x) == 21
    assert _leftovers(tmp_path) == ["out_x.npy", "out_y.npy"]
