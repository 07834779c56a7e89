"""The conversions, each Kestra's task of the same name: CSV, JSON (lines), Avro, Parquet, Excel and XML
to and from Ion. Rows stream through: memory stays bounded whatever the file's size (Excel and a
JSON array being read whole are the exceptions named in their docs)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel import Example, RunContext, TaskError
from tiercel_serdes import _ion
from tiercel_serdes._base import KESTRA, Convert, format_date, watched

CHARSET = "Character encoding of the text file (`UTF-8`, `ISO-8859-1`, …)."


def _example(title: str, produce: str, task: str, body: str = "") -> Example:
    return Example(
        title,
        f"""\
id: serdes_example
namespace: company.team
tasks:
{produce}  - id: convert
    type: {task}
    from: "{{{{ outputs.make.uri }}}}"
{body}""",
    )


_CSV = """\
  - id: make
    type: scripts.Shell
    commands: ["printf 'id,name\\\\n1,ada\\\\n2,grace\\\\n' > people.csv"]
    outputFiles: [people.csv]
"""


def _ion_source(rows: str = '{id: 1, name: \\"ada\\", joined: 2024-01-02T03:04:05Z}') -> str:
    return f"""\
  - id: make
    type: scripts.Shell
    commands: ["printf '%s\\\\n' '{rows}' > rows.ion"]
    outputFiles: [rows.ion]
"""


def _fix(example: Example, file: str) -> Example:
    """The examples' shell step names its file; point `from` at it."""
    return Example(
        example.title, example.flow.replace("outputs.make.uri", f"outputs.make.outputFiles['{file}']"), example.run
    )


# ---------------------------------------------------------------- CSV


class CsvToIon(Convert):
    """Convert a CSV file into Ion rows: a map per line keyed by the header, or a list per line without one.

    Values stay strings, as in Kestra. Streamed line by line.
    """

    type: ClassVar[str] = "serdes.csv.CsvToIon"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.csv.CsvToIon", f"{KESTRA}.csv.CsvReader")
    examples: ClassVar[list[Example]] = [
        _fix(_example("Read a CSV file as rows", _CSV, "serdes.csv.CsvToIon", "    header: true\n"), "people.csv")
    ]

    header: bool = Field(True, description="The first line names the columns.")
    fieldSeparator: str = Field(",", min_length=1, max_length=1, description="Column separator.")
    textDelimiter: str = Field('"', min_length=1, max_length=1, description="Quote character around values.")
    skipRows: int = Field(0, ge=0, description="Lines skipped before the header (or the first row).")
    skipEmptyRows: bool = Field(False, description="Ignore empty lines.")
    errorOnDifferentFieldCount: bool = Field(
        False, description="Fail when a line has more or fewer fields than the header."
    )
    charset: str = Field("UTF-8", description=CHARSET)

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        with open(source, encoding=self.charset, newline="") as text, open(target, "wb") as out:
            return _ion.write(watched(ctx, self.rows(text)), out)

    def rows(self, text: Any) -> Iterator[Any]:
        reader = csv.reader(text, delimiter=self.fieldSeparator, quotechar=self.textDelimiter)
        for _ in range(self.skipRows):
            next(reader, None)
        names = next(reader, None) if self.header else None
        for line in reader:
            if not line and self.skipEmptyRows:
                continue
            if names is None:
                yield line
                continue
            if len(line) != len(names) and self.errorOnDifferentFieldCount:
                raise ValueError(f"line {reader.line_num} has {len(line)} fields, the header {len(names)}")
            yield {name: (line[i] if i < len(line) else None) for i, name in enumerate(names)}


class _Dates(Convert):
    dateFormat: str = Field("yyyy-MM-dd", description="Java-style pattern for dates.")
    timeFormat: str = Field("HH:mm:ss", description="Java-style pattern for times.")
    dateTimeFormat: str = Field("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", description="Java-style pattern for timestamps.")
    timeZoneId: str | None = Field(
        None, description="Time zone timestamps are shown in (`Europe/Paris`); as stored by default."
    )

    def text(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            if self.timeZoneId:
                from zoneinfo import ZoneInfo

                value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(ZoneInfo(self.timeZoneId))
            return format_date(value, self.dateTimeFormat)
        if isinstance(value, dt.date):
            return format_date(value, self.dateFormat)
        if isinstance(value, dt.time):
            return format_date(value, self.timeFormat)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(_ion.jsonable(value))
        return str(value)


class IonToCsv(_Dates):
    """Convert Ion rows into a CSV file; the header lists the first row's keys. Streamed row by row."""

    type: ClassVar[str] = "serdes.csv.IonToCsv"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.csv.IonToCsv", f"{KESTRA}.csv.CsvWriter")
    extension: ClassVar[str] = ".csv"
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Write rows as CSV with a custom date format",
                _ion_source(),
                "serdes.csv.IonToCsv",
                "    fieldSeparator: ';'\n    dateTimeFormat: dd/MM/yyyy HH:mm\n",
            ),
            "rows.ion",
        )
    ]

    header: bool = Field(True, description="Write a header line with the column names.")
    fieldSeparator: str = Field(",", min_length=1, max_length=1, description="Column separator.")
    textDelimiter: str = Field('"', min_length=1, max_length=1, description="Quote character around values.")
    lineDelimiter: str = Field("\n", description="End of each line.")
    alwaysDelimitText: bool = Field(False, description="Quote every value, not only those that need it.")
    charset: str = Field("UTF-8", description=CHARSET)

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        count = 0
        with open(source, "rb") as ion, open(target, "w", encoding=self.charset, newline="") as out:
            writer = csv.writer(
                out,
                delimiter=self.fieldSeparator,
                quotechar=self.textDelimiter,
                lineterminator=self.lineDelimiter,
                quoting=csv.QUOTE_ALL if self.alwaysDelimitText else csv.QUOTE_MINIMAL,
            )
            names: list[str] | None = None
            for row in watched(ctx, _ion.read(ion)):
                if isinstance(row, dict):
                    if names is None:
                        names = list(row)
                        if self.header:
                            writer.writerow(names)
                    writer.writerow([self.text(row.get(name)) for name in names])
                else:
                    writer.writerow([self.text(v) for v in (row if isinstance(row, list) else [row])])
                count += 1
        return count


# ---------------------------------------------------------------- JSON


class JsonToIon(Convert):
    """Convert JSON into Ion rows: JSON lines (`newLine: true`, streamed) or one JSON document (an array
    gives a row per item; read whole)."""

    type: ClassVar[str] = "serdes.json.JsonToIon"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.json.JsonToIon", f"{KESTRA}.json.JsonReader")
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Read JSON lines",
                """\
  - id: make
    type: scripts.Shell
    commands:
      - |
        printf '{"id": 1}\\n{"id": 2}\\n' > rows.jsonl
    outputFiles: [rows.jsonl]
""",
                "serdes.json.JsonToIon",
                "    newLine: true\n",
            ),
            "rows.jsonl",
        )
    ]

    newLine: bool = Field(
        True, description="One JSON value per line (JSON lines); false reads the file as one document."
    )
    charset: str = Field("UTF-8", description=CHARSET)

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        with open(source, encoding=self.charset) as text, open(target, "wb") as out:
            return _ion.write(watched(ctx, self.rows(text)), out)

    def rows(self, text: Any) -> Iterator[Any]:
        if not self.newLine:
            document = json.load(text, parse_float=Decimal)
            yield from document if isinstance(document, list) else [document]
            return
        for number, line in enumerate(text, 1):
            if line.strip():
                try:
                    yield json.loads(line, parse_float=Decimal)
                except ValueError as exc:
                    raise ValueError(f"line {number}: {exc}") from None


class IonToJson(Convert):
    """Convert Ion rows into JSON lines (`newLine: true`) or one JSON array; streamed either way."""

    type: ClassVar[str] = "serdes.json.IonToJson"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.json.IonToJson", f"{KESTRA}.json.JsonWriter")
    examples: ClassVar[list[Example]] = [
        _fix(
            _example("Write rows as a JSON array", _ion_source(), "serdes.json.IonToJson", "    newLine: false\n"),
            "rows.ion",
        )
    ]

    newLine: bool = Field(
        True, description="One JSON value per line (`.jsonl`); false writes one JSON array (`.json`)."
    )
    charset: str = Field("UTF-8", description=CHARSET)

    def target_extension(self) -> str:
        return ".jsonl" if self.newLine else ".json"

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        count = 0
        with open(source, "rb") as ion, open(target, "w", encoding=self.charset) as out:
            if not self.newLine:
                out.write("[")
            for row in watched(ctx, _ion.read(ion)):
                if not self.newLine and count:
                    out.write(",")
                out.write(json.dumps(_ion.jsonable(row), ensure_ascii=False))
                if self.newLine:
                    out.write("\n")
                count += 1
            if not self.newLine:
                out.write("]")
        return count


# ---------------------------------------------------------------- Avro

_AVRO_SCHEMA = """{"type": "record", "name": "Person", "fields": [
  {"name": "id", "type": "long"}, {"name": "name", "type": "string"},
  {"name": "joined", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]}]}"""


def _schema(value: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise TaskError(f"`schema` is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise TaskError("`schema` must be an Avro record schema (a JSON object)")
    return parsed


class AvroToIon(Convert):
    """Convert an Avro container file into Ion rows (its schema travels in the file). Streamed block by block."""

    type: ClassVar[str] = "serdes.avro.AvroToIon"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.avro.AvroToIon", f"{KESTRA}.avro.AvroReader")
    examples: ClassVar[list[Example]] = [
        Example(
            "CSV to Avro and back",
            f"""\
id: avro_example
namespace: company.team
tasks:
{_CSV}  - id: rows
    type: serdes.csv.CsvToIon
    from: "{{{{ outputs.make.outputFiles['people.csv'] }}}}"
  - id: avro
    type: serdes.avro.IonToAvro
    from: "{{{{ outputs.rows.uri }}}}"
    schema: '{{"type": "record", "name": "P", "fields": [{{"name": "id", "type": "string"}}, {{"name": "name", "type": "string"}}]}}'
  - id: back
    type: serdes.avro.AvroToIon
    from: "{{{{ outputs.avro.uri }}}}"
""",
        )
    ]

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        import fastavro

        with open(source, "rb") as avro, open(target, "wb") as out:
            return _ion.write(watched(ctx, iter(fastavro.reader(avro))), out)


class IonToAvro(Convert):
    """Convert Ion rows into an Avro container file with the given schema. Streamed block by block."""

    type: ClassVar[str] = "serdes.avro.IonToAvro"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.avro.IonToAvro", f"{KESTRA}.avro.AvroWriter")
    extension: ClassVar[str] = ".avro"
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Write rows as Avro",
                _ion_source(),
                "serdes.avro.IonToAvro",
                "    schema: |\n" + "\n".join("      " + line for line in _AVRO_SCHEMA.splitlines()) + "\n",
            ),
            "rows.ion",
        )
    ]

    schema_: str | dict[str, Any] = Field(
        alias="schema", description="The Avro schema of a row: a record, as JSON or a map."
    )
    compressionCodec: Literal["null", "deflate", "snappy", "zstandard", "bzip2", "xz"] = Field(
        "null", description="Block compression."
    )

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        import fastavro

        schema = fastavro.parse_schema(_schema(self.schema_))
        counter = [0]

        def rows(ion: Any) -> Iterator[Any]:
            for row in watched(ctx, _ion.read(ion)):
                counter[0] += 1
                yield row

        with open(source, "rb") as ion, open(target, "wb") as out:
            try:
                fastavro.writer(out, schema, rows(ion), codec=self.compressionCodec)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"row {counter[0]} does not match the schema: {exc}") from None
        return counter[0]


# ---------------------------------------------------------------- Parquet


class ParquetToIon(Convert):
    """Convert a Parquet file into Ion rows, streamed by record batch."""

    type: ClassVar[str] = "serdes.parquet.ParquetToIon"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.parquet.ParquetToIon", f"{KESTRA}.parquet.ParquetReader")
    examples: ClassVar[list[Example]] = [
        Example(
            "Rows to Parquet and back",
            f"""\
id: parquet_example
namespace: company.team
tasks:
{_ion_source()}  - id: parquet
    type: serdes.parquet.IonToParquet
    from: "{{{{ outputs.make.outputFiles['rows.ion'] }}}}"
    compressionCodec: SNAPPY
  - id: back
    type: serdes.parquet.ParquetToIon
    from: "{{{{ outputs.parquet.uri }}}}"
""",
        )
    ]

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        import pyarrow.parquet as pq

        def rows() -> Iterator[Any]:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=10_000):
                yield from batch.to_pylist()

        with open(target, "wb") as out:
            return _ion.write(watched(ctx, rows()), out)


_ARROW = {
    "string": "string",
    "long": "int64",
    "int": "int32",
    "double": "float64",
    "float": "float32",
    "boolean": "bool_",
    "bytes": "binary",
}


def _arrow_schema(avro: dict[str, Any]) -> Any:
    """An Avro record schema (Kestra's way of typing Parquet) as an Arrow schema."""
    import pyarrow as pa

    fields = []
    for f in avro.get("fields", []):
        kind, nullable = f["type"], False
        if isinstance(kind, list):
            nullable = "null" in kind
            kind = next(k for k in kind if k != "null")
        if isinstance(kind, dict):
            logical = kind.get("logicalType")
            arrow = {
                "timestamp-millis": pa.timestamp("ms", tz="UTC"),
                "timestamp-micros": pa.timestamp("us", tz="UTC"),
                "date": pa.date32(),
            }.get(logical)
            if arrow is None:
                raise ValueError(f"field `{f['name']}`: type {json.dumps(kind)} is not supported for Parquet")
        elif kind in _ARROW:
            arrow = getattr(pa, _ARROW[kind])()
        else:
            raise ValueError(f"field `{f['name']}`: type {kind!r} is not supported for Parquet")
        fields.append(pa.field(f["name"], arrow, nullable=nullable))
    return pa.schema(fields)


class IonToParquet(Convert):
    """Convert Ion rows into a Parquet file, written in row groups of `rowGroupSize` rows.

    Column types come from `schema` (an Avro record, as in Kestra) or are inferred from the first group.
    """

    type: ClassVar[str] = "serdes.parquet.IonToParquet"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.parquet.IonToParquet", f"{KESTRA}.parquet.ParquetWriter")
    extension: ClassVar[str] = ".parquet"
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Write rows as Parquet with a schema",
                _ion_source(),
                "serdes.parquet.IonToParquet",
                "    schema: |\n" + "\n".join("      " + line for line in _AVRO_SCHEMA.splitlines()) + "\n",
            ),
            "rows.ion",
        )
    ]

    schema_: str | dict[str, Any] | None = Field(
        None, alias="schema", description="Avro record schema of a row; inferred when omitted."
    )
    compressionCodec: Literal["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD", "BROTLI", "LZ4"] = Field(
        "SNAPPY", description="Column compression."
    )
    rowGroupSize: int = Field(10_000, ge=1, description="Rows per row group (and held in memory at once).")

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema(_schema(self.schema_)) if self.schema_ is not None else None
        codec = "NONE" if self.compressionCodec == "UNCOMPRESSED" else self.compressionCodec
        count, writer, group = 0, None, []
        with open(source, "rb") as ion:
            try:
                for row in watched(ctx, _ion.read(ion)):
                    if isinstance(row, dict):  # Parquet columns are typed per file; a decimal's scale varies
                        row = {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}
                    group.append(row)
                    count += 1
                    if len(group) == self.rowGroupSize:
                        writer = self._flush(pa, pq, writer, group, schema, target, codec)
                        schema, group = writer.schema, []
                if group or writer is None:
                    writer = self._flush(pa, pq, writer, group, schema, target, codec)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ValueError(f"rows {count - len(group) + 1}–{count}: {exc}") from None
            finally:
                if writer is not None:
                    writer.close()
        return count

    @staticmethod
    def _flush(pa: Any, pq: Any, writer: Any, rows: list[Any], schema: Any, target: Path, codec: str) -> Any:
        table = pa.Table.from_pylist(rows, schema=schema) if rows or schema is not None else pa.table({})
        if schema is None:  # inferred from the first group: keep later groups castable
            table = table.cast(pa.schema([_widen(pa, f) for f in table.schema]))
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema, compression=codec)
        writer.write_table(table)
        return writer


def _widen(pa: Any, field: Any) -> Any:
    """A column all null in the first group becomes string (it could hold anything later)."""
    return field.with_type(pa.string()) if pa.types.is_null(field.type) else field


# ---------------------------------------------------------------- Excel


class ExcelToIon(Convert):
    """Convert the sheets of an Excel workbook (`.xlsx`) into Ion files, one per sheet: `uris` maps sheet
    titles to files, `uri` is the first. Read in openpyxl's streaming mode."""

    type: ClassVar[str] = "serdes.excel.ExcelToIon"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.excel.ExcelToIon", f"{KESTRA}.excel.ExcelReader")
    examples: ClassVar[list[Example]] = [
        Example(
            "Rows to Excel and back",
            f"""\
id: excel_example
namespace: company.team
tasks:
{_ion_source()}  - id: excel
    type: serdes.excel.IonToExcel
    from: "{{{{ outputs.make.outputFiles['rows.ion'] }}}}"
    sheetsTitle: People
  - id: back
    type: serdes.excel.ExcelToIon
    from: "{{{{ outputs.excel.uri }}}}"
    sheetsTitle: [People]
""",
        )
    ]

    sheetsTitle: list[str] | None = Field(None, description="Sheets to read; all by default.")
    header: bool = Field(True, description="The first row names the columns.")
    skipRows: int = Field(0, ge=0, description="Rows skipped before the header (or the first row).")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        import openpyxl

        source = ctx.working_dir / "source.xlsx"
        with ctx.open_file(self.from_) as stream, open(source, "wb") as out:
            import shutil

            shutil.copyfileobj(stream, out, 1 << 20)
        try:
            book = openpyxl.load_workbook(source, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
            raise TaskError(
                f"{self.type}: {self.from_} is not an Excel workbook ({type(exc).__name__}: {exc})"
            ) from None
        try:
            titles = self.sheetsTitle or book.sheetnames
            missing = [t for t in titles if t not in book.sheetnames]
            if missing:
                raise TaskError(
                    f"{self.type}: no sheet {', '.join(missing)} in {self.from_} (it has {', '.join(book.sheetnames)})"
                )
            uris, total = {}, 0
            for title in titles:
                target = ctx.working_dir / f"{title}.ion"
                with open(target, "wb") as out:
                    total += _ion.write(watched(ctx, self.rows(book[title])), out)
                uris[title] = ctx.put_file(target, target.name)
        finally:
            book.close()
        ctx.metric("records", total)
        return {"uris": uris, "uri": next(iter(uris.values()), None), "size": total}

    def rows(self, sheet: Any) -> Iterator[Any]:
        values = sheet.iter_rows(values_only=True)
        for _ in range(self.skipRows):
            next(values, None)
        names = (
            [str(v) if v is not None else f"col{i}" for i, v in enumerate(next(values, ()))] if self.header else None
        )
        for row in values:
            if all(v is None for v in row):
                continue
            yield list(row) if names is None else dict(zip(names, row, strict=False))


class IonToExcel(Convert):
    """Convert Ion rows into an Excel workbook (`.xlsx`) of one sheet, written in openpyxl's streaming mode."""

    type: ClassVar[str] = "serdes.excel.IonToExcel"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.excel.IonToExcel", f"{KESTRA}.excel.ExcelWriter")
    extension: ClassVar[str] = ".xlsx"
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Write rows as an Excel sheet", _ion_source(), "serdes.excel.IonToExcel", "    sheetsTitle: People\n"
            ),
            "rows.ion",
        )
    ]

    sheetsTitle: str = Field("Sheet", description="Title of the sheet.")
    header: bool = Field(True, description="Write the column names as the first row.")

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet(self.sheetsTitle)
        count, names = 0, None
        with open(source, "rb") as ion:
            for row in watched(ctx, _ion.read(ion)):
                if isinstance(row, dict):
                    if names is None:
                        names = list(row)
                        if self.header:
                            sheet.append(names)
                    sheet.append([_cell(row.get(n)) for n in names])
                else:
                    sheet.append([_cell(v) for v in (row if isinstance(row, list) else [row])])
                count += 1
        book.save(target)
        return count


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)  # Excel has no time zones
    if isinstance(value, (dict, list)):
        return json.dumps(_ion.jsonable(value))
    if isinstance(value, bytes):
        return _ion.jsonable(value)
    return value


# ---------------------------------------------------------------- XML


class XmlToIon(Convert):
    """Convert XML into Ion: with `query` (a path like `/catalog/book`), one row per matching element,
    streamed; without, the whole document as one value. Attributes become keys, text becomes the value
    (or `content` beside attributes or children)."""

    type: ClassVar[str] = "serdes.xml.XmlToIon"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.xml.XmlToIon", f"{KESTRA}.xml.XmlReader")
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Read the books of a catalog",
                """\
  - id: make
    type: scripts.Shell
    commands:
      - |
        printf '<catalog><book id="1"><title>Dune</title></book></catalog>' > books.xml
    outputFiles: [books.xml]
""",
                "serdes.xml.XmlToIon",
                "    query: /catalog/book\n",
            ),
            "books.xml",
        )
    ]

    query: str | None = Field(
        None, description="Path of the elements that become rows (`/root/item`); the whole document when omitted."
    )
    charset: str = Field("UTF-8", description="Encoding when the XML declaration names none.")

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        with open(target, "wb") as out:
            return _ion.write(watched(ctx, self.rows(source)), out)

    def rows(self, source: Path) -> Iterator[Any]:
        import xml.etree.ElementTree as ET

        wanted = [p for p in (self.query or "").strip("/").split("/") if p]
        path: list[str] = []
        parser = ET.XMLPullParser(events=("start", "end"))
        with open(source, "rb") as stream:
            while chunk := stream.read(1 << 16):
                parser.feed(chunk)
                for event, element in parser.read_events():
                    if event == "start":
                        path.append(element.tag)
                        continue
                    if not wanted and len(path) == 1:
                        yield {element.tag: _element(element)}
                    elif path == wanted:
                        yield _element(element)
                        element.clear()
                    path.pop()
        parser.close()


def _element(element: Any) -> Any:
    value: dict[str, Any] = dict(element.attrib)
    for child in element:
        item = _element(child)
        if child.tag in value:
            existing = value[child.tag]
            value[child.tag] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            value[child.tag] = item
    text = (element.text or "").strip()
    if not value:
        return text or None
    if text:
        value["content"] = text
    return value


class IonToXml(Convert):
    """Convert Ion rows into an XML document: `<rootName>` holding one `<item>` per row. Streamed."""

    type: ClassVar[str] = "serdes.xml.IonToXml"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.xml.IonToXml", f"{KESTRA}.xml.XmlWriter")
    extension: ClassVar[str] = ".xml"
    examples: ClassVar[list[Example]] = [
        _fix(
            _example(
                "Write rows as XML",
                _ion_source(),
                "serdes.xml.IonToXml",
                "    rootName: people\n    itemName: person\n",
            ),
            "rows.ion",
        )
    ]

    rootName: str = Field("items", description="Name of the root element.")
    itemName: str = Field("item", description="Name of each row's element.")
    charset: str = Field("UTF-8", description=CHARSET)

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        from xml.sax.saxutils import XMLGenerator

        count = 0
        with open(source, "rb") as ion, open(target, "w", encoding=self.charset) as out:
            xml = XMLGenerator(out, encoding=self.charset, short_empty_elements=True)
            xml.startDocument()
            xml.startElement(self.rootName, {})
            for row in watched(ctx, _ion.read(ion)):
                _emit(xml, self.itemName, row)
                count += 1
            xml.endElement(self.rootName)
            xml.endDocument()
        return count


def _emit(xml: Any, name: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _emit(xml, name, item)
        return
    xml.startElement(name, {})
    if isinstance(value, dict):
        for key, item in value.items():
            _emit(xml, key, item)
    elif value is not None:
        xml.characters(str(_ion.jsonable(value)))
    xml.endElement(name)
