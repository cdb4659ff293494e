"""Tables: numeric CSV and Parquet files, a label column optional."""

import csv
import io

import numpy as np

from keras_deepclust._validation import check_class_ids
from keras_deepclust.readers._files import (
    check_not_empty,
    existing,
    finish,
    import_for,
    is_number,
    reading,
)


def from_csv(path, label_column=None, delimiter="auto", skip_header="auto"):
    """Rows of a numeric CSV as samples; `label_column` as labels.

    Read as UTF-8, with or without the byte-order mark of Excel's "CSV UTF-8". Lines
    without any value are skipped.

    Args:
        path: the file.
        label_column: a column index, a header name, a tuple of header names (the first
            one present; none present: no labels), or None (no labels). Labels are whole
            numbers or class names (text, mapped to ids 0..C-1 in sorted order);
            fractions, empty cells and a mix of numbers and text are refused.
        delimiter: the cell separator; "auto" takes the first of ",", ";" and tab that
            appears in the first line (Excel writes ";" in many locales).
        skip_header: whether the first line is a header; "auto": when it holds a cell
            that is not a number.

    A cell that is not a number, or an empty one, is refused with the line and the
    column (by its header name when there is a header), never read as NaN.
    """
    path = existing(path)
    lines, delimiter = _csv_lines(path, delimiter)
    if not lines:
        raise ValueError(f"{path} is empty.")
    first_line, first = lines[0]
    has_header = skip_header if skip_header != "auto" else not all(map(is_number, first))
    header = [_column_name(c) for c in first] if has_header else [
        str(i) for i in range(len(first))]
    body = lines[int(has_header):]
    if not body:
        raise ValueError(f"{path} has a header but no rows.")
    for number, row in body:
        if len(row) != len(header):
            raise ValueError(f"{path}, line {number}: {len(row)} cells where line {first_line} "
                             f"has {len(header)}.")
    label_index = _label_index(path, label_column, header if has_header else None, len(header))
    numbers = [number for number, _ in body]
    if has_header and not header[0] and _row_numbers([row[0] for _, row in body]):
        raise ValueError(f"{path}: the first column has no name and holds the row numbers 0 to "
                         f"{len(body) - 1}: a row index (pandas writes one unless "
                         "to_csv(..., index=False)), not a feature. Drop it.")
    table = np.empty((len(body), len(header)))
    for column, name in enumerate(header):
        if column == label_index:
            continue
        cells = [row[column] for _, row in body]
        try:
            table[:, column] = [float(c) for c in cells]
        except ValueError:
            i = next(i for i, c in enumerate(cells) if not is_number(c))
            raise ValueError(
                f"{path}: column {name!r} is not numeric (line {numbers[i]}: {cells[i]!r})."
                f"{_delimiter_hint(cells[i], delimiter)} Encode or drop non-numeric columns "
                "first.") from None
        _check_column_finite(table[:, column], path, name, cells,
                             lambda i: f"line {numbers[i]}")
    y = None
    if label_index is not None:
        y = _csv_labels(path, header[label_index], [row[label_index] for _, row in body],
                        numbers)
        table = np.delete(table, label_index, axis=1)
    return finish(table.astype(np.float32), y, path)


def _csv_lines(path, delimiter):
    """(`[(line number, cells)]` of the lines holding a value, delimiter used)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ValueError(f"{path} is not UTF-8 text (byte {data[error.start]:#04x} on line "
                         f"{line}): save it as \"CSV UTF-8\".") from None
    if delimiter == "auto":
        first = next((line for line in text.splitlines() if line.strip()), "")
        delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    with reading(path, "a CSV file"):
        lines = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    return lines, delimiter


def _row_numbers(cells):
    """Whether the cells are 0, 1, 2, ... in order (a written row index)."""
    return all(c.strip() == str(i) for i, c in enumerate(cells))


def _column_name(cell):
    return cell.lstrip("\ufeff").strip()


def _label_index(path, label_column, header, width):
    """The index of the label column (see `from_csv`), or None."""
    if label_column is None:
        return None
    if isinstance(label_column, (tuple, list)):
        return next((header.index(c) for c in label_column if header and c in header), None)
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            raise ValueError(f"{path} has no column named {label_column!r}; "
                             + (f"header: {header}." if header else "it has no header."))
        return header.index(label_column)
    if not -width <= label_column < width:
        raise ValueError(f"{path} has {width} columns; there is no column {label_column}.")
    return label_column % width


def _csv_labels(path, name, cells, numbers):
    """Class ids of a CSV label column: whole numbers, or class names mapped to ids."""
    where = lambda i: f"line {numbers[i]}"  # noqa: E731
    what = f"labels (column {name!r}) of {path}"
    empty = next((i for i, c in enumerate(cells) if not c.strip()), None)
    if empty is not None:
        raise ValueError(f"{what} must name a class for every row; {where(empty)} is empty.")
    numeric = [is_number(c) for c in cells]
    if all(numeric):
        return check_class_ids(np.array([float(c) for c in cells]), name=what, where=where)
    if any(numeric):
        i, j = numeric.index(True), numeric.index(False)
        raise ValueError(f"{what} mix numbers ({where(i)}: {cells[i]!r}) and text ({where(j)}: "
                         f"{cells[j]!r}); give every row a class id or every row a class name.")
    return check_class_ids(np.array([c.strip() for c in cells]), name=what, where=where)


def _delimiter_hint(cell, delimiter):
    if delimiter == ";" and "," in cell:
        return " Decimal commas are not read: write numbers with a decimal point."
    if delimiter == "," and ";" in cell:
        return " The file looks separated by ';' with decimal commas: save it with ',' " \
               "between cells and '.' in numbers."
    return ""


def _check_column_finite(values, path, name, cells, where):
    """Refuses a column holding NaN, an infinite value or one beyond float32's range (the
    samples are float32), naming the first (`cells[i]`, as written) and `where(i)` it is."""
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(values.astype(np.float32))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cell = cells[i].item() if isinstance(cells[i], np.generic) else cells[i]
        beyond = "" if not np.isfinite(values[i]) else " beyond float32's range"
        raise ValueError(f"{path}: column {name!r} holds NaN or an infinite value{beyond} "
                         f"({where(i)}: {cell!r}).")


def from_parquet(path, label_column=None):
    """Rows of a Parquet file (needs pyarrow) as samples: every numeric column a
    feature, `label_column` (a name, or a tuple of names: the first one present) the
    labels (whole numbers or class names). Non-numeric, null, NaN or infinite cells are
    refused with the column's name and the row."""
    path = existing(path)
    pa = import_for(path, "pyarrow", "pyarrow")
    pq = import_for(path, "pyarrow.parquet", "pyarrow")
    check_not_empty(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable Parquet file: {error}") from None
    index_columns = [c for c in (table.schema.pandas_metadata or {}).get("index_columns", [])
                     if isinstance(c, str)]
    table = table.drop_columns(index_columns)  # a DataFrame's index, not a feature
    names = [_column_name(n) for n in table.column_names]
    label_index = _label_index(path, label_column, names, len(names))
    columns, y = [], None
    for index, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{path}: column {name!r} has {column.null_count} null cells "
                             f"(the first in row {row}, counting from 0).")
        if index == label_index:
            labels = column.to_numpy() if _arrow_numeric(column.type) else np.array(
                [str(v) for v in column.to_pylist()])
            y = check_class_ids(labels, name=f"labels (column {name!r}) of {path}",
                                where=lambda i: f"row {i}")
            continue
        if not _arrow_numeric(column.type):
            raise ValueError(f"{path}: column {name!r} is not numeric ({column.type}). "
                             "Encode or drop non-numeric columns first.")
        values = column.to_numpy().astype(np.float64)
        _check_column_finite(values, path, name, values, lambda i: f"row {i}")
        columns.append(values.astype(np.float32))
    if not columns:
        raise ValueError(f"{path} has no feature columns.")
    return finish(np.column_stack(columns), y, path)


def _arrow_numeric(arrow_type):
    import pyarrow.types as types

    return types.is_integer(arrow_type) or types.is_floating(arrow_type) or types.is_boolean(
        arrow_type)

