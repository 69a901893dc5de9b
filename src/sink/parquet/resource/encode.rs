//! JSON → Arrow for the `resource` layout: one pass over the resource's original bytes with the
//! span scanner of the transform stage (no serde value, no simd-json tape: number literals are
//! read as written), appending to a tree of builders that mirrors the [`StructNode`]s.
//!
//! Every struct column gets exactly one entry per object walked: members present are appended,
//! the others get a null afterwards (a column's length tells whether its member was seen, so no
//! per-object bookkeeping is needed). A member that does not fit its column — unknown name,
//! wrong JSON kind, an integer int32 cannot hold as written, a duplicate — is copied as its
//! original text into the row's `_extra` object under its JSON Pointer.

use super::schema::{Leaf, Member, MemberKind, ResourceSchema, StructNode};
use super::values;
use crate::stage::transform::splice::{decode, skip_ws, write_str, Elements, Members};
use arrow::array::builder::NullBufferBuilder;
use arrow::array::ArrayBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, ListArray, RecordBatch,
    StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, FieldRef, Fields};
use arrow::error::ArrowError;
use std::ops::Range;
use std::sync::Arc;

/// A column builder of any shape the layout uses.
pub(super) enum Col {
    Str(StringBuilder),
    Bool(BooleanBuilder),
    I32(Int32Builder),
    F64(Float64Builder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Struct(StructCol),
    List(Box<ListCol>),
}

pub(super) struct StructCol {
    fields: Fields,
    children: Vec<Col>,
    valid: NullBufferBuilder,
}

pub(super) struct ListCol {
    field: FieldRef,
    offsets: Vec<i32>,
    valid: NullBufferBuilder,
    child: Col,
}

impl Col {
    fn new(dt: &DataType) -> Col {
        match dt {
            DataType::Utf8 => Col::Str(StringBuilder::new()),
            DataType::Boolean => Col::Bool(BooleanBuilder::new()),
            DataType::Int32 => Col::I32(Int32Builder::new()),
            DataType::Float64 => Col::F64(Float64Builder::new()),
            DataType::Date32 => Col::Date(Date32Builder::new()),
            DataType::Timestamp(_, _) => {
                Col::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            DataType::Struct(fields) => Col::Struct(StructCol {
                fields: fields.clone(),
                children: fields.iter().map(|f| Col::new(f.data_type())).collect(),
                valid: NullBufferBuilder::new(0),
            }),
            DataType::List(field) => Col::List(Box::new(ListCol {
                field: field.clone(),
                offsets: vec![0],
                valid: NullBufferBuilder::new(0),
                child: Col::new(field.data_type()),
            })),
            other => unreachable!("the resource layout has no {other} columns"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Col::Str(b) => b.len(),
            Col::Bool(b) => b.len(),
            Col::I32(b) => b.len(),
            Col::F64(b) => b.len(),
            Col::Ts(b) => b.len(),
            Col::Date(b) => b.len(),
            Col::Struct(s) => s.valid.len(),
            Col::List(l) => l.valid.len(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Col::Str(b) => b.append_null(),
            Col::Bool(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Ts(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Struct(s) => {
                s.children.iter_mut().for_each(Col::append_null);
                s.valid.append_null();
            }
            Col::List(l) => {
                l.offsets.push(*l.offsets.last().unwrap_or(&0));
                l.valid.append_null();
            }
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Struct(s) => {
                let children = s
                    .children
                    .iter_mut()
                    .map(Col::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                let nulls: Option<NullBuffer> = s.valid.finish();
                Arc::new(StructArray::try_new(s.fields.clone(), children, nulls)?)
            }
            Col::List(l) => {
                let offsets = std::mem::replace(&mut l.offsets, vec![0]);
                let child = l.child.finish()?;
                Arc::new(ListArray::try_new(
                    l.field.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    child,
                    l.valid.finish(),
                )?)
            }
        })
    }

    fn str(&mut self) -> &mut StringBuilder {
        match self {
            Col::Str(b) => b,
            _ => unreachable!("a string column"),
        }
    }

    fn list(&mut self) -> &mut ListCol {
        match self {
            Col::List(l) => l,
            _ => unreachable!("a list column"),
        }
    }
}

impl ListCol {
    fn close_item(&mut self) {
        self.offsets.push(self.child.len() as i32);
        self.valid.append_non_null();
    }
}

/// Does `val` (a primitive's JSON text) fit the leaf's column?
fn prim_fits(leaf: Leaf, val: &[u8]) -> bool {
    match leaf {
        Leaf::Bool => val == b"true" || val == b"false",
        Leaf::Int => values::int32(val).is_some(),
        Leaf::Dec => values::decimal(val).is_some(),
        Leaf::Str | Leaf::Date | Leaf::DateTime | Leaf::Instant => val.first() == Some(&b'"'),
    }
}

/// Appends a fitting primitive to its value column and, for text-keeping leaves, `text`.
fn prim_append(leaf: Leaf, col: &mut Col, text: Option<&mut Col>, val: &[u8]) {
    match (leaf, col) {
        (Leaf::Str, Col::Str(b)) => b.append_value(decode(val)),
        (Leaf::Bool, Col::Bool(b)) => b.append_value(val == b"true"),
        (Leaf::Int, Col::I32(b)) => b.append_option(values::int32(val)),
        (Leaf::Dec, Col::F64(b)) => {
            b.append_option(values::decimal(val));
            if let Some(t) = text {
                // A number literal is ASCII.
                t.str()
                    .append_value(std::str::from_utf8(val).unwrap_or_default());
            }
        }
        (Leaf::Date, Col::Date(b)) => {
            let s = decode(val);
            b.append_option(values::date_days(&s));
            if let Some(t) = text {
                t.str().append_value(&s);
            }
        }
        (Leaf::DateTime | Leaf::Instant, Col::Ts(b)) => {
            let s = decode(val);
            let micros = if leaf == Leaf::Instant {
                crate::fhir::instant::parse_instant_micros(&s).ok()
            } else {
                values::date_time_micros(&s)
            };
            b.append_option(micros);
            if let Some(t) = text {
                t.str().append_value(&s);
            }
        }
        _ => unreachable!("column built from the same leaf"),
    }
}

/// Appends `/key` to a JSON Pointer (`~` → `~0`, `/` → `~1`).
fn push_key(ptr: &mut Vec<u8>, key: &str) {
    ptr.push(b'/');
    for b in key.bytes() {
        match b {
            b'~' => ptr.extend_from_slice(b"~0"),
            b'/' => ptr.extend_from_slice(b"~1"),
            b => ptr.push(b),
        }
    }
}

/// The walk over one resource: the line, the current JSON Pointer, the row's `_extra` text.
struct Walk<'a> {
    s: &'a [u8],
    ptr: &'a mut Vec<u8>,
    extra: &'a mut Vec<u8>,
}

impl Walk<'_> {
    /// Records member `key` of the object at the current pointer as leftover text.
    fn leftover(&mut self, key: &str, val: Range<usize>) {
        self.extra
            .push(if self.extra.is_empty() { b'{' } else { b',' });
        let at = self.ptr.len();
        push_key(self.ptr, key);
        // The pointer is made of `&str` keys and digits: UTF-8.
        write_str(
            self.extra,
            std::str::from_utf8(self.ptr).unwrap_or_default(),
        );
        self.ptr.truncate(at);
        self.extra.push(b':');
        self.extra.extend_from_slice(&self.s[val]);
    }

    /// Appends the object at `start` as one row of `cols` (the node's columns).
    fn object(&mut self, node: &StructNode, cols: &mut [Col], start: usize, root: bool) {
        let row = cols.first().map_or(0, Col::len);
        for m in Members::new(self.s, start) {
            let key = decode(&self.s[m.key.clone()]);
            if root && key == "resourceType" {
                continue;
            }
            let fitted = match node.member(&key) {
                Some(mem) if cols[mem.col].len() == row => self.member(mem, cols, m.value.clone()),
                _ => false,
            };
            if !fitted {
                self.leftover(&key, m.value);
            }
        }
        for mem in &node.members {
            if cols[mem.col].len() == row {
                cols[mem.col].append_null();
                if let MemberKind::Prim(l) = mem.kind {
                    if l.has_text() {
                        cols[mem.col + 1].append_null();
                    }
                }
            }
        }
    }

    /// Appends one member's value; `false` (and nothing appended) when it does not fit.
    fn member(&mut self, mem: &Member, cols: &mut [Col], v: Range<usize>) -> bool {
        let s = self.s;
        let val = &s[v.clone()];
        let first = val.first().copied();
        let items = || Elements::new(s, v.start);
        match (&mem.kind, mem.many) {
            (MemberKind::Prim(leaf), false) => {
                if !prim_fits(*leaf, val) {
                    return false;
                }
                let (a, b) = cols.split_at_mut(mem.col + 1);
                prim_append(
                    *leaf,
                    &mut a[mem.col],
                    b.first_mut().filter(|_| leaf.has_text()),
                    val,
                );
            }
            (MemberKind::Prim(leaf), true) => {
                if first != Some(b'[')
                    || !items().all(|r| &s[r.clone()] == b"null" || prim_fits(*leaf, &s[r]))
                {
                    return false;
                }
                let (a, b) = cols.split_at_mut(mem.col + 1);
                let values = a[mem.col].list();
                let mut text = b.first_mut().filter(|_| leaf.has_text()).map(Col::list);
                for r in items() {
                    let item = &s[r];
                    if item == b"null" {
                        values.child.append_null();
                        if let Some(t) = text.as_mut() {
                            t.child.append_null();
                        }
                    } else {
                        prim_append(
                            *leaf,
                            &mut values.child,
                            text.as_mut().map(|t| &mut t.child),
                            item,
                        );
                    }
                }
                values.close_item();
                if let Some(t) = text {
                    t.close_item();
                }
            }
            (MemberKind::Struct(node), false) => {
                if first != Some(b'{') {
                    return false;
                }
                let Col::Struct(sc) = &mut cols[mem.col] else {
                    unreachable!("a struct column")
                };
                let at = self.ptr.len();
                push_key(self.ptr, &mem.name);
                self.object(node, &mut sc.children, v.start, false);
                sc.valid.append_non_null();
                self.ptr.truncate(at);
            }
            (MemberKind::Struct(node), true) => {
                if first != Some(b'[') || !items().all(|r| s[r.start] == b'{') {
                    return false;
                }
                let list = cols[mem.col].list();
                let Col::Struct(sc) = &mut list.child else {
                    unreachable!("a list of structs")
                };
                let at = self.ptr.len();
                push_key(self.ptr, &mem.name);
                for (i, r) in items().enumerate() {
                    let at_item = self.ptr.len();
                    self.ptr.push(b'/');
                    self.ptr.extend_from_slice(i.to_string().as_bytes());
                    self.object(node, &mut sc.children, r.start, false);
                    sc.valid.append_non_null();
                    self.ptr.truncate(at_item);
                }
                self.ptr.truncate(at);
                list.close_item();
            }
            (MemberKind::Json, _) => match std::str::from_utf8(val) {
                Ok(t) => cols[mem.col].str().append_value(t),
                Err(_) => return false,
            },
            (MemberKind::JsonItems, _) => {
                if first != Some(b'[') || std::str::from_utf8(val).is_err() {
                    return false;
                }
                let list = cols[mem.col].list();
                for r in items() {
                    // UTF-8 checked for the whole array above.
                    let t = std::str::from_utf8(&s[r]).unwrap_or_default();
                    list.child.str().append_value(t);
                }
                list.close_item();
            }
        }
        true
    }
}

/// Encodes resources of one type into record batches of its [`ResourceSchema`].
pub struct ResourceEncoder {
    schema: Arc<ResourceSchema>,
    cols: Vec<Col>,
    extra: StringBuilder,
    ptr: Vec<u8>,
    extra_buf: Vec<u8>,
    rows: usize,
    bytes: usize,
}

impl ResourceEncoder {
    /// An empty encoder for `schema`.
    pub fn new(schema: Arc<ResourceSchema>) -> Self {
        let cols = schema
            .root
            .fields
            .iter()
            .map(|f| Col::new(f.data_type()))
            .collect();
        ResourceEncoder {
            schema,
            cols,
            extra: StringBuilder::new(),
            ptr: Vec::new(),
            extra_buf: Vec::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// The schema batches are made in.
    pub fn resource_schema(&self) -> &Arc<ResourceSchema> {
        &self.schema
    }

    /// Appends one resource given as its JSON text (an object; the checker guarantees it).
    pub fn append_json(&mut self, json: &[u8]) {
        self.ptr.clear();
        self.extra_buf.clear();
        let start = skip_ws(json, 0);
        let mut walk = Walk {
            s: json,
            ptr: &mut self.ptr,
            extra: &mut self.extra_buf,
        };
        walk.object(&self.schema.root, &mut self.cols, start, true);
        if self.extra_buf.is_empty() {
            self.extra.append_null();
        } else {
            self.extra_buf.push(b'}');
            self.extra
                .append_value(String::from_utf8_lossy(&self.extra_buf));
        }
        self.rows += 1;
        self.bytes += json.len() + 64;
    }

    /// Rows appended since the last flush.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes held.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// The appended rows as a record batch.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut arrays = self
            .cols
            .iter_mut()
            .map(Col::finish)
            .collect::<Result<Vec<_>, _>>()?;
        arrays.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.arrow.clone(), arrays)
    }
}
