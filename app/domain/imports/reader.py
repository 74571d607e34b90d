"""Reading spreadsheets people actually export: CSV in any common delimiter and encoding (BOM, UTF-16,
Windows-1251...), quoted newlines, and XLSX/XLS. Rows stream; memory does not grow with the file."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

SAMPLE = 256 * 1024
DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class Sheet:
    format: str  # csv, xlsx, xls
    encoding: str | None = None
    delimiter: str | None = None


def sniff(path: Path, filename: str) -> Sheet:
    head = path.open("rb").read(SAMPLE)
    lower = filename.lower()
    if head.startswith(b"PK\x03\x04") or lower.endswith(".xlsx"):
        return Sheet("xlsx")
    if head.startswith(b"\xd0\xcf\x11\xe0") or lower.endswith(".xls"):
        return Sheet("xls")
    encoding = _encoding(head)
    text = head.decode(encoding, errors="replace")
    return Sheet("csv", encoding, _delimiter(text))


def _encoding(head: bytes) -> str:
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
                      (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32")):
        if head.startswith(bom):
            return name
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut by the sample's end
            return "utf-8"
    best = from_bytes(head).best()
    return best.encoding if best is not None else "latin-1"


def _delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    sample = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in DELIMITERS}
        return max(counts, key=counts.get) if any(counts.values()) else ","


def rows(path: Path, sheet: Sheet) -> Iterator[list[str]]:
    """Every row as text cells, header first."""
    if sheet.format == "xlsx":
        from openpyxl import load_workbook

        with path.open("rb") as f:  # a file object: openpyxl refuses paths without an .xlsx suffix
            book = load_workbook(f, read_only=True, data_only=True)
            try:
                for row in book.worksheets[0].iter_rows(values_only=True):
                    yield [_text(v) for v in row]
            finally:
                book.close()
        return
    if sheet.format == "xls":
        import xlrd

        book = xlrd.open_workbook(str(path), on_demand=True)
        first = book.sheet_by_index(0)
        for i in range(first.nrows):
            yield [_text(v) for v in first.row_values(i)]
        return
    with path.open("r", encoding=sheet.encoding or "utf-8", errors="replace", newline="") as f:
        yield from csv.reader(f, delimiter=sheet.delimiter or ",")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10] if getattr(value, "hour", 0) == 0 else value.isoformat()
    return str(value)


def count_rows(path: Path, sheet: Sheet) -> int:
    return max(0, sum(1 for _ in rows(path, sheet)) - 1)


SYNONYMS = {
    "email": {"email", "e_mail", "mail", "email_address", "e_mail_address", "emailaddress"},
    "phone": {"phone", "telephone", "tel", "mobile", "phone_number", "cell", "mobile_phone", "telefon"},
    "first_name": {"first_name", "firstname", "given_name", "first", "vorname", "forename"},
    "last_name": {"last_name", "lastname", "surname", "family_name", "last", "nachname"},
    "title": {"title", "job_title", "position", "role"},
    "tags": {"tags", "labels"},
    "source": {"source", "lead_source", "channel"},
    "birthday": {"birthday", "date_of_birth", "dob", "birth_date"},
    "external_id": {"external_id", "id", "record_id", "customer_id", "crm_id"},
    "company_name": {"company", "company_name", "organisation", "organization", "firma", "account"},
    "name": {"name", "company", "company_name", "organisation", "organization", "firma", "account"},
    "domain": {"domain", "website", "web", "url"},
    "industry": {"industry", "sector"},
    "subject": {"subject", "summary"},
    "type": {"type", "activity_type"},
    "due_at": {"due", "due_at", "due_date", "deadline"},
}


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def suggest_mapping(headers: list[str], targets: set[str], custom_fields: dict[str, str]) -> dict[str, str]:
    """Header → field, by name, known synonyms, or a custom field's key or label."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    by_label = {_key(label): f"cf.{key}" for key, label in custom_fields.items()} | {
        key: f"cf.{key}" for key in custom_fields}
    for header in headers:
        k = _key(header)
        target = None
        if k in targets or k == "external_id":
            target = k
        else:
            target = next((t for t, words in SYNONYMS.items() if k in words and (t in targets or t == "external_id")),
                          None) or by_label.get(k)
        if target and target not in taken:
            mapping[header] = target
            taken.add(target)
    return mapping


def decode_sample(path: Path, sheet: Sheet, n: int = 5) -> tuple[list[str], list[list[str]]]:
    it = rows(path, sheet)
    header = next(it, [])
    sample = []
    for row in it:
        sample.append(row)
        if len(sample) >= n:
            break
    return header, sample


