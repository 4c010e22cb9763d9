"""ImageNet-1k from a local copy, offline: generated trees in ILSVRC2012's layout (a few wnids, tiny real JPEGs),
with val/ as class folders and flat with each kind of labels file (Kaggle's CSV, the devkit folder and archive)."""

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mobopt import MobOptError, datasets
from mobopt.datasets import imagenet, imagenet_subset
from mobopt.datasets.standins import write_fake_class_tree

#: Three classes spread over the label space: first, an Imagenette class, last.
WNIDS = ("n01440764", "n02102040", "n15075141")
#: The devkit's ILSVRC2012_IDs are not in sorted-wnid order; these are made up to show the mapping is used.
DEVKIT_IDS = {"n01440764": 449, "n02102040": 7, "n15075141": 1000}
TRAIN, VAL = 6, 2
OPTS = {"verify": False, "image_size": 16, "workers": 1, "progress": False, "validation_fraction": 0.34}


def make_tree(root: Path, *, val: str = "folders") -> dict[str, str]:
    """train/<wnid>/*.JPEG and val/ as class folders (``folders``) or flat ILSVRC2012_val_*.JPEG (``flat``);
    returns the flat images' stem -> wnid (in file-number order)."""
    write_fake_class_tree(root / "train", WNIDS, TRAIN, size=(24, 20), seed=1, workers=1)
    for f in sorted((root / "train").rglob("*.jpg")):
        f.rename(f.with_name(f"{f.parent.name}_{f.stem}.JPEG"))
    write_fake_class_tree(root / "val", WNIDS, VAL, size=(20, 24), seed=2, workers=1)
    labels = {}
    if val == "flat":
        for n, f in enumerate(sorted((root / "val").rglob("*.jpg"), key=lambda p: (p.stem[-1], p.parent.name)), 1):
            stem = f"ILSVRC2012_val_{n:08d}"
            labels[stem] = f.parent.name
            f.rename(root / "val" / f"{stem}.JPEG")
        for wnid in WNIDS:
            (root / "val" / wnid).rmdir()
    return labels


def write_kaggle_csv(path: Path, labels: dict[str, str]) -> Path:
    rows = [f"{stem},{wnid} 10 20 30 40 {wnid} 1 2 3 4" for stem, wnid in labels.items()]
    path.write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    return path


def write_devkit(folder: Path, labels: dict[str, str], *, meta: bool = True) -> Path:
    """``ILSVRC2012_devkit_t12/data/`` with the ground truth (one ILSVRC2012_ID per line) and meta.mat."""
    from scipy.io import savemat

    data = folder / imagenet.DEVKIT / "data"
    data.mkdir(parents=True)
    (data / imagenet.GROUND_TRUTH).write_text("".join(f"{DEVKIT_IDS[w]}\n" for w in labels.values()))
    if meta:
        synsets = np.zeros((len(DEVKIT_IDS) + 1, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"),
                                                             ("num_children", "O")])
        for i, (wnid, ident) in enumerate(DEVKIT_IDS.items()):
            synsets[i, 0] = (ident, wnid, imagenet.NAMES[wnid], 0)
        synsets[-1, 0] = (1001, "n00001740", "entity", 2)  # an inner node of the hierarchy: not a class
        savemat(data / imagenet.META_MAT, {"synsets": synsets})
    return folder / imagenet.DEVKIT


@pytest.fixture(scope="module")
def folders_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet-folders")
    make_tree(root)
    return root


@pytest.fixture(scope="module")
def flat_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet-flat")
    return root, make_tree(root, val="flat")


def _prepared_labels(out: Path) -> dict[str, np.ndarray]:
    return {split: datasets.load_split(out, split)[1] for split in ("train", "val", "test")}


def test_the_class_list_is_imagenet_1k_in_keras_order():
    assert len(imagenet.WNIDS) == 1000 and list(imagenet.WNIDS) == sorted(imagenet.WNIDS)
    assert imagenet.NAMES["n01440764"] == "tench" and imagenet.NAMES[imagenet.WNIDS[-1]] == "toilet tissue"
    for wnid, (index, _) in imagenet_subset.IMAGENETTE_CLASSES.items():  # two independent sources agree
        assert imagenet.INDEX[wnid] == index
    assert datasets.get("imagenet").classes == imagenet.WNIDS
    assert datasets.get("imagenet").image_shape({"image_size": 160}) == (160, 160, 3)


def test_val_as_class_folders(tmp_path, folders_tree):
    opts = {**OPTS, "path": str(folders_tree)}
    record = imagenet.download(opts, tmp_path / "raw")
    assert record["val_layout"] == "class folders" and record["classes"] == 3 and record["path"] == str(folders_tree)
    assert not [p for p in (tmp_path / "raw").iterdir() if p.name != "SOURCE.json"]  # nothing copied
    meta = imagenet.prepare(tmp_path / "raw", tmp_path / "out", opts, seed=0)
    assert meta["counts"] == {"train": 12, "val": 6, "test": 6} and meta["image_shape"] == [16, 16, 3]
    assert meta["label_indices"] == [0, 217, 999] and meta["num_outputs"] == 1000 and meta["classes"] == list(WNIDS)
    assert meta["class_names"] == ["tench", "English springer", "toilet tissue"]
    labels = _prepared_labels(tmp_path / "out")
    assert sorted(set(labels["test"].tolist())) == [0, 217, 999]
    assert np.bincount(labels["val"])[[0, 217, 999]].tolist() == [2, 2, 2]
    x, _ = datasets.load_split(tmp_path / "out", "test")
    assert x.shape == (6, 16, 16, 3) and x.dtype == np.uint8


def test_images_per_class_limits_size_the_run(tmp_path, folders_tree):
    opts = {**OPTS, "path": str(folders_tree), "train_images_per_class": 3, "test_images_per_class": 1}
    meta = imagenet.prepare(tmp_path, tmp_path / "out", opts, seed=0)
    assert meta["counts"] == {"train": 6, "val": 3, "test": 3} and meta["train_images_per_class"] == 3
    again = imagenet.prepare(tmp_path, tmp_path / "again", opts, seed=0)
    assert again["counts"] == meta["counts"]
    assert (tmp_path / "out/train_x.npy").read_bytes() == (tmp_path / "again/train_x.npy").read_bytes()


def test_flat_val_with_kaggles_solution_file(tmp_path, flat_tree):
    root, labels = flat_tree
    csv = write_kaggle_csv(tmp_path / imagenet.KAGGLE_SOLUTION, labels)
    opts = {**OPTS, "path": str(root), "val_labels": str(csv)}
    assert imagenet.download(opts, tmp_path / "raw")["val_layout"] == "flat"
    imagenet.prepare(tmp_path / "raw", tmp_path / "out", opts, seed=0)
    test = _prepared_labels(tmp_path / "out")["test"]
    assert test.tolist() == [imagenet.INDEX[w] for _, w in sorted(labels.items())]  # file-name order, ImageNet indices


@pytest.mark.parametrize("form", ["folder", "archive", "ground truth file"])
def test_flat_val_with_the_devkit(tmp_path, flat_tree, form):
    root, labels = flat_tree
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    devkit = write_devkit(copy, labels)
    if form == "archive":
        with tarfile.open(copy / f"{imagenet.DEVKIT}.tar.gz", "w:gz") as tf:
            tf.add(devkit, arcname=imagenet.DEVKIT)
        shutil.rmtree(devkit)
    elif form == "ground truth file":
        for name in (imagenet.GROUND_TRUTH, imagenet.META_MAT):
            (devkit / "data" / name).rename(copy / name)
        shutil.rmtree(devkit)
    opts = {**OPTS, "path": str(copy)}  # found in the copy's folder without val_labels
    record = imagenet.download(opts, tmp_path / "raw")
    assert record["val_labels"].endswith({"folder": imagenet.GROUND_TRUTH, "archive": ".tar.gz",
                                          "ground truth file": imagenet.GROUND_TRUTH}[form])
    imagenet.prepare(tmp_path / "raw", tmp_path / "out", opts, seed=0)
    test = _prepared_labels(tmp_path / "out")["test"]
    assert test.tolist() == [imagenet.INDEX[w] for _, w in sorted(labels.items())]


def test_flat_val_without_labels_says_where_it_looked(tmp_path, flat_tree):
    root, _ = flat_tree
    with pytest.raises(MobOptError, match=r"val: the validation images lie flat .* no labels .* LOC_val_solution.csv"):
        imagenet.download({**OPTS, "path": str(root)}, tmp_path / "raw")
    assert not (tmp_path / "raw" / "SOURCE.json").exists()


def test_a_ground_truth_without_meta_mat_says_what_maps_it(tmp_path, flat_tree):
    root, labels = flat_tree
    devkit = write_devkit(tmp_path, labels, meta=False)
    truth = devkit / "data" / imagenet.GROUND_TRUTH
    with pytest.raises(MobOptError, match=r"meta.mat: not found; .* ILSVRC2012_IDs, which only the devkit's meta.mat"):
        imagenet.download({**OPTS, "path": str(root), "val_labels": str(truth)}, tmp_path / "raw")


def test_a_val_image_without_a_label_is_named(tmp_path, flat_tree):
    root, labels = flat_tree
    csv = write_kaggle_csv(tmp_path / "short.csv", dict(list(labels.items())[1:]))
    with pytest.raises(MobOptError, match=r"ILSVRC2012_val_00000001.JPEG: no label for it in .*short.csv"):
        imagenet.prepare(tmp_path, tmp_path / "out", {**OPTS, "path": str(root), "val_labels": str(csv)}, seed=0)


def test_unknown_wnids_are_refused(tmp_path, folders_tree, flat_tree):
    copy = tmp_path / "copy"
    shutil.copytree(folders_tree, copy)
    shutil.copytree(copy / "train" / WNIDS[0], copy / "train" / "n99999999")
    with pytest.raises(MobOptError, match=r"train/n99999999: n99999999 is not one of ImageNet-1k's 1000 classes"):
        imagenet.download({**OPTS, "path": str(copy)}, tmp_path / "raw")
    root, labels = flat_tree
    csv = write_kaggle_csv(tmp_path / "bad.csv", {**labels, "ILSVRC2012_val_00000002": "n99999999"})
    with pytest.raises(MobOptError, match=r"bad.csv, line 3: 'n99999999' is not one of ImageNet-1k's 1000 wnids"):
        imagenet.download({**OPTS, "path": str(root), "val_labels": str(csv)}, tmp_path / "raw")


def test_a_subset_needs_verify_false(tmp_path, folders_tree):
    with pytest.raises(MobOptError, match=r"3 of ImageNet-1k's 1000 class folders, missing n01443537.* `verify: false`"):
        imagenet.download({**OPTS, "path": str(folders_tree), "verify": True}, tmp_path / "raw")


@pytest.mark.parametrize("options, message", [
    ({}, "datasets.imagenet.path is not set. ImageNet-1k cannot be downloaded .* account at image-net.org"),
    ({"path": "/nonexistent/imagenet"}, "/nonexistent/imagenet: no train/ and val/ folders .* cannot be downloaded"),
    ({"source": "url"}, "only read from a local copy"),
])
def test_a_missing_path_explains_the_licence(tmp_path, options, message):
    with pytest.raises(MobOptError, match=message):
        imagenet.download(options, tmp_path / "raw")


def test_a_damaged_devkit_archive_is_named(tmp_path, flat_tree):
    root, _ = flat_tree
    archive = tmp_path / f"{imagenet.DEVKIT}.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("README")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(MobOptError, match=r"tar.gz: not the ILSVRC2012 devkit, it lacks .*ground_truth.txt"):
        imagenet.download({**OPTS, "path": str(root), "val_labels": str(archive)}, tmp_path / "raw")
