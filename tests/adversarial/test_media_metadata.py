"""Planted location and personal metadata in every media type the engine accepts: none of it
reaches a caller who may not see the exact place; the picture (or sound, or video) is the same;
the owner still gets the file as sent; a type that cannot be cleaned is refused with a clear
error. Files are built by hand (struct) around real images and videos made with OpenCV."""

from __future__ import annotations

import io
import struct
import wave
import zlib
from pathlib import Path
from typing import Any, Callable

import cv2
import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from core.media import ACCEPTED_TYPES
from core.metadata import NotStrippable, strip_metadata

GEO = b"+41.3912+002.1712/"  # ISO 6709, as phones write it
MAKE, ARTIST = b"PlantedCam X1", b"Jane Planted"
# GPS rationals 41/1 23/1 284424/10000 (41.391234 N), as they sit in a big-endian EXIF
GPS_RATIONALS = struct.pack(">6I", 41, 1, 23, 1, 284424, 10000)
XMP_NS = b"http://ns.adobe.com/xap/1.0/"
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
       b'exif:GPSLatitude="41,23.4741N" exif:GPSLongitude="2,10.2740E" xmp:CreatorTool="' + MAKE + b'"/>'
       b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
EVERY_MARKER = (GEO, MAKE, ARTIST, GPS_RATIONALS, b"Exif\x00\x00", b"http://ns.adobe.com/xap", b"41,23.4741N")


def exif_tiff(orientation: int | None = None) -> bytes:
    """A real big-endian EXIF (TIFF) block: Make, Artist, (Orientation,) and a GPS IFD."""
    entries = [(0x010F, 2, MAKE + b"\0"), (0x013B, 2, ARTIST + b"\0")]
    if orientation:
        entries.append((0x0112, 3, struct.pack(">HH", orientation, 0)))
    entries.append((0x8825, 4, None))  # GPS IFD pointer, filled in below
    ifd0_size = 2 + 12 * len(entries) + 4
    data_at = 8 + ifd0_size
    blob, ifd = b"", struct.pack(">H", len(entries))
    gps_at = data_at + len(MAKE) + 1 + len(ARTIST) + 1
    for tag, kind, value in entries:
        if value is None:
            ifd += struct.pack(">HHII", tag, kind, 1, gps_at)
        elif kind == 3:
            ifd += struct.pack(">HHI", tag, kind, 1) + value
        else:
            ifd += struct.pack(">HHII", tag, kind, len(value), data_at + len(blob))
            blob += value
    ifd += b"\0\0\0\0"
    gps_entries = 4
    gps_data = gps_at + 2 + 12 * gps_entries + 4
    gps = struct.pack(">H", gps_entries)
    gps += struct.pack(">HHI", 1, 2, 2) + b"N\0\0\0"
    gps += struct.pack(">HHII", 2, 5, 3, gps_data)
    gps += struct.pack(">HHI", 3, 2, 2) + b"E\0\0\0"
    gps += struct.pack(">HHII", 4, 5, 3, gps_data + 24)
    gps += b"\0\0\0\0" + GPS_RATIONALS + struct.pack(">6I", 2, 1, 10, 1, 1622424, 10000)
    return b"MM\0*" + struct.pack(">I", 8) + ifd + blob + gps


def pixels(h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([(xx * 4) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256]).astype(np.uint8)


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "the file no longer decodes"
    return image


# ---------------------------------------------------------------------------------- JPEG


def segment(marker: int, payload: bytes, fill: int = 0) -> bytes:
    return b"\xff" * (1 + fill) + bytes((marker,)) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(fill: int = 0, *, progressive: bool = False, orientation: int | None = None) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] + ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else [])
    ok, buf = cv2.imencode(".jpg", pixels(), params)
    assert ok
    plain = buf.tobytes()
    metadata = (
        segment(0xE1, b"Exif\0\0" + exif_tiff(orientation), fill)
        + segment(0xE1, XMP_NS + b"\0" + XMP, fill)
        + segment(0xE2, b"ICC_PROFILE\0\x01\x01" + b"planted-but-harmless-icc", fill)
        + segment(0xE2, b"FPXR\0" + GEO, fill)
        + segment(0xEC, b"Ducky" + ARTIST, fill)
        + segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04" + GEO, fill)
        + segment(0xFE, b"taken at " + GEO, fill)
    )
    out = plain[:2] + metadata + plain[2:]
    if progressive:  # a comment between two scans
        second_scan = out.index(b"\xff\xda", out.index(b"\xff\xda") + 2)
        out = out[:second_scan] + segment(0xFE, ARTIST + b" " + GEO) + out[second_scan:]
    return out + GEO + b"\xff\xd8" + ARTIST  # a trailer after the end of the image


# ---------------------------------------------------------------------------------- PNG


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png() -> bytes:
    ok, buf = cv2.imencode(".png", pixels())
    assert ok
    plain = buf.tobytes()
    after_ihdr = 8 + 25
    planted = (chunk(b"eXIf", exif_tiff()) + chunk(b"tEXt", b"Comment\0taken at " + GEO)
               + chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + XMP)
               + chunk(b"zTXt", b"Author\0\0" + zlib.compress(ARTIST)) + chunk(b"tIME", b"\x07\xea\x05\x01\x09\x1e\x00")
               + chunk(b"prVt", GEO))
    return plain[:after_ihdr] + planted + plain[after_ihdr:] + GEO


# ---------------------------------------------------------------------------------- WebP


def riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def webp() -> bytes:
    """Lossless WebP, extended (VP8X) with EXIF and XMP chunks and their flags set."""
    ok, buf = cv2.imencode(".webp", pixels(), [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok
    simple = buf.tobytes()
    assert simple[12:16] == b"VP8L"
    bitstream = simple[12:]
    h, w = pixels().shape[:2]
    vp8x = riff_chunk(b"VP8X", bytes((0x08 | 0x04, 0, 0, 0)) + (w - 1).to_bytes(3, "little")
                      + (h - 1).to_bytes(3, "little"))
    body = b"WEBP" + vp8x + bitstream + riff_chunk(b"EXIF", exif_tiff()) + riff_chunk(b"XMP ", XMP) \
        + riff_chunk(b"prVt", GEO)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------------------------- GIF


def sub_blocks(data: bytes) -> bytes:
    return b"".join(bytes((len(data[i:i + 255]),)) + data[i:i + 255] for i in range(0, len(data), 255)) + b"\0"


def gif() -> bytes:
    ok, buf = cv2.imencode(".gif", pixels())
    assert ok
    plain = buf.tobytes()
    flags = plain[10]
    after_palette = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    planted = (b"\x21\xfe" + sub_blocks(b"taken at " + GEO + b" by " + ARTIST)
               + b"\x21\xff\x0bXMP DataXMP" + sub_blocks(XMP)
               + b"\x21\x01" + b"\x0c" + bytes(12) + sub_blocks(MAKE))
    assert plain.endswith(b"\x3b")
    return plain[:after_palette] + planted + plain[after_palette:] + GEO


# ---------------------------------------------------------------------------------- WAV


def wav() -> bytes:
    samples = (np.sin(np.arange(2000) / 7) * 9000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    info = b"INFO" + riff_chunk(b"IART", ARTIST + b"\0") + riff_chunk(b"ICMT", GEO + b"\0")
    body = (b"WAVE" + riff_chunk(b"fmt ", fmt) + riff_chunk(b"LIST", info) + riff_chunk(b"data", samples)
            + riff_chunk(b"iXML", b"<LOCATION>" + GEO + b"</LOCATION>"))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_frames(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data)) as w:
        return w.readframes(w.getnframes())


# ---------------------------------------------------------------------------------- MP4 / MOV


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def top_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    out, i, end = [], start, len(data) if end is None else end
    while i < end:
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        out.append((kind, i, i + size))
        i += size
    return out


def video(tmp_path: Path, ext: str) -> bytes:
    """A real 5-frame MPEG-4 video (mdat before moov), with a planted ©xyz, Apple location key,
    XMP uuid box, a timed-metadata track and stray bytes in the media data."""
    path = tmp_path / f"planted.{ext}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    assert writer.isOpened()
    for k in range(5):
        writer.write(np.roll(pixels(), k * 6, axis=1))
    writer.release()
    data = path.read_bytes()
    kinds = [k for k, _s, _e in top_boxes(data)]
    assert kinds[-1] == b"moov" and b"mdat" in kinds, kinds
    _k, moov_start, moov_end = top_boxes(data)[-1]
    children = data[moov_start + 8:moov_end]
    trak = next(data[s:e] for k, s, e in top_boxes(data, moov_start + 8, moov_end) if k == b"trak")
    # the same track again, as a timed-metadata ("meta" handler) track carrying the place in its udta
    meta_trak = trak.replace(b"vide", b"meta", 1)
    meta_trak = meta_trak[:4] + b"trak" + meta_trak[8:]
    meta_trak = box(b"trak", meta_trak[8:] + box(b"udta", box(b"\xa9xyz", struct.pack(">HH", len(GEO), 0x15C7) + GEO)))
    udta = box(b"udta", box(b"\xa9xyz", struct.pack(">HH", len(GEO), 0x15C7) + GEO)
               + box(b"\xa9ART", struct.pack(">HH", len(ARTIST), 0) + ARTIST))
    keys = box(b"keys", struct.pack(">II", 0, 1) + box(b"mdta", b"com.apple.quicktime.location.ISO6709"))
    ilst = box(b"ilst", box(struct.pack(">I", 1), box(b"data", struct.pack(">II", 1, 0) + GEO)))
    meta = box(b"meta", box(b"hdlr", bytes(8) + b"mdta" + bytes(13)) + keys + ilst)
    moov = box(b"moov", children + meta_trak + udta + meta)
    xmp_uuid = box(b"uuid", bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC") + XMP)
    stray = box(b"mdat", b"GPS " + GEO + ARTIST)
    return data[:moov_start] + moov + xmp_uuid + stray


def frames(data: bytes, tmp_path: Path, name: str) -> list[np.ndarray]:
    path = tmp_path / name
    path.write_bytes(data)
    capture = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return out
        out.append(frame)


# ---------------------------------------------------------------------------------- the attack


def publish(make_token: Callable[..., str], make_observation: Callable[..., dict[str, Any]],
            name: str, data: bytes, content_type: str) -> tuple[str, str, dict[str, Any]]:
    """Send ``data`` as a contributor to gamma (public, auto-published); (owner token, url, media)."""
    owner = make_token("contributor", "gamma")
    obs = make_observation("gamma", token=owner, files=[(name, data, content_type)])
    assert obs["status"] == "published"
    media = obs["media"][0]
    assert media["content_type"] == content_type
    return owner, media["url"], media


def assert_clean(public: bytes, *markers: bytes) -> None:
    for marker in markers or EVERY_MARKER:
        assert marker not in public, f"{marker!r} reached the public"


IMAGES = {
    "jpeg": (lambda: jpeg(), "photo.jpg", "image/jpeg"),
    "jpeg with fill bytes": (lambda: jpeg(fill=3), "fill.jpg", "image/jpeg"),
    "progressive jpeg": (lambda: jpeg(progressive=True), "prog.jpg", "image/jpeg"),
    "png": (png, "photo.png", "image/png"),
    "webp": (webp, "photo.webp", "image/webp"),
    "gif": (gif, "photo.gif", "image/gif"),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_no_planted_metadata_reaches_the_public_in_any_image(case, make_token, make_observation, client, auth):
    build, name, content_type = IMAGES[case]
    sent = build()
    for marker in (GEO, ARTIST, b"http://ns.adobe.com/xap"):
        assert marker in sent, "the planted metadata is in the file sent"
    assert content_type == "image/gif" or GPS_RATIONALS in sent
    owner, url, _media = publish(make_token, make_observation, name, sent, content_type)

    mine = client.get(url, headers=auth(owner))
    assert mine.status_code == 200 and mine.content == sent, "the owner gets the file as sent"
    public = client.get(url)
    assert public.status_code == 200, public.text
    assert public.headers["content-type"] == content_type
    assert_clean(public.content)
    assert np.array_equal(decode(public.content), decode(sent)), "the same picture, pixel for pixel"
    other = client.get(url, headers=auth(make_token("contributor", "gamma")))
    assert other.content == public.content, "another contributor is the public too"


def test_jpeg_keeps_what_decoders_need(make_token, make_observation, client):
    sent = jpeg(fill=2)
    _owner, url, _media = publish(make_token, make_observation, "p.jpg", sent, "image/jpeg")
    public = client.get(url).content
    assert b"ICC_PROFILE\0" in public, "the colour profile stays"
    assert public.endswith(b"\xff\xd9"), "nothing after the end of the image"
    assert b"\xff\xff" not in public[:public.index(b"\xff\xda")], "markers are written without fill bytes"


def test_jpeg_orientation_survives_alone(make_token, make_observation, client, auth):
    """A phone photo taken upright stays upright for the public: only the orientation is kept."""
    sent = jpeg(orientation=6)
    owner, url, _media = publish(make_token, make_observation, "up.jpg", sent, "image/jpeg")
    public = client.get(url).content
    assert_clean(public, GEO, MAKE, ARTIST, GPS_RATIONALS, b"http://ns.adobe.com/xap")
    rotated = cv2.imdecode(np.frombuffer(public, np.uint8), cv2.IMREAD_COLOR)
    assert rotated.shape[:2] == (64, 48), "cv2 applies the orientation kept"
    assert np.array_equal(rotated, cv2.imdecode(np.frombuffer(sent, np.uint8), cv2.IMREAD_COLOR))


def test_webp_flags_and_sizes_are_rewritten(make_token, make_observation, client):
    _owner, url, _media = publish(make_token, make_observation, "w.webp", webp(), "image/webp")
    public = client.get(url).content
    assert public[12:16] == b"VP8X" and public[20] & 0x0C == 0, "EXIF and XMP flags cleared"
    assert struct.unpack("<I", public[4:8])[0] == len(public) - 8, "RIFF size matches"
    assert b"EXIF" not in public and b"XMP " not in public


def test_gif_keeps_looping(make_token, make_observation, client):
    ok, buf = cv2.imencode(".gif", pixels())
    plain = buf.tobytes()
    flags = plain[10]
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    sent = plain[:at] + loop + b"\x21\xfe" + sub_blocks(GEO) + plain[at:]
    _owner, url, _media = publish(make_token, make_observation, "loop.gif", sent, "image/gif")
    public = client.get(url).content
    assert loop in public and GEO not in public


def test_no_planted_metadata_reaches_the_public_in_sound(make_token, make_observation, client, auth):
    sent = wav()
    owner, url, _media = publish(make_token, make_observation, "song.wav", sent, "audio/wav")
    assert client.get(url, headers=auth(owner)).content == sent
    public = client.get(url).content
    assert_clean(public)
    assert wav_frames(public) == wav_frames(sent), "the same sound"


@pytest.mark.parametrize("ext,content_type", [("mp4", "video/mp4"), ("mov", "video/quicktime")])
def test_no_planted_metadata_reaches_the_public_in_video(ext, content_type, tmp_path, make_token,
                                                         make_observation, client, auth):
    sent = video(tmp_path, ext)
    assert GEO in sent and b"\xa9xyz" in sent
    owner, url, _media = publish(make_token, make_observation, f"clip.{ext}", sent, content_type)
    assert client.get(url, headers=auth(owner)).content == sent
    public = client.get(url).content
    assert_clean(public, GEO, ARTIST, b"\xa9xyz", b"com.apple.quicktime.location", b"http://ns.adobe.com/xap")
    assert len(public) == len(sent), "cleaned in place: sample offsets unchanged"
    assert public.count(b"trak") == 1, "the timed-metadata track is gone"
    original, cleaned = frames(sent, tmp_path, f"a.{ext}"), frames(public, tmp_path, f"b.{ext}")
    assert len(cleaned) == len(original) == 5
    assert all(np.array_equal(a, b) for a, b in zip(original, cleaned)), "the same video, frame for frame"


def not_public_files(tmp_path: Path) -> dict[str, tuple[bytes, str, str]]:
    writer = cv2.VideoWriter(str(tmp_path / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(pixels())
    writer.release()
    avi = (tmp_path / "c.avi").read_bytes()
    return {
        "avi": (avi, "clip.avi", "video/x-msvideo"),
        "webm": (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\x82\x84webm" + GEO, "clip.webm", "video/webm"),
        "mkv": (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\x82\x88matroska" + GEO, "clip.mkv", "video/x-matroska"),
        "ogg": (b"OggS\0\x02" + bytes(22) + b"\x01vorbis" + GEO, "song.ogg", "audio/ogg"),
    }


@pytest.mark.parametrize("case", ["avi", "webm", "mkv", "ogg"])
def test_types_that_cannot_be_cleaned_are_not_served_publicly(case, tmp_path, make_token, make_observation,
                                                              client, auth):
    sent, name, content_type = not_public_files(tmp_path)[case]
    owner, url, _media = publish(make_token, make_observation, name, sent, content_type)
    assert client.get(url, headers=auth(owner)).content == sent, "the owner still gets it"
    public = client.get(url)
    assert public.status_code == 403
    error = public.json()["error"]
    assert error["code"] == "media_not_public" and "token" in error["message"]
    assert GEO not in public.content


def test_a_file_that_cannot_be_followed_is_refused_not_served_raw(make_token, make_observation, client, auth):
    """Fail closed: a JPEG segment the cleaner does not know (JPG0, 0xF0) hides the place."""
    ok, buf = cv2.imencode(".jpg", pixels())
    plain = buf.tobytes()
    sent = plain[:2] + segment(0xF0, GEO) + plain[2:]
    owner, url, _media = publish(make_token, make_observation, "odd.jpg", sent, "image/jpeg")
    assert client.get(url, headers=auth(owner)).content == sent
    for _ in range(2):  # the decision is kept, and stays the same
        public = client.get(url)
        assert public.status_code == 403 and public.json()["error"]["code"] == "media_not_public"


def test_cleaned_once_and_cacheable_only_as_such(engine, make_token, make_observation, client, auth):
    sent = jpeg(fill=1)
    owner, url, media = publish(make_token, make_observation, "c.jpg", sent, "image/jpeg")
    public = client.get(url)
    kept = engine.media.public_path_for(media["sha256"])
    assert kept.read_bytes() == public.content, "the cleaned copy is kept for the next caller"
    assert client.get(url).content == public.content
    assert public.headers["cache-control"].startswith("public")
    assert "authorization" in public.headers["vary"].lower()
    assert public.headers["etag"] != f'"{media["sha256"]}"', "not the ETag of the file as sent"
    mine = client.get(url, headers=auth(owner))
    assert mine.headers["cache-control"].startswith("private"), "a shared cache must not keep the original"
    assert "authorization" in mine.headers["vary"].lower()


def test_the_schema_declares_every_type_the_route_answers(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/observations/{obs_id}/media/{media_id}"]["get"]
    assert set(operation["responses"]["200"]["content"]) == set(ACCEPTED_TYPES)
    assert "image/webp" in operation["responses"]["200"]["content"]
    assert "media_not_public" in operation["responses"]["403"]["description"]
    assert "metadata" in operation["description"]


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[str, bytes], ...]:
    folder = tmp_path_factory.mktemp("planted")
    return (("image/jpeg", jpeg()), ("image/jpeg", jpeg(fill=2, progressive=True)), ("image/png", png()),
            ("image/webp", webp()), ("image/gif", gif()), ("audio/wav", wav()),
            ("video/mp4", video(folder, "mp4")), ("video/quicktime", video(folder, "mov")))


@hypothesis.settings(max_examples=400, deadline=None, derandomize=True, database=None)
@hypothesis.given(which=st.integers(0, 7), cut=st.floats(0, 1), edits=st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.booleans()), max_size=4))
def test_a_damaged_file_is_refused_or_clean(planted_files, which, cut, edits):
    """Whatever the damage (bytes changed or inserted, the file cut short), the cleaner either
    refuses the file (it is then not served publicly) or returns it without any planted marker."""
    content_type, data = planted_files[which]
    damaged = bytearray(data)
    for where, value, insert in edits:
        at = int(where * len(damaged))
        if insert:
            damaged[at:at] = bytes((value,))
        else:
            damaged[at] = value
    if cut < 0.3:
        damaged = damaged[:int(cut / 0.3 * len(damaged))]
    try:
        cleaned = strip_metadata(bytes(damaged), content_type)
    except NotStrippable:
        return
    assert_clean(cleaned, GEO, MAKE, ARTIST, GPS_RATIONALS, b"http://ns.adobe.com/xap")
