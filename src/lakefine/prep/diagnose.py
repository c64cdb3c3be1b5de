"""The quarantine gate and what it tells the user.

Rows quarantined for a data defect (null/empty/undecodable/mojibake/malformed/
conflicting) count against ``source.max_quarantined_fraction``; rows quarantined by
a policy the user chose (``duplicate``, ``rare_label``, ``label_not_in_train``) do not.
Above the gate prepare fails with the top reasons, example rows and a hint per reason;
below it the same hints are warnings. For undecodable bytes the hint names the
encoding charset-normalizer detects in the raw file's undecodable lines, as the Java
charset name Spark's reader takes, and the exact ``source.options.encoding`` to set.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import re
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.core import paths
from lakefine.core.config import PipelineConfig
from lakefine.core.errors import DataError
from lakefine.core.log import say
from lakefine.prep.clean import CORRUPT_RECORD

POLICY_REASONS = ("duplicate", "rare_label", "label_not_in_train")
TOP_REASONS = 3
EXAMPLES_PER_REASON = 2
EXAMPLE_CHARS = 80
# How much of a raw file is read to find undecodable lines (decompressed bytes), and
# how many such lines are enough for charset-normalizer.
SNIFF_BYTES = 64 * 1024 * 1024
SNIFF_LINES = 400
SNIFF_FILES = 20
# How much more "chaos" (charset-normalizer's measure of implausible characters) a
# Western codec may have than the best guess and still be preferred: on a few short
# lines the guesses differ by one or two odd characters (0.05 on 20 French lines).
WESTERN_TOLERANCE = 0.1


def defect_rows(by_reason: dict[str, int]) -> dict[str, int]:
    """The reasons that are defects of the data (what the gate counts)."""
    return {reason: n for reason, n in by_reason.items() if reason not in POLICY_REASONS}


def check_quarantine(config: PipelineConfig, rows: DataFrame, input_rows: int, by_reason: dict[str, int]) -> dict:
    """Fail above ``source.max_quarantined_fraction``, warn below; returns what the data
    card records (the gate, the defect rows and their fraction)."""
    defects = defect_rows(by_reason)
    defect_total = sum(defects.values())
    fraction = defect_total / input_rows if input_rows else 0.0
    gate = config.source.max_quarantined_fraction
    hints = {reason: hint(config, reason) for reason in sorted(defects, key=lambda r: -defects[r])}
    if fraction > gate:
        lines = []
        for reason in list(hints)[:TOP_REASONS]:
            shown = "; ".join(_examples(rows, reason)) or "-"
            lines.append(f"  - {reason}: {defects[reason]:,} rows, e.g. {shown}\n    fix: {hints[reason]}")
        others = len(hints) - TOP_REASONS
        policy = {r: n for r, n in by_reason.items() if r in POLICY_REASONS}
        raise DataError(
            f"{_where(config)}: {defect_total:,} of {input_rows:,} input rows ({fraction:.1%}) are quarantined"
            f" for data defects, more than source.max_quarantined_fraction {gate:g}:\n"
            + "\n".join(lines)
            + (f"\n  ... and {others} more reason{'s' if others > 1 else ''}" if others > 0 else "")
            + "\nFix the source or the setting each line names, or raise source.max_quarantined_fraction"
            + (f" (not counted, your own settings: {policy})" if policy else "")
        )
    for reason, text in hints.items():
        say(f"prepare: warning: {defects[reason]:,} rows quarantined as {reason}: {text}")
    return {"max_quarantined_fraction": gate, "defect_rows": defect_total, "defect_fraction": round(fraction, 6)}


def hint(config: PipelineConfig, reason: str) -> str:
    """What to do about ``reason``, naming the setting or column."""
    src = config.source
    if reason.startswith("invalid_utf8_"):
        return encoding_hint(config)
    if reason.startswith("mojibake_"):
        if src.mojibake == "repair":
            return (
                "ftfy could not repair these (text decoded with the wrong codec upstream); fix them at the"
                " source, or set source.mojibake: keep to train on them as they are"
            )
        return (
            "text decoded with the wrong codec upstream ('Ã©' for 'é'); set source.mojibake: repair"
            " to fix it with ftfy (rows it cannot fix stay quarantined)"
        )
    if reason == "malformed_row":
        return (
            f"Spark could not parse these lines as {src.file_format or 'the source format'} with"
            f" source.options {dict(src.options)}; check sep, quote, escape and multiLine (the raw lines are"
            f" in the {CORRUPT_RECORD} column of the quarantine)"
        )
    if reason == "conflicting_labels":
        return (
            "the same text carries different labels (compared as labels.conflict_key says: folded when"
            " the tokenizer folds case/accents); fix the labels at the source, or set"
            " labels.conflict_key: exact if texts differing in case are really different"
        )
    if reason in ("null_id", "empty_id"):
        return f"rows without an id in source.id_column {src.id_column!r}; fill it, or unset source.id_column"
    kind, _, name = reason.partition("_")  # null_text, empty_label, ...
    columns = {"text": src.text_column, "text_pair": src.text_pair_column, "label": src.label_column}
    if kind in ("null", "empty") and name in columns:
        return f"source.{name}_column {columns[name]!r} is {kind} in these rows; check it names the right column"
    return "see the quarantine Parquet for these rows"


def encoding_hint(config: PipelineConfig) -> str:
    """Where the undecodable bytes come from and the reader option that reads them."""
    src = config.source
    if not src.path or src.file_format not in ("csv", "json", "jsonl", "text"):
        return (
            "the source holds text that is not valid UTF-8 (bytes replaced by U+FFFD before lakefine saw"
            " them); fix the writer of the table, or read the raw files with the right source.options.encoding"
        )
    location = paths.resolve(src.path, config.runtime.local_root, key="source.path")
    found = undecodable_sample(location)
    if found is None:
        return (
            f"the files under {src.path} are valid UTF-8: the U+FFFD characters are in the data itself"
            " (an earlier export replaced bytes it could not decode); fix that export"
        )
    sample, file, lines = found
    detected = detect_encoding(sample)
    if detected is None:
        return (
            f"{file.name} is not UTF-8 and charset-normalizer could not tell its encoding; set source.options.encoding"
        )
    java = java_charset(detected)
    options = {str(k).lower(): v for k, v in src.options.items()}
    given = options.get("encoding") or options.get("charset")
    already = f" (source.options.encoding is {given!r} now)" if given else ""
    return (
        f"{file.name} is not UTF-8: charset-normalizer reads its {lines} undecodable lines as {detected}"
        f" (Java: {java}){already}; set source.options.encoding: {java}"
        f" (on the command line: source.options.encoding={java})"
    )


def undecodable_sample(location: Path) -> tuple[bytes, Path, int] | None:
    """Lines of the raw files (decompressed) that are not valid UTF-8: the bytes an
    encoding detector should look at. None when every line decodes."""
    files = [location] if location.is_file() else sorted(_data_files(location))[:SNIFF_FILES]
    for file in files:
        lines, read = [], 0
        with _open(file) as handle:
            for line in handle:
                read += len(line)
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    lines.append(line)
                if len(lines) >= SNIFF_LINES or read > SNIFF_BYTES:
                    break
        if lines:
            return b"".join(lines), file, len(lines)
    return None


def detect_encoding(sample: bytes) -> str | None:
    """The Python codec name charset-normalizer finds for ``sample``. Western text is
    read as cp1252 when it holds bytes 0x80-0x9F (curly quotes, dashes, the euro sign)
    and as latin-1 otherwise, whenever charset-normalizer finds one of them about as
    plausible as its best guess (``WESTERN_TOLERANCE``): on short samples it often ranks
    look-alike codecs (ISO-8859-10, -4, cp1257) first, which turn 'è' into 'č'. Codecs
    of other scripts (cp1250 Polish, cp1251 Cyrillic) are not affected: there cp1252 is
    not among the plausible guesses at all."""
    import charset_normalizer  # only on this diagnosis path

    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    western = {"cp1252", "latin_1", "iso8859_15"}
    if any(m.chaos <= best.chaos + WESTERN_TOLERANCE and western & set(m.could_be_from_charset) for m in matches):
        return "cp1252" if re.search(rb"[\x80-\x9f]", sample) else "latin_1"
    return best.encoding


_JAVA_NAMES = {
    "utf-8": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32": "UTF-32",
    "latin-1": "ISO-8859-1",
    "iso8859-1": "ISO-8859-1",
    "mac-roman": "x-MacRoman",
    "shift_jis": "Shift_JIS",
    "cp932": "windows-31j",
    "euc_jp": "EUC-JP",
    "euc_kr": "EUC-KR",
    "cp949": "x-windows-949",
    "big5": "Big5",
    "gb2312": "GB2312",
    "gbk": "GBK",
    "gb18030": "GB18030",
    "koi8-r": "KOI8-R",
    "koi8-u": "KOI8-U",
    "tis-620": "TIS-620",
}


def java_charset(python_name: str) -> str:
    """A Python codec name (``cp1252``, ``latin_1``, ``iso8859_15``) as the Java charset
    name Spark's ``encoding`` option takes (``windows-1252``, ``ISO-8859-1``, ``ISO-8859-15``)."""
    try:
        name = codecs.lookup(python_name).name
    except LookupError:
        name = python_name.lower()
    if name in _JAVA_NAMES:
        return _JAVA_NAMES[name]
    if match := re.fullmatch(r"cp125(\d)", name):
        return f"windows-125{match.group(1)}"
    if match := re.fullmatch(r"iso8859-(\d+)", name):
        return f"ISO-8859-{match.group(1)}"
    if match := re.fullmatch(r"cp(\d{3})", name):
        return f"IBM{match.group(1)}"
    return name.upper().replace("_", "-")


def _data_files(location: Path):
    return (p for p in location.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def _open(file: Path):
    if file.suffix == ".bz2":
        return bz2.open(file, "rb")
    if file.suffix == ".gz":
        return gzip.open(file, "rb")
    if file.suffix in (".xz", ".lzma"):
        return lzma.open(file, "rb")
    return open(file, "rb")


def _examples(rows: DataFrame, reason: str) -> list[str]:
    """A few quarantined rows of ``reason``, truncated: the raw line of a malformed row,
    else the text (and the label, for a label reason)."""
    if reason == "malformed_row":
        columns = [CORRUPT_RECORD]
    elif reason.endswith("_label"):
        columns = ["text", "label"]
    else:
        columns = ["text_pair" if reason.endswith("_text_pair") else "text"]
    values = rows.where(F.col("reason") == reason).select(*columns).limit(EXAMPLES_PER_REASON).collect()
    if len(columns) == 2:
        return [f"{_truncated(row[0])} (label {_truncated(row[1])})" for row in values]
    return [_truncated(row[0]) for row in values]


def _truncated(value) -> str:
    if value is None:
        return "None"
    text = str(value)
    return repr(text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "...")


def _where(config: PipelineConfig) -> str:
    src = config.source
    return f"source {src.table or src.path or 'sql'} (text {src.text_column!r}, label {src.label_column!r})"
