"""Entry point of tiercel-serdes: the file-format conversion tasks."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_serdes import formats

    for task in (
        formats.CsvToIon,
        formats.IonToCsv,
        formats.JsonToIon,
        formats.IonToJson,
        formats.AvroToIon,
        formats.IonToAvro,
        formats.ParquetToIon,
        formats.IonToParquet,
        formats.ExcelToIon,
        formats.IonToExcel,
        formats.XmlToIon,
        formats.IonToXml,
    ):
        register(task)
