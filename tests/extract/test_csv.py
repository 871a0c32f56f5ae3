"""CSV extraction: encodings, delimiters, quoting, ragged rows, clear errors, batching."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.errors import InputFileError
from etl.extract.csv import CsvSource, open_csv

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def read_all(source: CsvSource, batch_rows: int = 100_000) -> tuple[pl.DataFrame, pl.DataFrame]:
    batches = list(source.batches(batch_rows))
    frame = pl.concat([b.frame for b in batches])
    rejects = pl.concat([b.rejects for b in batches])
    return frame, rejects


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_seed_format_sample() -> None:
    src = open_csv(SAMPLES / "leads.csv")
    assert (src.encoding, src.delimiter) == ("utf-8", ",")
    assert src.columns[:8] == [
        "firstName", "lastName", "email", "companyName", "companyDomain", "title", "linkedinUrl", "notes",
    ]  # fmt: skip
    frame, rejects = read_all(src)
    assert frame.height == 40 and rejects.is_empty()
    assert frame["_row"].to_list() == list(range(1, 41))
    assert frame.dtypes == [pl.Int64] + [pl.String] * len(src.columns)
    lucas = frame.filter(pl.col("_row") == 10)
    assert lucas["notes"][0] == "Notes from call:\n- 40 seats\n- wants SSO"
    priya = frame.filter(pl.col("_row") == 3)
    assert priya["notes"][0] == 'Prefers email over calls, "no cold calls" please'


def test_hubspot_export_semicolon_with_bom() -> None:
    src = open_csv(SAMPLES / "hubspot_export.csv")
    assert src.delimiter == ";" and src.columns[0] == "Record ID"  # BOM not in the name
    frame, _ = read_all(src)
    assert frame.height == 10
    assert frame.filter(pl.col("_row") == 3)["Job Title"][0] == "Head of Sales; Nordics"


def test_excel_unicode_text_utf16_tab() -> None:
    src = open_csv(SAMPLES / "excel_unicode.txt")
    assert (src.encoding, src.delimiter) == ("utf-16-le", "\t")
    frame, rejects = read_all(src)
    assert rejects.is_empty() and frame.height == 6
    assert frame.filter(pl.col("_row") == 3)["Company"][0] == "深圳光学"


def test_cp1252_fallback() -> None:
    src = open_csv(SAMPLES / "latin1.csv")
    assert src.encoding == "cp1252"
    frame, _ = read_all(src)
    assert frame["firstName"].to_list() == ["François", "Björn", "Mónica", "Jürgen"]
    assert frame["notes"][1] == "“Key account” for Q3"


def test_ragged_rows_are_rejected_with_row_and_reason() -> None:
    frame, rejects = read_all(open_csv(SAMPLES / "ragged.csv"))
    assert rejects["_rule"].to_list() == ["ragged_row", "ragged_row"]
    assert rejects["_row"].to_list() == [2, 3]
    assert "8 fields" in rejects["_reason"][0] and "EXTRA" in rejects["_reason"][0]
    assert "3 fields" in rejects["_reason"][1]
    # record 6 is a blank line: it keeps its number but yields nothing
    assert frame["_row"].to_list() == [1, 4, 5, 7, 8]
    quinn = frame.filter(pl.col("_row") == 4).row(0, named=True)
    assert quinn["companyName"] == "Acme\r\nWidgets" and quinn["title"] == 'Title with "quotes"'
    dana = frame.filter(pl.col("_row") == 8).row(0, named=True)
    assert dana["email"] == 'dana.cruz@51"-displays.com' and dana["companyName"] == '51" Displays'


def test_undecodable_line_in_utf8_file() -> None:
    src = open_csv(SAMPLES / "bad_utf8_line.csv")
    assert src.encoding == "utf-8"
    frame, rejects = read_all(src)
    assert rejects["_rule"].to_list() == ["undecodable"] and rejects["_row"].to_list() == [2]
    assert frame["_row"].to_list() == [1, 3, 4]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_replacement_character_in_the_file_is_data(tmp_path: Path, encoding: str) -> None:
    # Real exports carry U+FFFD where an earlier tool replaced bad bytes; the file itself is
    # valid, so the row is a lead like any other.
    text = "email,city\r\na@x.io,Montr\ufffdal\r\nb@x.io,\ufffd\r\n"
    frame, rejects = read_all(open_csv(write(tmp_path, text.encode(encoding))))
    assert rejects.is_empty()
    assert frame.rows() == [(1, "a@x.io", "Montr\ufffdal"), (2, "b@x.io", "\ufffd")]


def test_undecodable_byte_next_to_a_real_replacement_character(tmp_path: Path) -> None:
    # One block with both: only the row whose bytes fail to decode is rejected, and the
    # rejects file shows the bad byte as U+FFFD.
    data = "email,city\na@x.io,Montr\ufffdal\n".encode() + b"b@x.io,Montr\xe9al\nc@x.io,caf\xc3\xa9\n"
    frame, rejects = read_all(open_csv(write(tmp_path, data)))
    assert frame.rows() == [(1, "a@x.io", "Montr\ufffdal"), (3, "c@x.io", "café")]
    assert rejects.select("_row", "_rule", "city").rows() == [(2, "undecodable", "Montr\ufffdal")]


def test_undecodable_unit_in_a_utf16_file(tmp_path: Path) -> None:
    # A lone surrogate cannot be decoded; a U+FFFD the file holds can. Only the former is rejected.
    lone = b"\x00\xd8"  # U+D800 with no low surrogate after it (UTF-16-LE)
    data = (
        codecs.BOM_UTF16_LE
        + "email,city\r\na@x.io,Z\u00fcrich\r\nb@x.io,x".encode("utf-16-le")
        + lone
        + "y\r\nc@x.io,\ufffd\r\n".encode("utf-16-le")
    )
    src = open_csv(write(tmp_path, data))
    assert src.encoding == "utf-16-le"
    frame, rejects = read_all(src)
    assert rejects.select("_row", "_rule").rows() == [(2, "undecodable")]
    assert frame.rows() == [(1, "a@x.io", "Zürich"), (3, "c@x.io", "\ufffd")]


def test_field_too_long(tmp_path: Path) -> None:
    path = write(tmp_path, b"email,notes\na@x.io," + b"y" * 300 + b"\nb@x.io,short\n")
    frame, rejects = read_all(open_csv(path, max_field_bytes=100))
    assert rejects["_rule"].to_list() == ["field_too_long"] and rejects["_row"].to_list() == [1]
    assert frame["email"].to_list() == ["b@x.io"]


def test_crlf_quotes_and_embedded_newlines(tmp_path: Path) -> None:
    data = b'a,b,c\r\n"x, y","he said ""hi""","line1\r\nline2"\r\n1,,3\r\n'
    frame, rejects = read_all(open_csv(write(tmp_path, data)))
    assert rejects.is_empty()
    assert frame.rows() == [(1, "x, y", 'he said "hi"', "line1\r\nline2"), (2, "1", "", "3")]


def test_utf16_be_and_excel_sep_line(tmp_path: Path) -> None:
    text = "sep=;\r\nemail;name\r\na@x.io;Ann\r\n"
    src = open_csv(write(tmp_path, codecs.BOM_UTF16_BE + text.encode("utf-16-be")))
    assert src.encoding == "utf-16-be" and src.delimiter == ";" and src.columns == ["email", "name"]
    frame, _ = read_all(src)
    assert frame.rows() == [(1, "a@x.io", "Ann")]


def test_header_names_made_unique(tmp_path: Path) -> None:
    src = open_csv(write(tmp_path, b"Email,Email,,_row\na,b,c,d\n"))
    assert src.columns == ["Email", "Email_2", "column_3", "col_row"]


def test_many_small_batches_equal_one_batch(tmp_path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["email", "notes"])
    for i in range(5000):
        w.writerow([f"p{i}@x.io", f'multi\nline {i}, with "quotes"' if i % 7 == 0 else f"n{i}"])
    path = write(tmp_path, buf.getvalue().encode())
    one, _ = read_all(open_csv(path), batch_rows=1_000_000)
    many, _ = read_all(open_csv(path), batch_rows=50)
    assert len(list(open_csv(path).batches(50))) > 10
    assert one.equals(many) and one.height == 5000
    assert one["_row"].to_list() == list(range(1, 5001))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (b"email,name\r\n", "header but no data"),
        (b"email,name\r\n\r\n  \r\n", "header but no data"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel"),
    ],
)
def test_clear_input_errors(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InputFileError, match=message) as err:
        open_csv(write(tmp_path, data))
    assert "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        open_csv(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="directory"):
        open_csv(tmp_path)


cell = st.lists(
    # U+FFFD included: a file that holds it is data, only undecodable bytes are rejected.
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])
    | st.sampled_from(["\n", "\r\n", "\r", '"', ",", ";", "\t", " ", "é", "\ufffd"]),
    max_size=12,
).map("".join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(cell, min_size=3, max_size=3), min_size=1, max_size=40),
    sep=st.sampled_from([",", ";", "\t"]),
    eol=st.sampled_from(["\r\n", "\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_roundtrip_of_csv_writer_output(
    tmp_path: Path, rows: list[list[str]], sep: str, eol: str, encoding: str
) -> None:
    """Whatever Python's csv module writes, we read back exactly (numbers, values, order)."""
    buf = io.StringIO()
    # With LF line ends the writer leaves a lone CR unquoted, which no reader (Python's neither)
    # can tell from a CRLF: quote everything then.
    lone_cr = eol == "\n" and any("\r" in c for r in rows for c in r)
    w = csv.writer(buf, delimiter=sep, lineterminator=eol, quoting=csv.QUOTE_ALL if lone_cr else csv.QUOTE_MINIMAL)
    w.writerow(["email", "first name", "notes"])
    w.writerows(rows)
    path = write(tmp_path, buf.getvalue().encode(encoding))
    if not buf.getvalue().split(eol, 1)[1].strip():  # only whitespace after the header
        with pytest.raises(InputFileError, match="no data rows"):
            open_csv(path)
        return
    frame, rejects = read_all(open_csv(path), batch_rows=3)
    blank = [i for i, r in enumerate(rows, start=1) if r == ["", "", ""]]
    assert rejects.is_empty()
    got = {r[0]: list(r[1:]) for r in frame.rows()}
    for i, values in enumerate(rows, start=1):
        assert got[i] == values or (i in blank and got.get(i) in (None, ["", "", ""]))


def test_first_record_of_a_block_with_many_extra_fields_is_rejected_not_a_crash(tmp_path: Path) -> None:
    # More fields than the header + spare columns in a block's first record made polars raise
    # a SchemaError; the block now takes the regex tokeniser like any other refused block.
    path = write(tmp_path, b"a,b,c\n1,2,3,4,5,6,7,8,9,10,11\n4,5,6\n")
    frame, rejects = read_all(open_csv(path))
    assert frame.rows() == [(2, "4", "5", "6")]
    assert rejects["_rule"].to_list() == ["ragged_row"] and "11 fields" in rejects["_reason"][0]


def test_prefetched_batches_keep_record_numbers_and_stop_early(tmp_path: Path) -> None:
    lines = [b"email,n"] + [b"p%d@x.io,%d" % (i, i) for i in range(1, 2001)]
    lines.insert(500, b"bad,row,extra")  # record 499
    path = write(tmp_path, b"\r\n".join(lines) + b"\r\n")
    batches = list(open_csv(path).batches(97))
    rows = [r for b in batches for r in b.frame["_row"].to_list()]
    assert rows == [r for r in range(1, 2002) if r != 500]
    assert [r for b in batches for r in b.rejects["_row"].to_list()] == [500]
    first = next(iter(open_csv(path).batches(97)))  # abandoning the generator must not hang
    assert first.frame["_row"][0] == 1


blocks = st.lists(
    st.sampled_from(['"', ",", ";", "\n", "\r\n", "\r", "a", " ", '""', "é", "\t", '"x,y"', '"l1\nl2"']), max_size=40
).map("".join)


@settings(max_examples=300, deadline=None)
@given(blocks, st.sampled_from([",", ";", "\t"]))
def test_field_counts_by_quote_pair_collapse_equal_line_pass(text: str, sep: str) -> None:
    from polars.testing import assert_frame_equal

    from etl.extract.csv import _line_field_counts, _line_field_counts_by_line

    text = text if text.endswith("\n") else text + "\n"
    assert_frame_equal(_line_field_counts(text, sep), _line_field_counts_by_line(text, sep))


mark_blocks = st.lists(
    st.sampled_from(['a,b', "x", '"q"', '""', '"', ",", ";", "\n", "\r\n", "\r", " ", "é", "\t", '"x,y"', '"l1\nl2"',
                     '"l1\r\nl2"', ",,", "\r\r\n", '"a\rb"', "\r,"]),
    max_size=40,
).map("".join)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(mark_blocks, st.sampled_from([",", ";", "\t"]), st.integers(1, 3))
def test_marker_parse_equals_general_parse(text: str, sep: str, ncols: int) -> None:
    """Whenever the one-parse marker path accepts a block, it gives exactly the frame of the
    general path (polars values + the quote-parity field counts)."""
    from polars.testing import assert_frame_equal

    from etl.extract.csv import SPARE_COLUMNS, _line_field_counts, _parse_with_marks, _read_block

    text = text if text.endswith("\n") else text + "\n"
    fast = _parse_with_marks(text.encode(), ncols, sep)
    if fast is None:
        return
    counts = _line_field_counts(text, sep)
    try:
        general = _read_block(text.encode(), [f"c{i}" for i in range(ncols + SPARE_COLUMNS)], sep)
    except pl.exceptions.ComputeError:  # polars refuses the unmarked block (a stray mid-field quote):
        assert fast["nfields"].to_list() == counts["nfields"].to_list()  # the quote-parity count holds
        return
    assert counts.height == general.height
    assert_frame_equal(fast, pl.concat([general, counts], how="horizontal"))


def test_marker_parse_takes_the_bench_shape_and_refuses_stray_quotes() -> None:
    from etl.extract.csv import _parse_with_marks

    ok = _parse_with_marks(b'a,"x, y",""\r\nb,"l1\nl2",\r\n', 3, ",")
    assert ok is not None and ok["nfields"].to_list() == [3, 3] and ok["c1"].to_list() == ["x, y", "l1\nl2"]
    assert _parse_with_marks(b'x,a"b,c"d\n', 3, ",") is None  # parity and polars disagree here
    assert _parse_with_marks(b"a,b,c\n\nd,e,f\n", 3, ",") is None  # blank line
    # CRs anywhere (marks go before every LF; polars drops one CR that ends a field either way)
    for text, cells, n in (
        (b"a,b\r,\na,b\r\n", [["a", "a"], ["b", "b"], ["", ""]], [3, 2]),
        (b"a,b\r\r\n", [["a"], ["b\r"], [""]], [2]),
        (b'a,"x\ry"\r\n', [["a"], ["x\ry"], [""]], [2]),
        (b"a,b\rc\r\n", [["a"], ["b\rc"], [""]], [2]),
    ):
        got = _parse_with_marks(text, 2, ",")
        assert got is not None and got["nfields"].to_list() == n, text
        assert [got[f"c{i}"].to_list() for i in range(3)] == cells, text


# --- lines before the header (a preamble) -------------------------------------------------------

LINKEDIN = Path(__file__).resolve().parents[1] / "data" / "linkedin" / "Connections.csv"
LINKEDIN_HEADER = "First Name,Last Name,URL,Email Address,Company,Position,Connected On"


def test_linkedins_notes_are_skipped_and_rows_keep_their_line_numbers() -> None:
    from etl.extract.csv import CsvFileSource

    src = CsvFileSource(LINKEDIN)  # the real export's shape: Notes:, a quoted paragraph, a blank line
    assert src.columns == LINKEDIN_HEADER.split(",") and src.skipped_lines == 3
    frame = pl.concat([b.frame for b in src.batches()])
    lines = LINKEDIN.read_text(encoding="utf-8").splitlines()
    # `_row` + 1 is the record's line in the file, as in a file without a preamble.
    for row, first, last in frame.select("_row", "First Name", "Last Name").iter_rows():
        assert lines[row].startswith(f"{first},") and last.split(",")[0] in lines[row]
    assert frame.height == len(lines) - 4  # every record below the header, none lost
    assert src.preamble_note() == (
        "skipped 3 preamble line(s) before the header (line 4): the LinkedIn connections export's notes"
    )


def test_a_ragged_row_below_a_preamble_is_rejected_with_its_line_true_row(tmp_path: Path) -> None:
    data = f"Notes:\nsome prose\n\n{LINKEDIN_HEADER}\nAnn,Lee,u,ann@x.io,Acme,CTO,1 Jan 2025\nBo,Ek,u\n".encode()
    src = open_csv(write(tmp_path, data), skip_rows=3)
    frame, rejects = read_all(src)
    assert frame.get_column("_row").to_list() == [4]  # line 5
    assert rejects.select("_row", "_rule").row(0) == (5, "ragged_row")  # line 6


def test_preamble_lines_with_commas_do_not_decide_the_delimiter(tmp_path: Path) -> None:
    # Prose with commas above a `;` header (a German Excel export with a title block).
    data = ("Exported by Ann, Lee, on 1 Dec 2026, for sales\n"
            f"{LINKEDIN_HEADER.replace(',', ';')}\nAnn;Lee;u;ann@x.io;Acme, Inc.;CTO;1 Jan 2025\n").encode()
    from etl.extract.csv import CsvFileSource

    src = CsvFileSource(write(tmp_path, data))
    assert (src.skipped_lines, src._csv.delimiter) == (1, ";")
    frame, _ = read_all(src._csv)
    assert frame.row(0) == (2, "Ann", "Lee", "u", "ann@x.io", "Acme, Inc.", "CTO", "1 Jan 2025")


def test_skip_rows_for_a_title_block_of_an_unknown_layout(tmp_path: Path) -> None:
    data = b"Quarterly leads, Q3\nPrepared by Ann\n\ncontact,reach me at\nAnn,ann@x.io\n"
    path = write(tmp_path, data)
    src = open_csv(path, skip_rows=2)  # the blank line after the skipped ones is skipped too
    assert (src.columns, src.skipped_lines) == (["contact", "reach me at"], 3)
    frame, _ = read_all(src)
    assert frame.row(0) == (4, "Ann", "ann@x.io")
    assert open_csv(path).columns == ["Quarterly leads", "Q3"]  # no finder, no skip: line 1 is the header


def test_skipping_every_line_is_one_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, f"Notes:\nprose\n\n{LINKEDIN_HEADER}\n".encode())
    with pytest.raises(InputFileError, match=r"skipping 9 line\(s\) .* \(it has 4 line\(s\)\)"):
        open_csv(path, skip_rows=9)


def test_a_file_of_nothing_but_linkedins_notes_is_exit_2(tmp_path: Path) -> None:
    from etl.extract.csv import CsvFileSource

    notes = LINKEDIN.read_text(encoding="utf-8").split(LINKEDIN_HEADER)[0]
    with pytest.raises(InputFileError, match=r"begins like a LinkedIn connections export.*cut off"):
        CsvFileSource(write(tmp_path, notes.encode(), "Connections.csv"))


@pytest.mark.parametrize("data", [
    b'"First Name","Last Name","URL","Email Address","Company","Position","Connected On"\r\n"Ann","Lee","u","a@x.io",'
    b'"Acme","CTO","1 Jan 2025"\r\n',
    b'\xef\xbb\xbf"contact","reach me at"\n"Ann","a@x.io"\n"Bo","b@x.io"\n',
    b'sep=;\n"email";"name"\na@x.io;Ann\n',
])
def test_quoted_headers_and_excel_hints_are_unaffected(tmp_path: Path, data: bytes) -> None:
    from etl.extract.csv import CsvFileSource

    src = CsvFileSource(write(tmp_path, data))
    assert src.skipped_lines == 0 and src.preamble_note() is None
    assert src.columns == open_csv(src.path).columns and "Ann" in read_all(src._csv)[0].row(0)
