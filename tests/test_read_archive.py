"""Tests for gisportal.pipeline.read.archive: every hostile or broken zip is refused cleanly.

Each archive is built byte by byte in ``tmp_path`` with :mod:`zipfile` (patched where
the standard library refuses to write something hostile), never mocked.
"""

from __future__ import annotations

import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from gisportal.base.errors import InputError, UnsafeArchiveError, UsageError
from gisportal.pipeline.read.archive import safe_extract


def _zip(path: Path, members: dict[str, bytes] | list[tuple[zipfile.ZipInfo | str, bytes]],
         compression: int = zipfile.ZIP_DEFLATED) -> Path:
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names; we want them
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in items:
                zf.writestr(name, data)
    return path


def _tree(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _refused(exc: pytest.ExceptionInfo, cls: type, what: str, where: str) -> None:
    """The error is of the class asked, and says what is wrong, where, and how to fix it."""
    err = exc.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert what.lower() in err.what.lower(), err.what
    assert where in err.where, err.where
    assert err.fix, "the error must say how to fix it"
    assert where in str(err) and err.fix.rstrip(".") in str(err)


# ---------------------------------------------------------------- refusals


def test_not_a_zip(tmp_path: Path) -> None:
    src = tmp_path / "thua.zip"
    src.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    dest = tmp_path / "out"
    with pytest.raises(InputError) as exc:
        safe_extract(src, dest)
    _refused(exc, InputError, "not a zip archive", "thua.zip")
    assert exc.value.code == "FILE-NOT-ZIP"
    assert not dest.exists()


def test_truncated_zip(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", {"thua.shp": b"x" * 5000})
    src = tmp_path / "cut.zip"
    src.write_bytes(good.read_bytes()[:-40])  # the central directory is lost
    dest = tmp_path / "out"
    with pytest.raises(InputError) as exc:
        safe_extract(src, dest)
    _refused(exc, InputError, "damaged", "cut.zip")
    assert not dest.exists()


def test_bad_crc_names_member_and_leaves_dest_as_it_was(tmp_path: Path) -> None:
    payload = b"DBF-DATA-" * 400
    src = _zip(tmp_path / "crc.zip", {"Data/thua.shp": b"shp" * 100, "Data/thua.dbf": payload},
               compression=zipfile.ZIP_STORED)
    raw = bytearray(src.read_bytes())
    at = raw.index(payload) + 100
    raw[at] ^= 0xFF
    src.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("already here")
    with pytest.raises(InputError) as exc:
        safe_extract(src, dest)
    _refused(exc, InputError, "damaged", "crc.zip!Data/thua.dbf")
    assert _tree(dest) == ["keep.txt"]
    assert (dest / "keep.txt").read_text() == "already here"


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "Data/../../evil.txt", "..\\..\\evil.txt", "Data\\..\\..\\evil.txt"],
)
def test_zip_slip_dotdot(tmp_path: Path, name: str) -> None:
    src = _zip(tmp_path / "slip.zip", [("ok.txt", b"fine"), (zipfile.ZipInfo(name), b"pwned")])
    assert name in zipfile.ZipFile(src).namelist()
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest)
    _refused(exc, UnsafeArchiveError, "climbs out", "slip.zip!")
    assert exc.value.code == "ARCHIVE-ZIP-SLIP"
    assert not dest.exists()
    assert _tree(tmp_path / "a") == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    ("name", "what"),
    [("/tmp/gisportal-evil.txt", "absolute path"), ("\\\\server\\share\\evil.txt", "absolute"),
     ("C:/Windows/evil.txt", "drive letter"), ("C:evil.txt", "drive letter")],
)
def test_zip_slip_absolute_or_drive(tmp_path: Path, name: str, what: str) -> None:
    src = _zip(tmp_path / "abs.zip", [(zipfile.ZipInfo(name), b"pwned")])
    assert zipfile.ZipFile(src).namelist() == [name]
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest)
    _refused(exc, UnsafeArchiveError, what, "abs.zip!")
    assert not dest.exists()
    assert not Path("/tmp/gisportal-evil.txt").exists()


def test_symlink_member(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("Data/thua.dbf")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    src = _zip(tmp_path / "link.zip", [("Data/thua.shp", b"shp"), (link, b"/etc/passwd")])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest)
    _refused(exc, UnsafeArchiveError, "symbolic link", "link.zip!Data/thua.dbf")
    assert not dest.exists()


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("thua.dbf", "w") as fh:
        block = bytes(1024**2)
        for _ in range(50):
            fh.write(block)
    assert src.stat().st_size < 1024**2
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest)
    _refused(exc, UnsafeArchiveError, "zip bomb", "bomb.zip!thua.dbf")
    assert exc.value.code == "ARCHIVE-BOMB"
    assert not dest.exists()


def test_total_size_cap(tmp_path: Path) -> None:
    src = _zip(tmp_path / "big.zip", {f"part{i}.bin": bytes(1024**2) for i in range(3)})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest, max_total_bytes=2 * 1024**2, max_ratio=10_000)
    _refused(exc, UnsafeArchiveError, "more than 2.0 MiB", "big.zip")
    assert exc.value.code == "ARCHIVE-TOO-BIG"
    assert _tree(dest) == []


def test_too_many_members(tmp_path: Path) -> None:
    src = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(6)})
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest, max_members=5)
    _refused(exc, UnsafeArchiveError, "6 members", "many.zip")
    assert not dest.exists()


def _patch_sizes(raw: bytes, name: bytes, new_size: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in its local and central headers."""
    out = bytearray(raw)
    local = out.index(b"PK\x03\x04")
    while True:
        n_len = struct.unpack_from("<H", out, local + 26)[0]
        if bytes(out[local + 30:local + 30 + n_len]) == name:
            struct.pack_into("<I", out, local + 22, new_size)
            break
        local = out.index(b"PK\x03\x04", local + 4)
    central = out.index(b"PK\x01\x02")
    while True:
        n_len = struct.unpack_from("<H", out, central + 28)[0]
        if bytes(out[central + 46:central + 46 + n_len]) == name:
            struct.pack_into("<I", out, central + 24, new_size)
            break
        central = out.index(b"PK\x01\x02", central + 4)
    return bytes(out)


def test_lying_header_stops_extraction(tmp_path: Path) -> None:
    src = _zip(tmp_path / "liar.zip", {"thua.shp": bytes(range(256)) * 4096})  # 1 MiB
    src.write_bytes(_patch_sizes(src.read_bytes(), b"thua.shp", 1000))
    assert zipfile.ZipFile(src).getinfo("thua.shp").file_size == 1000
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest)
    _refused(exc, UnsafeArchiveError, "more bytes than the archive declares", "liar.zip!thua.shp")
    assert not dest.exists()


def test_encrypted_member(tmp_path: Path) -> None:
    src = _zip(tmp_path / "secret.zip", {"thua.shp": b"x" * 100})
    raw = bytearray(src.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.index(sig)
        raw[at + flag_at] |= 0x01
    src.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    with pytest.raises(InputError) as exc:
        safe_extract(src, dest)
    _refused(exc, InputError, "password", "secret.zip!thua.shp")
    assert not dest.exists()


def test_duplicate_member(tmp_path: Path) -> None:
    src = _zip(tmp_path / "dup.zip", [("thua.dbf", b"one"), ("THUA.dbf", b"two")])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(src, dest)
    _refused(exc, UnsafeArchiveError, "same file twice", "dup.zip!THUA.dbf")
    assert not dest.exists()


def test_refuses_to_overwrite_existing_files(tmp_path: Path) -> None:
    src = _zip(tmp_path / "ok.zip", {"thua.shp": b"new"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "thua.shp").write_bytes(b"old")
    with pytest.raises(UsageError) as exc:
        safe_extract(src, dest)
    assert "thua.shp" in exc.value.where and exc.value.fix
    assert (dest / "thua.shp").read_bytes() == b"old"
    assert _tree(dest) == ["thua.shp"]


# ---------------------------------------------------------------- good archives


def test_extracts_subfolders_and_skips_os_litter(tmp_path: Path) -> None:
    src = _zip(tmp_path / "lamha.zip", {
        "Data/": b"",
        "Data/thua.shp": b"shp",
        "Data/thua.dbf": b"dbf",
        "Data\\thua.prj": b"prj",  # an old Windows zipper's separator
        "__MACOSX/Data/._thua.shp": b"resource fork",
        "Data/.DS_Store": b"finder",
        "./Data/thua.cpg": b"UTF-8",
    })
    dest = tmp_path / "out"
    files = safe_extract(src, dest)
    assert [f.relative_to(dest).as_posix() for f in files] == [
        "Data/thua.shp", "Data/thua.dbf", "Data/thua.prj", "Data/thua.cpg"]
    assert (dest / "Data" / "thua.prj").read_bytes() == b"prj"
    assert _tree(dest) == ["Data", "Data/thua.cpg", "Data/thua.dbf", "Data/thua.prj",
                           "Data/thua.shp"]


def test_moderate_ratio_small_members_pass(tmp_path: Path) -> None:
    # a DBF full of blank padding compresses a thousandfold but is tiny: not a bomb
    src = _zip(tmp_path / "blank.zip", {"thua.dbf": b" " * 500_000, "thua.shp": b"s" * 10})
    files = safe_extract(src, tmp_path / "out")
    assert [f.name for f in files] == ["thua.dbf", "thua.shp"]


def _zip_with_raw_name(path: Path, raw_name: bytes, data: bytes = b"x") -> Path:
    """Write a member whose name bytes are ``raw_name`` with the UTF-8 flag unset."""
    placeholder = b"#" * len(raw_name)
    _zip(path, {placeholder.decode("ascii"): data})
    blob = path.read_bytes()
    assert blob.count(placeholder) == 2
    path.write_bytes(blob.replace(placeholder, raw_name))
    info = zipfile.ZipFile(path).infolist()[0]
    assert not info.flag_bits & 0x800
    return path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Windows-1258 ANSI name with cp1258's combining marks (ữ = ư + tilde byte)
        (b"D\xfd\xde li\xea\xf2u/Th\xfd\xd2a \xf0\xe2\xect.shp", "Dữ liệu/Thửa đất.shp"),
        # UTF-8 bytes without the UTF-8 flag (7-Zip, Info-ZIP on Linux)
        ("Lâm Hà/Ranh giới.shp".encode(), "Lâm Hà/Ranh giới.shp"),
        # plain cp437, as the format says (an umlaut from a DOS zipper)
        ("Grün.shp".encode("cp437"), "Grün.shp"),
    ],
    ids=["cp1258", "utf8-unflagged", "cp437"],
)
def test_member_names_decoded(tmp_path: Path, raw: bytes, expected: str) -> None:
    src = _zip_with_raw_name(tmp_path / "names.zip", raw)
    files = safe_extract(src, tmp_path / "out")
    assert [f.relative_to(tmp_path / "out").as_posix() for f in files] == [expected]
    assert files[0].read_bytes() == b"x"


def test_utf8_flagged_names_kept(tmp_path: Path) -> None:
    src = _zip(tmp_path / "u.zip", {"Đà Lạt/thửa.geojson": b"{}"})
    assert zipfile.ZipFile(src).infolist()[0].flag_bits & 0x800
    files = safe_extract(src, tmp_path / "out")
    assert files == [tmp_path / "out" / "Đà Lạt" / "thửa.geojson"]
