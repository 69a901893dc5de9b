//! Arrow → JSON for the `resource` layout: rebuilds each row as one FHIR JSON resource, walking
//! the same [`StructNode`] tree the encoder filled. Decimals, dates and instants are written from
//! their `_text` columns (the typed columns are derived and never read back); primitive
//! extensions, JSON-text fallbacks and `_extra` members are inserted as the original text.
//!
//! Member order: `resourceType` first, then the schema's order (the R4 model lists elements by
//! name), then the object's `_extra` members. JSON objects are unordered, so the result equals
//! the input as JSON (numbers by their literal text), not byte for byte.

use super::schema::{Leaf, Member, MemberKind, ResourceSchema, StructNode};
use crate::stage::transform::splice::{decode, skip_ws, write_str, Members};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListArray, RecordBatch, StringArray,
    StructArray,
};

/// Why a batch cannot be turned back into JSON.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The batch's columns are not the schema's.
    #[error("column `{column}` is {found}, the resource layout has {expected}")]
    Column {
        /// Column name.
        column: String,
        /// Its type in the file.
        found: String,
        /// The layout's type.
        expected: String,
    },
    /// `_extra` is not a JSON object of pointers.
    #[error("row {row}: `_extra` is not a JSON object: {text}")]
    Extra {
        /// Row in the batch.
        row: usize,
        /// The first 100 characters.
        text: String,
    },
}

/// One leftover member: parent pointer, key, original text.
struct Leftover<'a> {
    parent: String,
    key: String,
    text: &'a str,
}

/// Splits `/a/0/b~1c` into (`/a/0`, `b/c`).
fn split_pointer(p: &str) -> (String, String) {
    let (parent, key) = p.rsplit_once('/').unwrap_or(("", p));
    (
        parent.to_string(),
        key.replace("~1", "/").replace("~0", "~"),
    )
}

fn leftovers(row: usize, text: &str) -> Result<Vec<Leftover<'_>>, DecodeError> {
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    if b.get(start) != Some(&b'{') {
        return Err(DecodeError::Extra {
            row,
            text: text.chars().take(100).collect(),
        });
    }
    Ok(Members::new(b, start)
        .map(|m| {
            let (parent, key) = split_pointer(&decode(&b[m.key]));
            Leftover {
                parent,
                key,
                text: &text[m.value],
            }
        })
        .collect())
}

/// Writes a row's JSON into `out`.
struct Emit<'a, 'b> {
    out: &'a mut Vec<u8>,
    ptr: String,
    extra: &'a [Leftover<'b>],
}

fn prim(leaf: Leaf, value: &dyn Array, text: Option<&dyn Array>, i: usize, out: &mut Vec<u8>) {
    match leaf {
        Leaf::Str => write_str(out, value.as_string::<i32>().value(i)),
        Leaf::Bool => {
            let b: &BooleanArray = value.as_boolean();
            out.extend_from_slice(if b.value(i) { b"true" } else { b"false" });
        }
        Leaf::Int => {
            let a: &Int32Array = value.as_primitive();
            out.extend_from_slice(a.value(i).to_string().as_bytes());
        }
        Leaf::Dec => {
            let t = text.expect("decimal has text").as_string::<i32>().value(i);
            out.extend_from_slice(t.as_bytes());
        }
        Leaf::Date | Leaf::DateTime | Leaf::Instant => {
            write_str(
                out,
                text.expect("date has text").as_string::<i32>().value(i),
            );
        }
    }
}

/// The child indices of list row `i`.
fn items(list: &ListArray, i: usize) -> std::ops::Range<usize> {
    list.value_offsets()[i] as usize..list.value_offsets()[i + 1] as usize
}

impl Emit<'_, '_> {
    fn key(&mut self, first: &mut bool, key: &str) {
        if !*first {
            self.out.push(b',');
        }
        *first = false;
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// Writes the members of row `i` of the node's columns (without braces).
    fn members(&mut self, node: &StructNode, cols: &[ArrayRef], i: usize, first: &mut bool) {
        for mem in &node.members {
            let col = &cols[mem.col];
            if col.is_null(i) {
                continue;
            }
            self.key(first, &mem.name);
            self.value(mem, cols, i);
        }
        let here = self.ptr.as_str();
        for l in self.extra.iter().filter(|l| l.parent == here) {
            if !*first {
                self.out.push(b',');
            }
            *first = false;
            write_str(self.out, &l.key);
            self.out.push(b':');
            self.out.extend_from_slice(l.text.as_bytes());
        }
    }

    fn object(&mut self, node: &StructNode, sa: &StructArray, i: usize, path: &str) {
        let at = self.ptr.len();
        self.ptr.push_str(path);
        self.out.push(b'{');
        let mut first = true;
        self.members(node, sa.columns(), i, &mut first);
        self.out.push(b'}');
        self.ptr.truncate(at);
    }

    fn value(&mut self, mem: &Member, cols: &[ArrayRef], i: usize) {
        let col = cols[mem.col].as_ref();
        let text = |c: &ArrayRef| c.clone();
        match (&mem.kind, mem.many) {
            (MemberKind::Prim(leaf), false) => {
                let t = leaf.has_text().then(|| text(&cols[mem.col + 1]));
                prim(*leaf, col, t.as_deref(), i, self.out);
            }
            (MemberKind::Prim(leaf), true) => {
                let list: &ListArray = col.as_list();
                let values = list.values();
                let texts = leaf
                    .has_text()
                    .then(|| cols[mem.col + 1].as_list::<i32>().values().clone());
                self.out.push(b'[');
                let range = items(list, i);
                for (n, j) in range.enumerate() {
                    if n > 0 {
                        self.out.push(b',');
                    }
                    if values.is_null(j) {
                        self.out.extend_from_slice(b"null");
                    } else {
                        prim(*leaf, values.as_ref(), texts.as_deref(), j, self.out);
                    }
                }
                self.out.push(b']');
            }
            (MemberKind::Struct(node), false) => {
                let sa: &StructArray = col.as_struct();
                self.object(node, sa, i, &format!("/{}", mem.name));
            }
            (MemberKind::Struct(node), true) => {
                let list: &ListArray = col.as_list();
                let sa: &StructArray = list.values().as_struct();
                let range = items(list, i);
                self.out.push(b'[');
                for (n, j) in range.enumerate() {
                    if n > 0 {
                        self.out.push(b',');
                    }
                    self.object(node, sa, j, &format!("/{}/{n}", mem.name));
                }
                self.out.push(b']');
            }
            (MemberKind::Json, _) => {
                let s: &StringArray = col.as_string();
                self.out.extend_from_slice(s.value(i).as_bytes());
            }
            (MemberKind::JsonItems, _) => {
                let list: &ListArray = col.as_list();
                let s: &StringArray = list.values().as_string();
                let range = items(list, i);
                self.out.push(b'[');
                for (n, j) in range.enumerate() {
                    if n > 0 {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(s.value(j).as_bytes());
                }
                self.out.push(b']');
            }
        }
    }
}

/// Appends every row of `batch` (in `schema`'s columns) to `out` as NDJSON lines.
pub fn write_ndjson(
    schema: &ResourceSchema,
    batch: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    for (f, want) in batch.schema().fields().iter().zip(schema.arrow.fields()) {
        if f.data_type() != want.data_type() || f.name() != want.name() {
            return Err(DecodeError::Column {
                column: want.name().clone(),
                found: format!("{}: {}", f.name(), f.data_type()),
                expected: want.data_type().to_string(),
            });
        }
    }
    if batch.num_columns() != schema.arrow.fields().len() {
        return Err(DecodeError::Column {
            column: super::schema::EXTRA.into(),
            found: format!("{} columns", batch.num_columns()),
            expected: format!("{} columns", schema.arrow.fields().len()),
        });
    }
    let cols = batch.columns();
    let extra: &StringArray = cols[cols.len() - 1].as_string();
    for i in 0..batch.num_rows() {
        let left = if extra.is_null(i) {
            Vec::new()
        } else {
            leftovers(i, extra.value(i))?
        };
        let mut e = Emit {
            out,
            ptr: String::new(),
            extra: &left,
        };
        e.out.extend_from_slice(b"{\"resourceType\":");
        write_str(e.out, &schema.type_name);
        let mut first = false;
        e.members(&schema.root, &cols[..cols.len() - 1], i, &mut first);
        out.extend_from_slice(b"}\n");
    }
    Ok(())
}
