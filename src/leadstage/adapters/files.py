"""Reading and writing record files: CSV (pyarrow, streamed), NDJSON and Parquet; rejects; mapping YAML.

Errors::

    FileProblem    the file cannot be read at all (missing, wrong encoding, no header, bad YAML):
                   the import stops before anything is written (CLI exit 2)
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from leadstage.services.ports import RecordBatch, RejectedRecord

BLOCK_SIZE = 1 << 20
NDJSON_BATCH = 5_000


class FileProblem(Exception):
    """A file that cannot be read as asked; the message names the file and the place."""


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes handed to the CSV reader (for the progress bar)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.bytes_read += n or 0
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


def check_encoding(path: Path, encoding: str) -> None:
    """Decode the whole file once (in C, chunk by chunk) so a bad byte is reported before any import."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise FileProblem(f"{path}: unknown encoding {encoding!r}") from None
    line = 1
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_at = exc.start
                line += chunk[:bad_at].count(b"\n")
                raise FileProblem(
                    f"{path}: line {line}: byte {chunk[bad_at : bad_at + 1]!r} is not valid {encoding}; "
                    f"the file is in another encoding: say which in the map file (encoding: cp1252, for example)"
                ) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileProblem(f"{path}: the file ends in the middle of a {encoding} character") from None


class _TextSource:
    """What the text formats share: the file, its encoding (checked before anything is read) and the
    rows set aside as unreadable."""

    def __init__(self, path: Path, *, encoding: str, batch_rows: int) -> None:
        self.path = str(path)
        self._path = path
        self.encoding = encoding
        self.batch_rows = batch_rows
        self.size_bytes = path.stat().st_size
        check_encoding(path, encoding)
        self._unreadable: list[RejectedRecord] = []

    def drain_unreadable(self) -> list[RejectedRecord]:
        out, self._unreadable = self._unreadable, []
        return out


class CsvSource(_TextSource):
    """A CSV file streamed with pyarrow; every cell read as text. Rows with the wrong number of cells are
    set aside as unreadable (with their raw text) while the rest import."""

    def __init__(self, path: Path, *, encoding: str = "utf-8", batch_rows: int = 50_000) -> None:
        super().__init__(path, encoding=encoding, batch_rows=batch_rows)
        self.columns = self._read_header()

    def _read_header(self) -> list[str]:
        with self._path.open("r", encoding=self.encoding, newline="") as fh:
            first = fh.readline()
        if not first.strip():
            raise FileProblem(f"{self.path}: line 1: the file is empty or has no header row")
        header = next(csv.reader([first.lstrip("\ufeff")]))
        names = [h.strip() for h in header]
        if any(not n for n in names):
            raise FileProblem(f"{self.path}: line 1: column {names.index('') + 1} of the header has no name")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise FileProblem(f"{self.path}: line 1: the header names column {dupes[0]!r} twice")
        return names

    def _on_invalid(self, row: Any) -> str:
        cells = next(csv.reader([row.text])) if row.text else []
        values = dict(zip(self.columns, cells, strict=False))
        self._unreadable.append(
            RejectedRecord(
                values=values,
                cells=cells,
                reason=f"the row has {row.actual_columns} cells, the header has {row.expected_columns}: {row.text!r}",
            )
        )
        return "skip"

    def batches(self) -> Iterator[RecordBatch]:
        raw = _CountingReader(self._path.open("rb"))
        try:
            reader = pacsv.open_csv(
                raw,
                read_options=pacsv.ReadOptions(
                    encoding=self.encoding,
                    block_size=BLOCK_SIZE,
                    use_threads=True,
                    column_names=self.columns,
                    skip_rows=1,
                ),
                parse_options=pacsv.ParseOptions(
                    invalid_row_handler=self._on_invalid, newlines_in_values=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in self.columns},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            row_number = 1
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in reader:
                offset = 0
                while offset < batch.num_rows:
                    piece = batch.slice(offset, self.batch_rows - pending_rows)
                    offset += piece.num_rows
                    pending.append(piece)
                    pending_rows += piece.num_rows
                    if pending_rows >= self.batch_rows:
                        yield self._emit(pending, row_number, raw.bytes_read)
                        row_number += pending_rows
                        pending, pending_rows = [], 0
            if pending_rows:
                yield self._emit(pending, row_number, raw.bytes_read)
        except pa.ArrowInvalid as exc:
            raise FileProblem(f"{self.path}: {exc}") from None
        finally:
            raw.close()

    def _emit(self, pending: list[pa.RecordBatch], first: int, bytes_read: int) -> RecordBatch:
        table = pa.Table.from_batches(pending)
        columns = {name: table.column(name).to_pylist() for name in self.columns}
        return RecordBatch(
            columns=columns, length=table.num_rows, first_row_number=first, bytes_read=bytes_read
        )


class NdjsonSource(_TextSource):
    """Newline-delimited JSON objects, one per line; a line that is not an object is unreadable."""

    def __init__(self, path: Path, *, encoding: str = "utf-8", batch_rows: int = NDJSON_BATCH) -> None:
        super().__init__(path, encoding=encoding, batch_rows=batch_rows)
        self.columns = self._scan_columns()

    def _scan_columns(self) -> list[str]:
        seen: dict[str, None] = {}
        with self._path.open("r", encoding=self.encoding) as fh:
            for line in fh:  # every line: a key that first appears late is still a column
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    seen.update(dict.fromkeys(str(k) for k in obj))
        if not seen:
            raise FileProblem(f"{self.path}: no JSON objects found")
        return list(seen)

    def batches(self) -> Iterator[RecordBatch]:
        rows: list[dict[str, Any]] = []
        first = 1
        bytes_read = 0
        with self._path.open("r", encoding=self.encoding) as fh:
            for number, line in enumerate(fh, start=1):
                bytes_read += len(line.encode(self.encoding))
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    self._unreadable.append(
                        RejectedRecord(
                            values={},
                            cells=[line.rstrip("\n")],
                            reason=f"line {number}: not a JSON object ({exc})",
                        )
                    )
                    continue
                for key in obj:
                    if key not in self.columns:
                        self.columns.append(str(key))
                rows.append(obj)
                if len(rows) >= self.batch_rows:
                    yield self._emit(rows, first, bytes_read)
                    first += len(rows)
                    rows = []
            if rows:
                yield self._emit(rows, first, bytes_read)

    def _emit(self, rows: list[dict[str, Any]], first: int, bytes_read: int) -> RecordBatch:
        columns = {c: [_plain(r.get(c)) for r in rows] for c in self.columns}
        return RecordBatch(columns=columns, length=len(rows), first_row_number=first, bytes_read=bytes_read)


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


class ParquetSource:
    """A Parquet file read batch by batch; values keep their types."""

    def __init__(self, path: Path, *, batch_rows: int = 50_000) -> None:
        self.path = str(path)
        self.size_bytes = path.stat().st_size
        self.batch_rows = batch_rows
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileProblem(f"{path}: not a readable Parquet file ({exc})") from None
        self.columns = list(self._file.schema_arrow.names)

    def batches(self) -> Iterator[RecordBatch]:
        first = 1
        done_rows = 0
        total = max(1, self._file.metadata.num_rows)
        for batch in self._file.iter_batches(batch_size=self.batch_rows):
            done_rows += batch.num_rows
            columns = {name: batch.column(name).to_pylist() for name in self.columns}
            yield RecordBatch(
                columns=columns,
                length=batch.num_rows,
                first_row_number=first,
                bytes_read=int(self.size_bytes * done_rows / total),
            )
            first += batch.num_rows

    def drain_unreadable(self) -> list[RejectedRecord]:
        return []


def open_source(path: str | Path, *, encoding: str = "utf-8", batch_rows: int = 50_000) -> Any:
    """The right reader for a file, chosen by its extension."""
    p = Path(path)
    if not p.exists():
        raise FileProblem(f"{p}: no such file")
    if not p.is_file():
        raise FileProblem(f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix in (".csv", ".txt"):
        return CsvSource(p, encoding=encoding, batch_rows=batch_rows)
    if suffix in (".ndjson", ".jsonl", ".json"):
        return NdjsonSource(p, encoding=encoding)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(p, batch_rows=batch_rows)
    raise FileProblem(f"{p}: unknown file type {suffix!r}; use .csv, .ndjson/.jsonl or .parquet")


class CsvRejectSink:
    """``<input file name>.rejects.csv`` next to the input: the original columns plus ``reason``.

    The file is replaced on each run (so it always describes the latest import) and only created when a
    row is rejected.
    """

    def __init__(self, input_path: str | Path, columns: list[str]) -> None:
        p = Path(input_path)
        self.path = p.with_name(p.name + ".rejects.csv")
        self.columns = columns
        self._count = 0
        self._fh: io.TextIOWrapper | None = None
        self._writer: Any = None
        if self.path.exists():
            self.path.unlink()

    def write(self, record: RejectedRecord) -> None:
        if self._writer is None:
            self._fh = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._fh)
            self._writer.writerow([*self.columns, "reason"])
        if record.cells is not None and not record.values:
            cells = [*record.cells[: len(self.columns)], *[""] * (len(self.columns) - len(record.cells))]
        else:
            cells = [_cell(record.values.get(c)) for c in self.columns]
        self._writer.writerow([*cells, record.reason])
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def load_mapping(path: str | Path | None) -> dict[str, Any] | None:
    """Read a MAP.yaml; a syntax error names the line and column."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise FileProblem(f"{p}: no such mapping file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise FileProblem(f"{p}: {where}: invalid YAML ({exc.problem})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FileProblem(f"{p}: invalid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FileProblem(f"{p}: line 1: a mapping file is a YAML mapping with keys such as 'columns'")
    return data


class RecordWriter:
    """Writes rows to CSV, NDJSON or Parquet by extension, in chunks (constant memory)."""

    def __init__(self, path: str | Path, columns: list[str]) -> None:
        self.path = Path(path)
        self.columns = columns
        self.format = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".parquet": "parquet"}.get(
            self.path.suffix.lower(), ""
        )
        if not self.format:
            raise FileProblem(f"{self.path}: unknown file type; use .csv, .ndjson/.jsonl or .parquet")
        if not self.path.parent.exists():
            raise FileProblem(f"{self.path}: folder {self.path.parent} does not exist")
        self._fh: Any = None
        self._pq: pq.ParquetWriter | None = None
        self.rows = 0
        if self.format == "csv":
            self._fh = self.path.open("w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._fh)
            self._csv.writerow(columns)
        elif self.format == "ndjson":
            self._fh = self.path.open("w", encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.rows += len(rows)
        if self.format == "csv":
            for r in rows:
                self._csv.writerow([_csv_cell(r.get(c)) for c in self.columns])
        elif self.format == "ndjson":
            for r in rows:
                self._fh.write(
                    json.dumps({c: r.get(c) for c in self.columns}, ensure_ascii=False, default=str)
                )
                self._fh.write("\n")
        else:
            table = pa.Table.from_pylist(
                [{c: _pq_cell(r.get(c)) for c in self.columns} for r in rows],
                schema=pa.schema([(c, pa.string()) for c in self.columns]),
            )
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, table.schema)
            self._pq.write_table(table)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._pq is not None:
            self._pq.close()
        elif self.format == "parquet":
            pq.write_table(pa.table({c: pa.array([], pa.string()) for c in self.columns}), self.path)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _pq_cell(value: Any) -> str | None:
    return None if value is None else _csv_cell(value)
