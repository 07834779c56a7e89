"""Every conversion in real flows, on files in internal storage, read back with the format's own library."""

from __future__ import annotations

import io
import json

from tiercel.testing import read_file, run_flow, task_run, write_file


def convert(tmp_path, data: bytes, *steps: str, name: str = "in.csv") -> dict:
    """Store *data*, then run *steps* (tasks chained on `{{ outputs.<previous>.uri }}`); the execution."""
    home = tmp_path / "home"
    uri = f"tiercel://company/team/_files/{name}"
    write_file(uri, data, home)
    tasks, previous = [], f'"{uri}"'
    for n, step in enumerate(steps):
        kind, _, props = step.partition("\n")
        tasks.append(
            f"  - id: s{n}\n    type: {kind}\n    from: {previous}\n"
            + "".join(f"    {p}\n" for p in props.splitlines() if p)
        )
        previous = f'"{{{{ outputs.s{n}.uri }}}}"'
    ex = run_flow("id: serdes\nnamespace: company.team\ntasks:\n" + "".join(tasks), home=home)
    ex["read"] = lambda i: read_file(task_run(ex, f"s{i}")["outputs"]["uri"], home)
    return ex


def test_csv_to_ion_to_json_lines_and_array(tmp_path):
    ex = convert(
        tmp_path,
        'id;name\n1;Zoë\n\n2;"a;b"\n'.encode("latin-1"),
        "io.kestra.plugin.serdes.csv.CsvToIon\nfieldSeparator: ';'\ncharset: ISO-8859-1\nskipEmptyRows: true",
        "serdes.json.IonToJson",
        "serdes.json.JsonToIon",
        "serdes.json.IonToJson\nnewLine: false",
    )
    assert ex["state"] == "SUCCESS", ex
    assert ex["read"](0) == '{id:"1",name:"Zoë"}\n{id:"2",name:"a;b"}\n'.encode()
    assert ex["read"](1).decode().splitlines() == ['{"id": "1", "name": "Zoë"}', '{"id": "2", "name": "a;b"}']
    assert json.loads(ex["read"](3)) == [{"id": "1", "name": "Zoë"}, {"id": "2", "name": "a;b"}]
    assert task_run(ex, "s3")["outputs"]["uri"].endswith(".json") and task_run(ex, "s0")["outputs"]["size"] == 2


def test_csv_without_header_and_a_ragged_line_refused(tmp_path):
    ex = convert(tmp_path, b"junk\n1,2\n3,4\n", "serdes.csv.CsvToIon\nheader: false\nskipRows: 1")
    assert ex["read"](0) == b'["1","2"]\n["3","4"]\n'
    bad = convert(tmp_path, b"a,b\n1,2\n3\n", "serdes.csv.CsvToIon\nerrorOnDifferentFieldCount: true")
    assert (
        "cannot convert tiercel://company/team/_files/in.csv: line 3 has 1 fields, the header 2"
        in task_run(bad, "s0")["error"]
    )


ION = (
    b'{id:1,name:"ada",joined:2024-01-02T03:04:05.123Z,score:1.5,tags:["x","y"],ok:true,note:null}\n'
    b'{id:2,name:"grace",joined:2024-06-30T23:00:00Z,score:2.25,tags:[],ok:false,note:"hi"}\n'
)


def test_ion_to_csv_with_dates_time_zone_and_quoting(tmp_path):
    ex = convert(
        tmp_path,
        ION,
        "serdes.csv.IonToCsv\ndateTimeFormat: dd/MM/yyyy HH:mm:ss.SSS\ntimeZoneId: Europe/Paris\n"
        "alwaysDelimitText: true",
        name="rows.ion",
    )
    assert ex["state"] == "SUCCESS", ex
    assert ex["read"](0).decode().splitlines() == [
        '"id","name","joined","score","tags","ok","note"',
        '"1","ada","02/01/2024 04:04:05.123","1.5","[""x"", ""y""]","true",""',
        '"2","grace","01/07/2024 01:00:00.000","2.25","[]","false","hi"',
    ]


def test_avro_round_trip_with_schema(tmp_path):
    import fastavro

    schema = {
        "type": "record",
        "name": "P",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "joined", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "note", "type": ["null", "string"]},
        ],
    }
    ex = convert(
        tmp_path,
        ION,
        f"io.kestra.plugin.serdes.avro.IonToAvro\nschema: '{json.dumps(schema)}'\ncompressionCodec: deflate",
        "serdes.avro.AvroToIon",
        name="rows.ion",
    )
    assert ex["state"] == "SUCCESS", ex
    records = list(fastavro.reader(io.BytesIO(ex["read"](0))))
    assert [(r["id"], r["name"], r["joined"].isoformat(), r["note"]) for r in records] == [
        (1, "ada", "2024-01-02T03:04:05.123000+00:00", None),
        (2, "grace", "2024-06-30T23:00:00+00:00", "hi"),
    ]
    assert ex["read"](1).startswith(b'{id:1,name:"ada",joined:2024-01-02T03:04:05.123000Z,note:null}')
    bad = convert(
        tmp_path,
        b'{id:"not a number"}\n',
        "serdes.avro.IonToAvro\nschema: {type: record, name: P, fields: [{name: id, type: long}]}",
        name="rows.ion",
    )
    assert "row 1 does not match the schema" in task_run(bad, "s0")["error"]


def test_parquet_round_trip_with_inferred_and_given_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ex = convert(
        tmp_path, ION, "serdes.parquet.IonToParquet\nrowGroupSize: 1", "serdes.parquet.ParquetToIon", name="rows.ion"
    )
    assert ex["state"] == "SUCCESS", ex
    parquet = pq.ParquetFile(io.BytesIO(ex["read"](0)))
    assert parquet.metadata.num_row_groups == 2 and parquet.metadata.num_rows == 2
    assert parquet.schema_arrow.field("tags").type == pa.list_(pa.string())
    assert parquet.read().column("name").to_pylist() == ["ada", "grace"]
    assert ex["read"](1).splitlines()[1].startswith(b'{id:2,name:"grace",joined:2024-06-30T23:00:00')
    typed = convert(
        tmp_path,
        ION,
        "serdes.parquet.IonToParquet\ncompressionCodec: ZSTD\nschema: {type: record, name: P, "
        'fields: [{name: id, type: int}, {name: score, type: ["null", double]}]}',
        name="rows.ion",
    )
    table = pq.read_table(io.BytesIO(typed["read"](0)))
    assert table.schema.field("id").type == pa.int32() and table.column("score").to_pylist() == [1.5, 2.25]


def test_excel_round_trip(tmp_path):
    import openpyxl

    ex = convert(
        tmp_path, ION, "serdes.excel.IonToExcel\nsheetsTitle: People", "serdes.excel.ExcelToIon", name="rows.ion"
    )
    assert ex["state"] == "SUCCESS", ex
    sheet = openpyxl.load_workbook(io.BytesIO(ex["read"](0)))["People"]
    assert [c.value for c in sheet[1]] == ["id", "name", "joined", "score", "tags", "ok", "note"]
    assert [c.value for c in sheet[2]][:2] == [1, "ada"] and sheet[
        "C2"
    ].value.isoformat() == "2024-01-02T03:04:05.123000"
    back = task_run(ex, "s1")["outputs"]
    assert list(back["uris"]) == ["People"] and back["size"] == 2
    assert ex["read"](1).splitlines()[0].startswith(b'{id:1,name:"ada",joined:2024-01-02T03:04:05.123')
    missing = convert(
        tmp_path, ION, "serdes.excel.IonToExcel", "serdes.excel.ExcelToIon\nsheetsTitle: [Nope]", name="rows.ion"
    )
    assert (
        "no sheet Nope in" in task_run(missing, "s1")["error"] and "(it has Sheet)" in task_run(missing, "s1")["error"]
    )


def test_xml_rows_by_query_and_back(tmp_path):
    xml = (
        b'<?xml version="1.0"?><catalog><shop>main</shop><book id="1"><title>Dune</title><tag>sf</tag><tag>classic</tag>'
        b'</book><book id="2" lang="fr"><title>Vendredi</title></book></catalog>'
    )
    ex = convert(
        tmp_path,
        xml,
        "io.kestra.plugin.serdes.xml.XmlToIon\nquery: /catalog/book",
        "serdes.xml.IonToXml\nrootName: books\nitemName: book",
        name="books.xml",
    )
    assert ex["state"] == "SUCCESS", ex
    assert ex["read"](0) == (b'{id:"1",title:"Dune",tag:["sf","classic"]}\n{id:"2",lang:"fr",title:"Vendredi"}\n')
    assert ex["read"](1) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<books><book><id>1</id><title>Dune</title>'
        b"<tag>sf</tag><tag>classic</tag></book><book><id>2</id><lang>fr</lang>"
        b"<title>Vendredi</title></book></books>"
    )
    whole = convert(tmp_path, xml, "serdes.xml.XmlToIon", name="books.xml")
    assert whole["read"](0).startswith(b'{catalog:{shop:"main",book:[{id:"1"')


def test_csv_to_ion_memory_does_not_grow_with_the_file(tmp_path):
    """Converting 20 times more rows (3 MB of CSV) takes no more memory: rows stream through."""
    import tracemalloc

    def peak(rows: int) -> int:
        home = tmp_path / f"home{rows}"
        line = b"%d,a fairly long name for row %d,somewhere in a city called %d,and a comment\n"
        write_file(
            "tiercel://company/team/_files/big.csv",
            b"id,name,city,note\n" + b"".join(line % (i, i, i % 97) for i in range(rows)),
            home,
        )
        tracemalloc.start()
        try:
            ex = run_flow(
                """\
id: big
namespace: company.team
tasks:
  - id: ion
    type: serdes.csv.CsvToIon
    from: tiercel://company/team/_files/big.csv
""",
                home=home,
            )
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert task_run(ex, "ion")["outputs"]["size"] == rows

    small, big = peak(1_500), peak(30_000)
    assert big - small < 1_000_000, f"{small / 1e6:.1f} MB for 1,500 rows, {big / 1e6:.1f} MB for 30,000"


def test_readme_flow_runs(tmp_path):
    import re
    from pathlib import Path

    import pyarrow.parquet as pq

    [flow] = re.findall(r"```yaml\n(.*?)```", (Path(__file__).parent.parent / "README.md").read_text(), re.S)
    home = tmp_path / "home"
    ex = run_flow(flow, home=home)
    assert ex["state"] == "SUCCESS", ex
    table = pq.read_table(io.BytesIO(read_file(task_run(ex, "parquet")["outputs"]["uri"], home)))
    assert table.to_pylist() == [
        {"id": "1", "name": "ada", "joined": "2024-01-02"},
        {"id": "2", "name": "grace", "joined": "2024-03-04"},
    ]
    assert json.loads(read_file(task_run(ex, "json")["outputs"]["uri"], home))[1]["name"] == "grace"


def test_the_user_guide_kestra_flow_runs(tmp_path):
    import re
    from pathlib import Path

    import fastavro
    import openpyxl

    guide = Path(__file__).resolve().parents[3] / "docs/user/file-formats.md"
    [flow] = re.findall(r"```yaml\n(.*?)```", guide.read_text(), re.S)
    home = tmp_path / "home"
    ex = run_flow(flow, home=home)
    assert ex["state"] == "SUCCESS", ex
    avro = list(fastavro.reader(io.BytesIO(read_file(task_run(ex, "avro")["outputs"]["uri"], home))))
    assert avro == [{"id": 1, "total": 19.5, "at": "2024-05-01"}, {"id": 2, "total": 7.25, "at": "2024-05-02"}]
    sheet = openpyxl.load_workbook(io.BytesIO(read_file(task_run(ex, "excel")["outputs"]["uri"], home)))["Orders"]
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [
        ["id", "total", "at"],
        [1, 19.5, "2024-05-01"],
        [2, 7.25, "2024-05-02"],
    ]
