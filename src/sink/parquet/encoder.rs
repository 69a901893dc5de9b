//! Record → Arrow column encoders. The Parquet sink holds one encoder per resource type behind
//! [`BatchEncoder`], so the lossless typed schema derived from the R4 model can replace the
//! `raw` layout without touching file rolling, row groups or commit.

use crate::batch::{Batch, Record};
use arrow::array::{
    ArrayRef, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use std::sync::Arc;

/// Builds Arrow record batches from records of one resource type.
pub trait BatchEncoder: Send {
    /// The (fixed) schema of every batch this encoder makes.
    fn schema(&self) -> SchemaRef;
    /// Appends one record.
    fn append(&mut self, batch: &Batch, record: &Record);
    /// Rows appended since the last [`BatchEncoder::flush`].
    fn rows(&self) -> usize;
    /// Approximate bytes held by the builders.
    fn buffered_bytes(&self) -> usize;
    /// Takes the appended rows as a record batch. Fails only if a record's text is not UTF-8,
    /// which the checker rules out.
    fn flush(&mut self) -> Result<RecordBatch, ArrowError>;
    /// Called once the writer has consumed (and dropped) the last flushed batch: take its
    /// buffers back for the next rows, so steady state allocates nothing per batch.
    fn reclaim(&mut self) {}
    /// A short name of the layout, written to the file metadata.
    fn layout(&self) -> &'static str;
    /// More key-value metadata for every file (schema fingerprint, model version, ...).
    fn metadata(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The `raw` layout: typed `id`, `meta_version_id`, `meta_last_updated` (timestamp µs UTC) and
/// the whole resource as its original JSON text in `resource`, so nothing is lost.
pub struct RawEncoder {
    schema: SchemaRef,
    id: StringColumn,
    version_id: StringBuilder,
    last_updated: TimestampMicrosecondBuilder,
    resource: StringColumn,
    bytes: usize,
}

/// A non-null UTF-8 column built in plain `Vec`s that are reused from one record batch to the
/// next: [`StringColumn::finish`] lends them to an Arrow array, [`StringColumn::reclaim`]
/// takes them back when that array is no longer shared. (Arrow's `StringBuilder` starts
/// empty after every `finish` and regrows by doubling: several multi-megabyte allocations
/// per batch on the hottest path.)
struct StringColumn {
    offsets: Vec<i32>,
    values: Vec<u8>,
    lent: Option<Arc<StringArray>>,
}

impl StringColumn {
    fn new() -> Self {
        StringColumn {
            offsets: Vec::new(),
            values: Vec::new(),
            lent: None,
        }
    }

    fn append(&mut self, text: &[u8]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.values.extend_from_slice(text);
        // Fits i32: the sink flushes at 4 MiB and a line is at most 1 GiB (config::plan).
        self.offsets.push(self.values.len() as i32);
    }

    fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::take(&mut self.offsets)));
        let values = Buffer::from_vec(std::mem::take(&mut self.values));
        let array = Arc::new(StringArray::try_new(offsets, values, None)?);
        self.lent = Some(array.clone());
        Ok(array)
    }

    fn reclaim(&mut self) {
        let Some(array) = self.lent.take() else {
            return;
        };
        let Ok(array) = Arc::try_unwrap(array) else {
            return; // still shared: let Arrow free it, start fresh
        };
        let (offsets, values, _) = array.into_parts();
        if let Ok(mut v) = values.into_vec::<u8>() {
            v.clear();
            self.values = v;
        }
        if let Ok(mut o) = offsets.into_inner().into_inner().into_vec::<i32>() {
            o.clear();
            self.offsets = o;
        }
    }
}

/// The Arrow schema of the `raw` layout.
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("meta_version_id", DataType::Utf8, true),
        Field::new(
            "meta_last_updated",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("resource", DataType::Utf8, false),
    ]))
}

impl RawEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        RawEncoder {
            schema: raw_schema(),
            id: StringColumn::new(),
            version_id: StringBuilder::new(),
            last_updated: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            resource: StringColumn::new(),
            bytes: 0,
        }
    }
}

impl Default for RawEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchEncoder for RawEncoder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn append(&mut self, batch: &Batch, r: &Record) {
        let id = batch.id(r);
        self.id.append(id.as_bytes());
        self.version_id.append_option(batch.version_id(r));
        self.last_updated.append_option(r.last_updated);
        // The checker validated the line as UTF-8 JSON; `flush` checks the column again
        // (one fast pass) rather than trusting that across modules.
        let json = batch.json(r);
        self.resource.append(json);
        self.bytes += id.len() + json.len() + 32;
    }

    fn rows(&self) -> usize {
        self.id.len()
    }

    fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    fn flush(&mut self) -> Result<RecordBatch, ArrowError> {
        self.bytes = 0;
        let cols: Vec<ArrayRef> = vec![
            self.id.finish()?,
            Arc::new(self.version_id.finish()),
            Arc::new(self.last_updated.finish()),
            self.resource.finish()?,
        ];
        RecordBatch::try_new(self.schema.clone(), cols)
    }

    fn reclaim(&mut self) {
        self.id.reclaim();
        self.resource.reclaim();
    }

    fn layout(&self) -> &'static str {
        "raw/1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn string_column_reuses_its_buffers_once_the_batch_is_dropped() {
        let mut c = StringColumn::new();
        c.append(b"alpha");
        c.append("b\u{e9}ta".as_bytes());
        assert_eq!(c.len(), 2);
        let a = c.finish().unwrap();
        let s = a.as_string::<i32>();
        assert_eq!((s.value(0), s.value(1), s.len()), ("alpha", "b\u{e9}ta", 2));
        assert_eq!(c.len(), 0);
        drop(a);
        c.reclaim();
        assert!(c.values.capacity() >= 11 && c.offsets.capacity() >= 3);
        let (values, offsets) = (c.values.as_ptr(), c.offsets.as_ptr());
        c.append(b"x");
        assert_eq!((c.values.as_ptr(), c.offsets.as_ptr()), (values, offsets));
        let a = c.finish().unwrap();
        assert_eq!(a.as_string::<i32>().value(0), "x");
        // Still shared: nothing is taken back, the next batch starts fresh and correct.
        c.reclaim();
        c.append(b"yz");
        assert_eq!(c.finish().unwrap().as_string::<i32>().value(0), "yz");
        assert_eq!(a.as_string::<i32>().value(0), "x");
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let mut c = StringColumn::new();
        c.append(b"ok");
        c.append(&[0xff, 0xfe]);
        assert!(c.finish().is_err());
    }
}
