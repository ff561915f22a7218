"""Is a DICOM file complete? A walk over the element structure of its bytes.

pydicom reads a file that ends early without complaint: an element cut short becomes a shorter value and
an undefined-length sequence that never closes ends where the file ends. A truncated RT Structure Set then
reads as one with fewer contours, a truncated SR as a report without its last items. This module walks
the encoded elements (PS3.5 section 7: tag, VR, length; items and delimiters of sequences and encapsulated
pixel data, section 7.5 and A.4) and says where the structure breaks: an element whose value runs past the
end of the file, a sequence or item without its delimiter, an item tag where none can be.

Deflated transfer syntaxes are not walked (their dataset is compressed as a whole).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from theradose.errors import DicomError

#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 Table 7.1-1).
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
#: Nesting deeper than this is damage, not a real file.
MAX_DEPTH = 64


class _Broken(Exception):
    def __init__(self, position: int, problem: str) -> None:
        super().__init__(problem)
        self.position = position
        self.problem = problem


class _Walker:
    def __init__(self, data: bytes | mmap.mmap, explicit: bool, little: bool) -> None:
        self.data = data
        self.end = len(data)
        self.explicit = explicit
        self.order = "<" if little else ">"

    def _u16(self, position: int) -> int:
        value: int = struct.unpack_from(self.order + "H", self.data, position)[0]
        return value

    def _u32(self, position: int) -> int:
        value: int = struct.unpack_from(self.order + "L", self.data, position)[0]
        return value

    def _tag(self, position: int) -> int:
        return (self._u16(position) << 16) | self._u16(position + 2)

    def elements(self, position: int, *, in_item: bool, depth: int) -> int:
        """Walk elements from ``position`` to the end (or to the item delimiter when ``in_item``)."""
        if depth > MAX_DEPTH:
            raise _Broken(position, "sequences nested deeper than any real file")
        while position < self.end:
            if position + 8 > self.end:
                raise _Broken(position, "the last element header is cut short")
            tag = self._tag(position)
            if tag == ITEM_DELIMITER:
                if in_item:
                    return position + 8
                raise _Broken(position, "an item delimiter outside any item")
            if tag in (ITEM, SEQUENCE_DELIMITER):
                raise _Broken(position, "an item or sequence delimiter where a data element should be")
            vr = bytes(self.data[position + 4 : position + 6])
            if self.explicit and vr.isalpha() and vr.isupper():  # else an implicit VR element (tolerated)
                if vr in LONG_VRS:
                    if position + 12 > self.end:
                        raise _Broken(position, "the last element header is cut short")
                    length = self._u32(position + 8)
                    position += 12
                else:
                    length = self._u16(position + 6)
                    position += 8
            else:
                length = self._u32(position + 4)
                position += 8
            if length == UNDEFINED_LENGTH:
                position = self.items(position, depth=depth + 1, tag=tag)
            elif position + length > self.end:
                raise _Broken(position, f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end")
            else:
                position += length
        if in_item:
            raise _Broken(position, "an item of undefined length never closes")
        return position

    def items(self, position: int, *, depth: int, tag: int) -> int:
        """Walk the items of an undefined-length sequence (or pixel data fragments) to its delimiter."""
        while True:
            if position + 8 > self.end:
                raise _Broken(
                    position,
                    f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) never closes: the file ends in it",
                )
            item_tag = self._tag(position)
            length = self._u32(position + 4)
            position += 8
            if item_tag == SEQUENCE_DELIMITER:
                return position
            if item_tag != ITEM:
                raise _Broken(position - 8, f"sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}) holds a non-item")
            if length == UNDEFINED_LENGTH:
                position = self.elements(position, in_item=True, depth=depth + 1)
            elif position + length > self.end:
                raise _Broken(position, "an item runs past the end of the file")
            else:
                position += length


def check_complete(data: bytes | mmap.mmap, name: str) -> None:
    """Raise :class:`DicomError` naming ``name`` if the encoded structure of ``data`` is broken.

    ``data`` is a whole Part 10 file (preamble and file meta information) or a bare dataset.
    """
    try:
        _check(data)
    except _Broken as exc:
        raise DicomError(
            f"file {name!r} is truncated or damaged ({exc.problem}, byte {exc.position} of {len(data)}): "
            "copy or export it again"
        ) from None
    except struct.error:
        raise DicomError(f"file {name!r} is truncated or damaged: copy or export it again") from None


def check_file_complete(path: Path) -> None:
    """:func:`check_complete` of the file at ``path`` (memory-mapped, not read into memory)."""
    with path.open("rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            check_complete(b"", str(path))
            return
        with mapped:
            check_complete(mapped, str(path))


def _check(data: bytes | mmap.mmap) -> None:
    position = 0
    syntax = None
    if len(data) >= 132 and data[128:132] == b"DICM":
        position = 132
    meta = _Walker(data, explicit=True, little=True)
    # File Meta Information: group 0002, explicit VR little endian (PS3.10 7.1)
    while position + 8 <= len(data) and meta._u16(position) == 0x0002:
        tag = meta._tag(position)
        vr = bytes(data[position + 4 : position + 6])
        if vr in LONG_VRS:
            if position + 12 > len(data):
                raise _Broken(position, "the file meta information is cut short")
            length = meta._u32(position + 8)
            start = position + 12
        else:
            length = meta._u16(position + 6)
            start = position + 8
        if length == UNDEFINED_LENGTH or start + length > len(data):
            raise _Broken(position, "the file meta information is cut short")
        if tag == 0x00020010:
            syntax = bytes(data[start : start + length]).rstrip(b"\x00 ").decode("ascii", "replace")
        position = start + length
    if syntax is None:
        # a bare dataset without file meta information: any encoding whose structure holds will do
        failures = []
        for explicit, little in ((True, True), (False, True), (True, False)):
            try:
                _Walker(data, explicit=explicit, little=little).elements(position, in_item=False, depth=0)
                return
            except (_Broken, struct.error) as exc:
                failures.append(exc)
        first = failures[0]
        raise first if isinstance(first, _Broken) else _Broken(position, "undecodable element headers")
    if syntax in DEFLATED:
        return
    else:
        explicit = syntax != IMPLICIT_VR_LITTLE_ENDIAN
        little = syntax != EXPLICIT_VR_BIG_ENDIAN
    _Walker(data, explicit=explicit, little=little).elements(position, in_item=False, depth=0)


__all__ = ["check_complete", "check_file_complete"]
