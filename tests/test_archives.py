"""Archive extraction against real zip and tar files built here, good and hostile."""

from __future__ import annotations

import hashlib
import io
import random
import stat
import tarfile
import zipfile

import pytest

from mobopt import MobOptError
from mobopt.common.download import DownloadError, RemoteFile, download
from mobopt.datasets.archives import safe_extract

#: Nested folders, an empty file and a binary one with every byte value.
FILES = {
    "asl/train/A/a1.jpg": b"\xff\xd8" + bytes(range(256)) * 40,
    "asl/train/B/b1.jpg": b"\xff\xd8 b",
    "asl/test/A_test.jpg": b"",
    "README.txt": b"hello\n",
}


def _zip(path, members: dict[str, bytes], *, symlink: tuple[str, str] | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("asl/", b"")  # an explicit directory entry, as zip tools write them
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, symlink[1])
    return path


def _tar(path, members: dict[str, bytes], *, symlink: tuple[str, str] | None = None):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type = tarfile.SYMTYPE
            info.linkname = symlink[1]
            tf.addfile(info)
    return path


def _assert_files(dest, members=FILES):
    found = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert found == members


def _assert_nothing_left(tmp_path, dest):
    assert not dest.exists()
    assert not (tmp_path / (dest.name + ".partial")).exists()
    assert not (tmp_path / (dest.name + ".old")).exists()


@pytest.mark.parametrize("suffix", [".zip", ".tgz", ".tar.gz", ".tar"])
def test_good_archive_extracts_every_file(tmp_path, suffix):
    archive = tmp_path / f"data{suffix}"
    if suffix == ".zip":
        _zip(archive, FILES)
    elif suffix == ".tar":
        with tarfile.open(archive, "w") as tf:
            for name, data in FILES.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    else:
        _tar(archive, FILES)
    dest = tmp_path / "out"
    assert safe_extract(archive, dest, progress=False) == len(FILES)
    _assert_files(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive.name, "out"])


def test_existing_dest_is_replaced_as_a_whole(tmp_path):
    archive = _tar(tmp_path / "data.tgz", FILES)
    dest = tmp_path / "out"
    (dest / "stale").mkdir(parents=True)
    (dest / "stale" / "old.jpg").write_bytes(b"old")
    (tmp_path / "out.partial").mkdir()  # left by a killed run
    (tmp_path / "out.partial" / "junk").write_bytes(b"junk")
    assert safe_extract(archive, dest, progress=False) == len(FILES)
    _assert_files(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.tgz", "out"]


def test_failure_leaves_existing_dest_untouched(tmp_path):
    archive = _zip(tmp_path / "bad.zip", {**FILES, "../evil.txt": b"x"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"keep")
    with pytest.raises(MobOptError, match=r"'\.\./evil\.txt'"):
        safe_extract(archive, dest, progress=False)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "member, why",
    [("../evil.txt", "'..' component"), ("asl/../../evil.txt", "'..' component"), ("/tmp/x", "absolute path"),
     ("C:/evil.txt", "drive letter"), ("..\\evil.txt", "'..' component")],
)
def test_zip_member_escaping_dest_is_refused(tmp_path, member, why):
    archive = _zip(tmp_path / "bad.zip", {**FILES, member: b"pwned"})
    dest = tmp_path / "sub" / "out"
    with pytest.raises(MobOptError) as err:
        safe_extract(archive, dest, progress=False)
    message = str(err.value)
    assert str(archive) in message and repr(member) in message and why in message and "refusing" in message
    _assert_nothing_left(tmp_path / "sub", dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "sub" / "evil.txt").exists()
    assert not (dest.parent / "out.partial").exists()


def test_zip_absolute_member_writes_nothing_at_the_absolute_path(tmp_path):
    target = tmp_path / "abs-target.txt"  # an absolute path the hostile member names
    archive = _zip(tmp_path / "bad.zip", {"ok.txt": b"ok", str(target): b"pwned"})
    with pytest.raises(MobOptError, match="absolute path"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert not target.exists()
    _assert_nothing_left(tmp_path, tmp_path / "out")


def test_zip_symlink_member_is_refused(tmp_path):
    archive = _zip(tmp_path / "bad.zip", FILES, symlink=("asl/link", "../../outside"))
    dest = tmp_path / "out"
    with pytest.raises(MobOptError, match=r"'asl/link' is a symlink; refusing"):
        safe_extract(archive, dest, progress=False)
    _assert_nothing_left(tmp_path, dest)


def test_tar_member_escaping_dest_is_refused(tmp_path):
    archive = _tar(tmp_path / "bad.tgz", {"asl/ok.jpg": b"ok", "../evil": b"pwned"})
    dest = tmp_path / "out"
    with pytest.raises(MobOptError) as err:
        safe_extract(archive, dest, progress=False)
    message = str(err.value)
    assert str(archive) in message and "'../evil'" in message and "outside the destination" in message
    assert not (tmp_path / "evil").exists()
    _assert_nothing_left(tmp_path, dest)  # asl/ok.jpg was written to staging, and removed with it


def test_tar_absolute_member_is_refused_as_in_a_zip(tmp_path):
    """The data filter alone would strip the leading '/' and keep the member as tree/tmp/...; it is refused instead."""
    target = tmp_path / "abs-target"
    archive = _tar(tmp_path / "abs.tgz", {"asl/ok.jpg": b"ok", str(target): b"data"})
    dest = tmp_path / "out"
    with pytest.raises(MobOptError) as err:
        safe_extract(archive, dest, progress=False)
    assert str(err.value) == f"{archive}: member {str(target)!r} has an absolute path; refusing to extract"
    assert not target.exists()
    _assert_nothing_left(tmp_path, dest)


def _big_archive(path, name, data):
    """``asl/ok.jpg`` and the member ``name`` holding ``data``, as a .zip or a .tgz (by the suffix of ``path``)."""
    if path.suffix == ".zip":
        return _zip(path, {"asl/ok.jpg": b"ok", name: data})
    return _tar(path, {"asl/ok.jpg": b"ok", name: data})


@pytest.mark.parametrize("suffix", [".zip", ".tgz"])
def test_a_member_over_the_size_limit_is_refused_before_it_is_written(tmp_path, suffix):
    """A bomb in miniature: the limit is lowered to 1 MiB instead of writing a real 1 GiB member."""
    name = "asl/train/A/bomb.jpg"
    archive = _big_archive(tmp_path / f"big{suffix}", name, random.Random(0).randbytes(2 << 20))  # incompressible
    dest = tmp_path / "out"
    with pytest.raises(MobOptError) as err:
        safe_extract(archive, dest, progress=False, max_member_bytes=1 << 20)
    message = str(err.value)
    assert message.startswith(f"{archive}: member {name!r} is {2 << 20} bytes uncompressed, more than max_member_bytes")
    assert message.endswith("refusing to extract")
    _assert_nothing_left(tmp_path, dest)
    assert safe_extract(archive, dest, progress=False, max_member_bytes=4 << 20) == 2  # genuine: raise the limit


@pytest.mark.parametrize("suffix", [".zip", ".tgz"])
def test_an_absurd_compression_ratio_is_refused(tmp_path, suffix):
    """4 MiB of zeros pack to a few kB: a ratio in the hundreds, far above anything a photo dataset has."""
    name = "asl/train/A/zeros.png"
    archive = _big_archive(tmp_path / f"bomb{suffix}", name, bytes(4 << 20))
    dest = tmp_path / "out"
    with pytest.raises(MobOptError, match=rf"member {name!r} .* \(ratio \d+\), more than max_compression_ratio = 100"):
        safe_extract(archive, dest, progress=False)
    _assert_nothing_left(tmp_path, dest)
    assert safe_extract(archive, dest, progress=False, max_compression_ratio=1e6) == 2


def test_small_files_are_not_held_to_the_ratio(tmp_path):
    archive = _zip(tmp_path / "small.zip", {"asl/empty.txt": bytes(100_000)})  # ratio ~ 1000, but tiny
    assert safe_extract(archive, tmp_path / "out", progress=False) == 1


@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd"])
def test_tar_symlink_pointing_outside_is_refused(tmp_path, target):
    archive = _tar(tmp_path / "bad.tgz", FILES, symlink=("asl/link", target))
    dest = tmp_path / "out"
    with pytest.raises(MobOptError) as err:
        safe_extract(archive, dest, progress=False)
    assert "'asl/link'" in str(err.value) and repr(target) in str(err.value)
    _assert_nothing_left(tmp_path, dest)


def test_tar_symlink_inside_dest_is_refused_too(tmp_path):
    """The data filter would allow it; links are refused to close the filter's known link bypasses."""
    archive = _tar(tmp_path / "links.tgz", FILES, symlink=("asl/link", "train/A/a1.jpg"))
    with pytest.raises(MobOptError, match=r"'asl/link' is a symlink"):
        safe_extract(archive, tmp_path / "out", progress=False)
    _assert_nothing_left(tmp_path, tmp_path / "out")


def test_tar_symlink_then_write_through_it_is_refused(tmp_path):
    """The classic two-step escape: a link to the parent, then a file 'inside' the link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    buf = tmp_path / "bad.tgz"
    with tarfile.open(buf, "w:gz") as tf:
        link = tarfile.TarInfo("up")
        link.type, link.linkname = tarfile.SYMTYPE, "../outside"
        tf.addfile(link)
        info = tarfile.TarInfo("up/evil")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"pwned"))
    with pytest.raises(MobOptError, match="'up'"):
        safe_extract(buf, tmp_path / "out", progress=False)
    assert list(outside.iterdir()) == []
    _assert_nothing_left(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("suffix", [".tgz", ".zip"])
def test_truncated_archive_names_the_archive(tmp_path, suffix):
    big = {f"asl/{i}.bin": hashlib.sha256(str(i).encode()).digest() * 2000 for i in range(8)}
    good = (_zip if suffix == ".zip" else _tar)(tmp_path / f"good{suffix}", big)
    archive = tmp_path / f"cut{suffix}"
    data = good.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "out"
    with pytest.raises(MobOptError) as err:
        safe_extract(archive, dest, progress=False)
    message = str(err.value)
    assert str(archive) in message and "corrupt or truncated" in message and "download it again" in message
    _assert_nothing_left(tmp_path, dest)


def test_not_an_archive_and_unknown_type(tmp_path):
    fake = tmp_path / "data.zip"
    fake.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(MobOptError, match="corrupt or truncated"):
        safe_extract(fake, tmp_path / "out", progress=False)
    with pytest.raises(MobOptError, match="unsupported archive type"):
        safe_extract(tmp_path / "data.rar", tmp_path / "out", progress=False)
    with pytest.raises(MobOptError, match="not found"):
        safe_extract(tmp_path / "missing.tgz", tmp_path / "out", progress=False)
    _assert_nothing_left(tmp_path, tmp_path / "out")


def test_download_then_extract_from_local_server(http_server, tmp_path):
    archive = _tar(http_server.root / "asl.tgz", FILES)
    data = archive.read_bytes()
    remote = RemoteFile("asl.tgz", len(data), hashlib.sha256(data).hexdigest())
    dest = tmp_path / "raw" / "asl.tgz"
    assert download(remote, [http_server.url], dest, backoff=0, progress=False) == remote.sha256
    assert safe_extract(dest, tmp_path / "raw" / "asl", progress=False) == len(FILES)
    _assert_files(tmp_path / "raw" / "asl")


def test_download_with_wrong_sha256_leaves_no_file(http_server, tmp_path):
    archive = _tar(http_server.root / "asl.tgz", FILES)
    computed = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "raw" / "asl.tgz"
    with pytest.raises(DownloadError) as err:
        download(RemoteFile("asl.tgz", None, "f" * 64), [http_server.url], dest, backoff=0, progress=False)
    assert computed in str(err.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []
