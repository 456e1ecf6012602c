"""Remove metadata from MP4 and QuickTime files (the ISO base media file format).

Sample tables address the coded pictures and sound by absolute file offsets, so nothing is cut
out: metadata boxes are turned *in place* into ``free`` boxes full of zeros (``udta`` with
``©xyz``/``loci``, ``meta`` with Apple's ISO 6709 location keys, XMP ``uuid`` boxes, old
``free`` contents), tracks that are not picture, sound or timecode (GPS and other timed metadata,
subtitles, hints) are blanked whole, and every byte of ``mdat`` that is not a sample of a kept
track is zeroed. Sizes and offsets stay as they were, so the file plays as before.

Fails closed: a box it does not know in a place where metadata could hide, a truncated box,
a sample table that points outside ``mdat``, an external data reference, compressed or
fragmented movies raise :class:`NotStrippable`. The coded pictures and sound themselves (for
instance SEI messages inside an H.264 stream) are not inspected.
"""

from __future__ import annotations

import bisect
import struct
from itertools import accumulate
from typing import Iterator

from core.metadata_errors import NotStrippable

Box = tuple[bytes, int, int, int]  # type, start, payload start, end

BLANK = {b"udta", b"meta", b"uuid", b"free", b"skip", b"wide"}
KEEP_HANDLERS = {b"vide", b"soun", b"tmcd"}
KEEP, WALK = "keep", "walk"
# what may sit in each container (besides BLANK, blanked anywhere); anything else: refused
SCHEMA: dict[bytes, dict[bytes, str]] = {
    b"moov": {b"mvhd": KEEP, b"iods": KEEP, b"trak": WALK},
    b"trak": {b"tkhd": KEEP, b"tref": KEEP, b"edts": KEEP, b"tapt": KEEP, b"load": KEEP, b"mdia": WALK},
    b"mdia": {b"mdhd": KEEP, b"hdlr": KEEP, b"elng": KEEP, b"minf": WALK},
    b"minf": {b"vmhd": KEEP, b"smhd": KEEP, b"gmhd": KEEP, b"nmhd": KEEP, b"sthd": KEEP, b"hmhd": KEEP,
              b"hdlr": KEEP, b"dinf": WALK, b"stbl": WALK},
    b"dinf": {b"dref": KEEP},
    b"stbl": dict.fromkeys((b"stsd", b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stco", b"co64", b"sdtp",
                            b"sgpd", b"sbgp", b"subs", b"cslg", b"stps", b"padb", b"saiz", b"saio"), KEEP),
}


def boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[Box]:
    """The boxes that tile ``data[start:end]`` exactly; NotStrippable on any bad size."""
    i = start
    while i < end:
        if i + 8 > end:
            raise NotStrippable(f"MP4: a box header is cut off at byte {i}")
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        header = 8
        if size == 1:
            if i + 16 > end:
                raise NotStrippable(f"MP4: a box header is cut off at byte {i}")
            (size,) = struct.unpack(">Q", data[i + 8:i + 16])
            header = 16
        elif size == 0:
            size = end - i
        if size < header or i + size > end:
            raise NotStrippable(f"MP4: box {kind!r} at byte {i} has an impossible size ({size})")
        yield kind, i, i + header, i + size
        i += size


def _blank(out: bytearray, box: Box) -> None:
    _kind, start, payload, end = box
    out[start + 4:start + 8] = b"free"
    out[payload:end] = bytes(end - payload)


def _child(data: bytes, box: Box, kind: bytes) -> Box | None:
    return next((b for b in boxes(data, box[2], box[3]) if b[0] == kind), None)


def _handler(data: bytes, trak: Box) -> bytes:
    mdia = _child(data, trak, b"mdia")
    hdlr = _child(data, mdia, b"hdlr") if mdia else None
    if hdlr is None or hdlr[3] - hdlr[2] < 12:
        raise NotStrippable("MP4: a track without a media handler")
    return data[hdlr[2] + 8:hdlr[2] + 12]


def _check_dref(data: bytes, dref: Box) -> None:
    """Only self-contained data references (no alias records with file paths, no URLs)."""
    for _kind, _start, payload, end in boxes(data, dref[2] + 8, dref[3]):
        flags = int.from_bytes(data[payload + 1:payload + 4], "big")
        if not flags & 1 or end - payload != 4:
            raise NotStrippable("MP4: the media refers to data outside the file")


def _sample_ranges(data: bytes, tables: dict[bytes, Box]) -> list[tuple[int, int]]:
    """The byte ranges of a track's chunks, from its sample tables."""
    if b"stz2" in tables:
        raise NotStrippable("MP4: compact sample sizes (stz2) are not read")
    offsets_box = tables.get(b"stco") or tables.get(b"co64")
    if offsets_box is None:
        return []
    wide = offsets_box[0] == b"co64"
    p = offsets_box[2]
    (count,) = struct.unpack(">I", data[p + 4:p + 8])
    offsets = struct.unpack(f">{count}{'Q' if wide else 'I'}", data[p + 8:p + 8 + count * (8 if wide else 4)])
    if b"stsc" not in tables or b"stsz" not in tables:
        raise NotStrippable("MP4: a track without sample-to-chunk or sample-size tables")
    p = tables[b"stsc"][2]
    (entries,) = struct.unpack(">I", data[p + 4:p + 8])
    stsc = [struct.unpack(">III", data[p + 8 + 12 * k:p + 20 + 12 * k])[:2] for k in range(entries)]
    p = tables[b"stsz"][2]
    uniform, samples = struct.unpack(">II", data[p + 4:p + 12])
    prefix = None if uniform else [0, *accumulate(struct.unpack(f">{samples}I", data[p + 12:p + 12 + 4 * samples]))]
    ranges, sample = [], 0
    for k, (first, per_chunk) in enumerate(stsc):
        last = stsc[k + 1][0] - 1 if k + 1 < len(stsc) else count
        if first < 1 or last > count or last < first - 1:
            raise NotStrippable("MP4: the sample-to-chunk table does not fit the chunk offsets")
        for chunk in range(first, last + 1):
            if sample + per_chunk > samples:
                raise NotStrippable("MP4: the chunks hold more samples than the track has")
            size = per_chunk * uniform if prefix is None else prefix[sample + per_chunk] - prefix[sample]
            start = offsets[chunk - 1]
            ranges.append((start, start + size))
            sample += per_chunk
    return ranges


def _walk(data: bytes, out: bytearray, box: Box, tables: dict[bytes, Box]) -> None:
    allowed = SCHEMA[box[0]]
    for child in boxes(data, box[2], box[3]):
        kind = child[0]
        if kind in BLANK:
            _blank(out, child)
        elif kind not in allowed:
            raise NotStrippable(f"MP4: unexpected box {kind!r} in {box[0]!r}")
        elif kind == b"dref":
            _check_dref(data, child)
        elif allowed[kind] == WALK:
            _walk(data, out, child, tables)
        elif box[0] == b"stbl":
            tables[kind] = child


def _zero_unused(out: bytearray, mdats: list[Box], ranges: list[tuple[int, int]]) -> None:
    """Zero every byte of each ``mdat`` that no kept sample covers; refuse samples outside them."""
    starts = [m[2] for m in mdats]
    used: dict[int, list[tuple[int, int]]] = {k: [] for k in range(len(mdats))}
    for start, end in ranges:
        if end == start:
            continue
        k = bisect.bisect_right(starts, start) - 1
        if k < 0 or end > mdats[k][3]:
            raise NotStrippable("MP4: a sample lies outside the media data")
        used[k].append((start, end))
    for k, (_kind, _start, payload, box_end) in enumerate(mdats):
        cursor = payload
        for start, end in sorted(used[k]):
            if start > cursor:
                out[cursor:start] = bytes(start - cursor)
            cursor = max(cursor, end)
        if cursor < box_end:
            out[cursor:box_end] = bytes(box_end - cursor)


def strip_isobmff(data: bytes) -> bytes:
    """An MP4/MOV file with its metadata blanked in place (same size, same sample offsets)."""
    out = bytearray(data)
    mdats: list[Box] = []
    ranges: list[tuple[int, int]] = []
    top = list(boxes(data, 0, len(data)))
    if not top or top[0][0] != b"ftyp":
        raise NotStrippable("MP4: the file does not start with ftyp")
    if sum(1 for b in top if b[0] == b"moov") != 1:
        raise NotStrippable("MP4: not exactly one movie box (compressed or fragmented movies are not cleaned)")
    for box in top:
        kind = box[0]
        if kind == b"ftyp":
            continue
        if kind == b"mdat":
            mdats.append(box)
        elif kind in BLANK:
            _blank(out, box)
        elif kind != b"moov":
            raise NotStrippable(f"MP4: unexpected top-level box {kind!r}")
    moov = next(b for b in top if b[0] == b"moov")
    for child in boxes(data, moov[2], moov[3]):
        if child[0] == b"trak":
            if _handler(data, child) not in KEEP_HANDLERS:
                _blank(out, child)  # GPS tracks, subtitles, ...: gone, with their samples (below)
                continue
            tables: dict[bytes, Box] = {}
            _walk(data, out, child, tables)
            ranges += _sample_ranges(data, tables)
    _walk_moov_rest(data, out, moov)
    _zero_unused(out, sorted(mdats, key=lambda b: b[2]), ranges)
    return bytes(out)


def _walk_moov_rest(data: bytes, out: bytearray, moov: Box) -> None:
    """The movie box's own children other than tracks: blank metadata, refuse the unknown."""
    for child in boxes(data, moov[2], moov[3]):
        kind = child[0]
        if kind in BLANK:
            _blank(out, child)
        elif kind not in SCHEMA[b"moov"]:
            raise NotStrippable(f"MP4: unexpected box {kind!r} in the movie box")
