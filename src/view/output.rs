//! Writes view rows: [`Format`] by file extension (`.parquet`, `.csv`, `.ndjson`, `.json`),
//! [`RowWriter`] streaming rows to a file, the flat Arrow schema of a view
//! ([`arrow_schema`], [`record_batch`]: boolean → Boolean, integer kinds → Int64, decimal →
//! Float64, everything else → Utf8, `collection` → List), and cells as JSON ([`cell_json`]).

use super::{Cell, Column, ColumnKind};
use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet, flat schema from the column types, zstd.
    Parquet,
    /// CSV with a header line, RFC 4180 quoting; null is an empty field, lists are JSON.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// One JSON array of objects.
    Json,
}

impl Format {
    /// The format for a file name's extension.
    pub fn from_path(p: &Path) -> Option<Format> {
        match p.extension()?.to_str()? {
            "parquet" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A cell as JSON (`null`, booleans, numbers, strings, arrays).
pub fn cell_json(c: &Cell) -> serde_json::Value {
    use serde_json::Value;
    match c {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Int(i) => Value::from(*i),
        // The decimal's text is a valid JSON number; parsing it keeps the digits that f64 has.
        Cell::Dec(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
        Cell::Str(s) => Value::String(s.clone()),
        Cell::List(v) => Value::Array(v.iter().map(cell_json).collect()),
    }
}

fn write_json_row(columns: &[Column], row: &[Cell], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (c, v)) in columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, &c.name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, &cell_json(v));
    }
    out.push(b'}');
}

fn csv_text(c: &Cell) -> String {
    match c {
        Cell::Null => String::new(),
        Cell::Bool(b) => b.to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Dec(d) => d.to_string(),
        Cell::Str(s) => s.clone(),
        Cell::List(_) => cell_json(c).to_string(),
    }
}

/// Appends one CSV field, quoted when it contains a comma, a quote, CR or LF (RFC 4180).
fn csv_field(s: &str, out: &mut Vec<u8>) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn data_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Boolean => DataType::Boolean,
        ColumnKind::Integer => DataType::Int64,
        ColumnKind::Decimal => DataType::Float64,
        ColumnKind::String | ColumnKind::Any => DataType::Utf8,
    }
}

/// The flat Arrow schema of a view's columns (all nullable).
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| {
                let t = data_type(c.kind);
                let t = if c.collection {
                    DataType::List(Arc::new(Field::new("item", t, true)))
                } else {
                    t
                };
                Field::new(&c.name, t, true)
            })
            .collect::<Vec<_>>(),
    ))
}

fn new_builder(kind: ColumnKind) -> Box<dyn ArrayBuilder> {
    match kind {
        ColumnKind::Boolean => Box::new(BooleanBuilder::new()),
        ColumnKind::Integer => Box::new(Int64Builder::new()),
        ColumnKind::Decimal => Box::new(Float64Builder::new()),
        ColumnKind::String | ColumnKind::Any => Box::new(StringBuilder::new()),
    }
}

/// Appends one scalar cell to a builder made by [`new_builder`] for `kind`.
fn append(b: &mut dyn ArrayBuilder, kind: ColumnKind, c: &Cell) {
    let any = b.as_any_mut();
    match kind {
        ColumnKind::Boolean => {
            let b = any
                .downcast_mut::<BooleanBuilder>()
                .expect("boolean builder");
            match c {
                Cell::Bool(v) => b.append_value(*v),
                _ => b.append_null(),
            }
        }
        ColumnKind::Integer => {
            let b = any.downcast_mut::<Int64Builder>().expect("int builder");
            match c {
                Cell::Int(v) => b.append_value(*v),
                _ => b.append_null(),
            }
        }
        ColumnKind::Decimal => {
            let b = any.downcast_mut::<Float64Builder>().expect("float builder");
            match c {
                Cell::Dec(v) => b.append_value(v.to_f64()),
                Cell::Int(v) => b.append_value(*v as f64),
                _ => b.append_null(),
            }
        }
        ColumnKind::String | ColumnKind::Any => {
            let b = any.downcast_mut::<StringBuilder>().expect("string builder");
            match c {
                Cell::Null => b.append_null(),
                c => b.append_value(csv_text(c)),
            }
        }
    }
}

/// The rows as one Arrow record batch of [`arrow_schema`].
pub fn record_batch(
    columns: &[Column],
    rows: &[Vec<Cell>],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        if c.collection {
            let mut lb = ListBuilder::new(new_builder(c.kind));
            for r in rows {
                match &r[i] {
                    Cell::List(items) => {
                        for x in items {
                            append(lb.values().as_mut(), c.kind, x);
                        }
                        lb.append(true);
                    }
                    _ => lb.append(false),
                }
            }
            arrays.push(Arc::new(lb.finish()));
        } else {
            let mut b = new_builder(c.kind);
            for r in rows {
                append(b.as_mut(), c.kind, &r[i]);
            }
            arrays.push(b.finish());
        }
    }
    RecordBatch::try_new(arrow_schema(columns), arrays)
}

/// Why rows could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// File I/O.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Encoding Parquet.
    #[error("cannot write Parquet {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

enum Sink {
    Text(BufWriter<std::fs::File>),
    Parquet(Box<ArrowWriter<std::fs::File>>),
}

/// Streams rows into a file of one [`Format`]. It writes `<file>.partial` and renames it into
/// place in [`RowWriter::finish`], so a failed run leaves no half-written output.
pub struct RowWriter {
    format: Format,
    columns: Vec<Column>,
    path: PathBuf,
    partial: PathBuf,
    sink: Option<Sink>,
    buf: Vec<u8>,
    rows: u64,
}

impl RowWriter {
    /// Creates the partial file and writes the CSV header or the JSON array's opening.
    pub fn create(
        path: &Path,
        format: Format,
        columns: &[Column],
    ) -> Result<RowWriter, OutputError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let io = |source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(&partial).map_err(io)?;
        let sink = match format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                let w = ArrowWriter::try_new(file, arrow_schema(columns), Some(props)).map_err(
                    |e| OutputError::Parquet {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    },
                )?;
                Sink::Parquet(Box::new(w))
            }
            _ => Sink::Text(BufWriter::with_capacity(1 << 20, file)),
        };
        let mut w = RowWriter {
            format,
            columns: columns.to_vec(),
            path: path.to_path_buf(),
            partial,
            sink: Some(sink),
            buf: Vec::new(),
            rows: 0,
        };
        match format {
            Format::Csv => {
                for (i, c) in columns.iter().enumerate() {
                    if i > 0 {
                        w.buf.push(b',');
                    }
                    csv_field(&c.name, &mut w.buf);
                }
                w.buf.extend_from_slice(b"\r\n");
            }
            Format::Json => w.buf.push(b'['),
            _ => {}
        }
        w.flush_text()?;
        Ok(w)
    }

    fn io(&self, source: std::io::Error) -> OutputError {
        OutputError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn flush_text(&mut self) -> Result<(), OutputError> {
        if let Some(Sink::Text(f)) = &mut self.sink {
            if let Err(e) = f.write_all(&self.buf) {
                return Err(self.io(e));
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes rows (each with one cell per column).
    pub fn write(&mut self, rows: &[Vec<Cell>]) -> Result<(), OutputError> {
        match self.format {
            Format::Parquet => {
                if rows.is_empty() {
                    return Ok(());
                }
                let batch =
                    record_batch(&self.columns, rows).map_err(|e| OutputError::Parquet {
                        path: self.path.clone(),
                        message: e.to_string(),
                    })?;
                if let Some(Sink::Parquet(w)) = &mut self.sink {
                    w.write(&batch).map_err(|e| OutputError::Parquet {
                        path: self.path.clone(),
                        message: e.to_string(),
                    })?;
                }
            }
            Format::Csv => {
                for r in rows {
                    for (i, c) in r.iter().enumerate() {
                        if i > 0 {
                            self.buf.push(b',');
                        }
                        csv_field(&csv_text(c), &mut self.buf);
                    }
                    self.buf.extend_from_slice(b"\r\n");
                }
            }
            Format::Ndjson => {
                for r in rows {
                    write_json_row(&self.columns, r, &mut self.buf);
                    self.buf.push(b'\n');
                }
            }
            Format::Json => {
                for r in rows {
                    self.buf
                        .extend_from_slice(if self.rows == 0 { b"\n" } else { b",\n" });
                    write_json_row(&self.columns, r, &mut self.buf);
                    self.rows += 1;
                }
            }
        }
        if self.format != Format::Json {
            self.rows += rows.len() as u64;
        }
        self.flush_text()
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the file and renames it into place.
    pub fn finish(mut self) -> Result<u64, OutputError> {
        if self.format == Format::Json {
            self.buf
                .extend_from_slice(if self.rows == 0 { b"]\n" } else { b"\n]\n" });
        }
        self.flush_text()?;
        match self.sink.take() {
            Some(Sink::Text(f)) => {
                let f = f.into_inner().map_err(|e| self.io(e.into_error()))?;
                f.sync_all().map_err(|e| self.io(e))?;
            }
            None => {}
            Some(Sink::Parquet(w)) => {
                w.close().map_err(|e| OutputError::Parquet {
                    path: self.path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        std::fs::rename(&self.partial, &self.path).map_err(|e| self.io(e))?;
        Ok(self.rows)
    }

    /// Removes the partial file.
    pub fn abort(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}
