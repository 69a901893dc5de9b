//! Record → Arrow column encoders. The Parquet sink holds one encoder per resource type behind
//! [`BatchEncoder`], so the lossless typed schema derived from the R4 model can replace the
//! `raw` layout without touching file rolling, row groups or commit.

use crate::batch::{Batch, Record};
use arrow::array::{ArrayBuilder, ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
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
    /// Takes the appended rows as a record batch.
    fn flush(&mut self) -> RecordBatch;
    /// A short name of the layout, written to the file metadata.
    fn layout(&self) -> &'static str;
}

/// The `raw` layout: typed `id`, `meta_version_id`, `meta_last_updated` (timestamp µs UTC) and
/// the whole resource as its original JSON text in `resource`, so nothing is lost.
pub struct RawEncoder {
    schema: SchemaRef,
    id: StringBuilder,
    version_id: StringBuilder,
    last_updated: TimestampMicrosecondBuilder,
    resource: StringBuilder,
    bytes: usize,
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
            id: StringBuilder::new(),
            version_id: StringBuilder::new(),
            last_updated: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            resource: StringBuilder::new(),
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
        self.id.append_value(id);
        self.version_id.append_option(batch.version_id(r));
        self.last_updated.append_option(r.last_updated);
        // The checker validated the line as UTF-8 JSON, so this cannot fail; a lossy
        // conversion would be a bug, and the conservation check would not see it, so the
        // bytes are appended as they are.
        let json = std::str::from_utf8(batch.json(r)).unwrap_or_default();
        self.resource.append_value(json);
        self.bytes += id.len() + json.len() + 32;
    }

    fn rows(&self) -> usize {
        self.id.len()
    }

    fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    fn flush(&mut self) -> RecordBatch {
        self.bytes = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.version_id.finish()),
            Arc::new(self.last_updated.finish()),
            Arc::new(self.resource.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), cols).expect("columns match the raw schema")
    }

    fn layout(&self) -> &'static str {
        "raw/1"
    }
}
