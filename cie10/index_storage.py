"""How a code index is held: its rows described compactly (`IndexRows`, saved as `rows.npz`) and its float16
files read without being held in memory (`RowFile`).

The full catalogue's 163k rows take about 12 MB as `IndexRows` against about 60 MB as `IndexRow` objects; the float16
files are mapped read-only and the rows a search rescores are read from them with `preadv` (docs/training.md,
"Storage").
"""

from __future__ import annotations

import mmap
import operator
import os
import weakref
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from cie10.errors import Cie10Error

ROWS_FILE = "rows.npz"
"""Every row's code, text, language and source (`IndexRows.save`)."""
LEGACY_ROWS_FILE = "rows.json"
"""The rows as a JSON list of [code, text, language, source], as indexes saved before `rows.npz` hold them."""


class IndexSettingError(Cie10Error):
    """An unknown `names` setting or an index whose files disagree."""


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of the index: a name (or an example mention) of `code` in `language`, from `source`."""

    code: str
    text: str
    language: str
    source: str


class RowFile:
    """The rows of a float16 `.npy` file that `np.load(..., mmap_mode="r")` maps, read with `os.preadv` from the
    file rather than through the map: the rows come from the page cache and are never mapped, so a search leaves
    the resident set as it was (a fault on a map can bring in a whole large folio, on ext4 up to the full file).

    Sliced (`rows[a:b]`, for the scan's build) or taken (`take(rows)`); `RowFile.of(matrix)` is None for anything
    but such a map (an array in memory, a view of a map, a system without `preadv`).
    """

    def __init__(self, matrix: np.memmap) -> None:
        self.shape: tuple[int, int] = (int(matrix.shape[0]), int(matrix.shape[1]))
        self.dtype = matrix.dtype
        self._offset = int(matrix.offset)
        self._row_bytes = int(matrix.strides[0])
        self._fd = os.open(matrix.filename, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self._fd)

    @classmethod
    def of(cls, matrix: np.ndarray) -> RowFile | None:
        """A reader of the file `matrix` maps, when it maps a whole `.npy` file's rows read-only; else None."""
        mapped = (
            isinstance(matrix, np.memmap)
            and isinstance(matrix.base, mmap.mmap)  # the map itself, not a view of it: its offset is the file's
            and matrix.mode == "r"
            and matrix.ndim == 2
            and matrix.flags.c_contiguous
            and bool(matrix.filename)
        )
        if not (mapped and hasattr(os, "preadv")):
            return None
        try:
            reader = cls(matrix)
            if os.fstat(reader._fd).st_size < reader._offset + matrix.nbytes:
                return None
        except OSError:
            return None
        return reader

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise IndexError("a row file is read in steps of one row")
        return self.take(np.arange(start, max(start, stop)))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows at `rows`, in that order; one read per run of consecutive rows."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        taken = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        if not len(rows):
            return taken
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"rows outside the {len(self)} rows of an index file")
        buffer = memoryview(taken.reshape(-1).view(np.uint8))
        breaks = (np.flatnonzero(np.diff(rows) != 1) + 1).tolist()
        size = self._row_bytes
        for start, end in zip([0, *breaks], [*breaks, len(rows)], strict=True):
            wanted = (end - start) * size
            read = os.preadv(self._fd, [buffer[start * size : end * size]], self._offset + int(rows[start]) * size)
            if read != wanted:
                raise OSError(f"read {read} of {wanted} bytes of an index file: was it truncated?")
        return taken


def _ids(values: Sequence[int] | array, table: Mapping[str, int]) -> np.ndarray:
    """Ids into a table of `len(table)` values, in the smallest unsigned integer type that holds them."""
    return np.frombuffer(values, dtype=np.int64).astype(np.min_scalar_type(max(len(table) - 1, 0)))


class IndexRows(Sequence[IndexRow]):
    """Every row of an index, held compactly: each row's code position in `codes`, ids into small tables of its
    language and source, and every text in one UTF-8 `bytes` with offsets. `rows[i]` builds the `IndexRow`.

    The 163k rows of the full catalogue take about 12 MB so, against about 60 MB as `IndexRow` objects.
    """

    __slots__ = ("codes", "code", "language", "languages", "source", "sources", "offsets", "text")

    def __init__(
        self,
        codes: Sequence[str],
        code: np.ndarray,
        language: np.ndarray,
        languages: Sequence[str],
        source: np.ndarray,
        sources: Sequence[str],
        offsets: np.ndarray,
        text: bytes,
    ) -> None:
        self.codes = codes
        self.code = np.asarray(code, dtype=np.int32)
        self.language, self.languages = np.asarray(language), tuple(languages)
        self.source, self.sources = np.asarray(source), tuple(sources)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.text = bytes(text)
        count = len(self.code)
        agree = (
            len(self.language) == len(self.source) == count
            and len(self.offsets) == count + 1
            and self.offsets[0] == 0
            and self.offsets[-1] == len(self.text)
            and bool(np.all(np.diff(self.offsets) >= 0))
            and (count == 0 or (0 <= self.code.min() and self.code.max() < len(codes)))
            and (count == 0 or (int(self.language.max()) < len(self.languages) and self.language.min() >= 0))
            and (count == 0 or (int(self.source.max()) < len(self.sources) and self.source.min() >= 0))
        )
        if not agree:
            raise IndexSettingError(f"the index's description of its {count} rows is inconsistent")

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[IndexRow | Sequence[str]],
        codes: Sequence[str],
        row_of: Mapping[str, int] | None = None,
    ) -> IndexRows:
        """From `IndexRow`s or `[code, text, language, source]` lists (an older `rows.json`); every code must be in
        `codes` (`row_of`: its code -> position map, when the caller has one)."""
        row_of = row_of if row_of is not None else {code: position for position, code in enumerate(codes)}
        positions, language_ids, source_ids, offsets = array("q"), array("q"), array("q"), array("q", [0])
        languages: dict[str, int] = {}
        sources: dict[str, int] = {}
        texts: list[bytes] = []
        for row in rows:
            code, text, language, source = (
                (row.code, row.text, row.language, row.source) if isinstance(row, IndexRow) else row
            )
            if code not in row_of:
                raise IndexSettingError(f"an index row names code {code!r}, which the index does not hold")
            positions.append(row_of[code])
            encoded = text.encode("utf-8")
            texts.append(encoded)
            offsets.append(offsets[-1] + len(encoded))
            language_ids.append(languages.setdefault(language, len(languages)))
            source_ids.append(sources.setdefault(source, len(sources)))
        return cls(
            codes,
            np.frombuffer(positions, dtype=np.int64),
            _ids(language_ids, languages),
            list(languages),
            _ids(source_ids, sources),
            list(sources),
            np.frombuffer(offsets, dtype=np.int64),
            b"".join(texts),
        )

    @classmethod
    def load(cls, path: Path, codes: Sequence[str]) -> IndexRows:
        """Read `rows.npz` (see `save`); its code positions point into `codes`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                codes,
                saved["code"],
                saved["language"],
                [str(value) for value in saved["languages"]],
                saved["source"],
                [str(value) for value in saved["sources"]],
                saved["offsets"],
                saved["text"].tobytes(),
            )

    def save(self, path: Path) -> None:
        """Write the rows as one `.npz` of plain arrays (no pickle): code positions, language and source ids and
        their tables, text offsets and the UTF-8 text bytes."""
        with Path(path).open("wb") as handle:
            np.savez(
                handle,
                code=self.code,
                language=self.language,
                languages=np.array(self.languages, dtype=str),
                source=self.source,
                sources=np.array(self.sources, dtype=str),
                offsets=self.offsets,
                text=np.frombuffer(self.text, dtype=np.uint8),
            )

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays and the texts."""
        arrays = (self.code, self.language, self.source, self.offsets)
        return int(sum(values.nbytes for values in arrays) + len(self.text))

    def __len__(self) -> int:
        return len(self.code)

    @overload
    def __getitem__(self, position: int) -> IndexRow: ...

    @overload
    def __getitem__(self, position: slice) -> IndexRows: ...

    def __getitem__(self, position: int | slice) -> IndexRow | IndexRows:
        if isinstance(position, slice):
            return self.take(np.arange(len(self))[position])
        position = operator.index(position)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f"row {position} of an index of {len(self)} rows")
        start, end = int(self.offsets[position]), int(self.offsets[position + 1])
        return IndexRow(
            self.codes[int(self.code[position])],
            self.text[start:end].decode("utf-8"),
            self.languages[int(self.language[position])],
            self.sources[int(self.source[position])],
        )

    def __iter__(self) -> Iterator[IndexRow]:
        offsets = self.offsets.tolist()
        described = zip(self.code.tolist(), self.language.tolist(), self.source.tolist(), strict=True)
        for position, (code, language, source) in enumerate(described):
            text = self.text[offsets[position] : offsets[position + 1]].decode("utf-8")
            yield IndexRow(self.codes[code], text, self.languages[language], self.sources[source])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"IndexRows({len(self)} rows of {len(self.codes)} codes)"

    def counts(self, attribute: str) -> dict[str, int]:
        """Rows per `language` or per `source`, sorted by name."""
        ids, table = (self.language, self.languages) if attribute == "language" else (self.source, self.sources)
        counts = np.bincount(ids.astype(np.int64), minlength=len(table))
        return {name: int(counts[i]) for i, name in sorted(enumerate(table), key=lambda item: item[1]) if counts[i]}

    def take(self, positions: Sequence[int] | np.ndarray, codes: Sequence[str] | None = None) -> IndexRows:
        """The rows at `positions`, in that order; with `codes`, their code positions point into that list instead
        (it must hold every code those rows name)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        code = self.code[positions]
        if codes is None or codes is self.codes:
            codes = self.codes
        else:
            wanted = {name: position for position, name in enumerate(codes)}
            moved = np.fromiter((wanted.get(name, -1) for name in self.codes), dtype=np.int64, count=len(self.codes))
            code = moved[code]
            if len(code) and code.min() < 0:
                raise IndexSettingError("the rows taken name codes outside the codes given")
        starts, ends = self.offsets[positions], self.offsets[positions + 1]
        text = b"".join(self.text[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True))
        offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
        language, source = self.language[positions], self.source[positions]
        return IndexRows(codes, code, language, self.languages, source, self.sources, offsets, text)

    def with_codes(self, codes: Sequence[str]) -> IndexRows:
        """The same rows pointing into `codes`: shared when `codes` holds the same codes in the same order."""
        if codes is self.codes:
            return self
        if list(codes) == list(self.codes):
            return IndexRows(
                codes, self.code, self.language, self.languages, self.source, self.sources, self.offsets, self.text
            )
        return self.take(np.arange(len(self)), codes)


def as_float16_rows(matrix: np.ndarray | None, dimension: int = 0) -> np.ndarray:
    """`matrix` as float16 rows: as it is (a map of a file stays one) when it already is, else converted."""
    if matrix is None or len(matrix) == 0:
        width = matrix.shape[1] if matrix is not None and np.ndim(matrix) == 2 and matrix.shape[1] else dimension
        return np.zeros((0, width), dtype=np.float16)
    return matrix if isinstance(matrix, np.ndarray) and matrix.dtype == np.float16 else np.asarray(matrix, np.float16)


def read_rows_matrix(path: Path) -> np.ndarray:
    """A saved float16 matrix mapped read-only (shared, evictable pages, nothing copied); an older float32 one
    converted in memory."""
    matrix = np.load(path, mmap_mode="r")
    return matrix if matrix.dtype == np.float16 else np.asarray(matrix, dtype=np.float16)
