//! The fixed Arrow schema of one resource type in the `resource` layout, derived from the R4
//! model (never from the data): a tree of [`StructNode`]s that both the encoder (JSON → Arrow)
//! and the decoder (Arrow → JSON) walk, so the two cannot disagree about a column.
//!
//! Mapping (ARCHITECTURE.md "Lossless typed Parquet" has the table and the reasons):
//! * complex types and backbone elements → struct, `0..*` → list, choice variants → one field
//!   each under their JSON name (`valueQuantity`, `valueString`, …);
//! * `decimal` → float64 plus `<name>_text` (the literal as written), `instant`/`dateTime` →
//!   timestamp(µs, UTC) plus `<name>_text`, `date` → date32 plus `<name>_text`, `integer`,
//!   `positiveInt`, `unsignedInt` → int32, `boolean` → bool, every other primitive → string;
//! * a primitive's `_name` sibling (its id and extensions) → a string of JSON text on the
//!   resource itself; deeper in the tree it goes to `_extra` (rare, and a column per primitive
//!   would double the schema's width);
//! * `contained` and other resource-typed elements → list of JSON text, one per resource;
//! * `extension` of the resource → typed list of Extension (one nested level typed);
//!   `extension` anywhere else and every `modifierExtension` → JSON text;
//! * open choices (`Extension.value[x]`, `ElementDefinition.fixed[x]`, …, 40+ variants): the
//!   primitive variants and CodeableConcept, Coding, Period, Quantity typed, the rest JSON text;
//! * a backbone element met for the `max_depth`-th time on a path (Questionnaire.item.item.item)
//!   and a data type inside itself (Identifier.assigner.identifier) → JSON text; so is
//!   `Reference.identifier` (logical references are rare; typed it would add ~20 columns to
//!   every reference);
//! * the root gets `_extra`: members the schema has no place for, as a JSON object from JSON
//!   Pointer to the member's original text.

use crate::fhir::model::{ElemType, Kind, Model, NameIndex, Primitive, TypeId, MANY};
use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use std::sync::Arc;

/// Version of this mapping, written to the file metadata; bump when the mapping changes.
pub const LAYOUT: &str = "resource/1";

/// Default of `max_depth`: how many times one type may appear on a path before JSON text.
pub const DEFAULT_MAX_DEPTH: u32 = 3;

/// Name of the root column holding members the schema cannot hold.
pub const EXTRA: &str = "_extra";

/// A choice with at least this many variants is an open type (`Extension.value[x]`,
/// `ElementDefinition.fixed[x]`, `Parameters.parameter.value[x]`, …): its complex variants
/// outside [`TYPED_EXTENSION_VALUES`] are JSON text, else each would add a subtree.
const OPEN_CHOICE: usize = 40;

/// Complex variants of open choices that get typed fields (the rest are JSON text).
const TYPED_EXTENSION_VALUES: &[&str] = &["CodeableConcept", "Coding", "Period", "Quantity"];

/// How a primitive value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// string (every text-like primitive)
    Str,
    /// boolean
    Bool,
    /// int32 (`integer`, `positiveInt`, `unsignedInt`)
    Int,
    /// float64 + text
    Dec,
    /// date32 + text
    Date,
    /// timestamp(µs, UTC) + text (`dateTime`)
    DateTime,
    /// timestamp(µs, UTC) + text (`instant`)
    Instant,
}

impl Leaf {
    fn of(p: Primitive) -> Leaf {
        match p {
            Primitive::Boolean => Leaf::Bool,
            Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt => Leaf::Int,
            Primitive::Decimal => Leaf::Dec,
            Primitive::Date => Leaf::Date,
            Primitive::DateTime => Leaf::DateTime,
            Primitive::Instant => Leaf::Instant,
            _ => Leaf::Str,
        }
    }

    /// Whether the leaf has a `<name>_text` column beside the typed one.
    pub fn has_text(self) -> bool {
        matches!(
            self,
            Leaf::Dec | Leaf::Date | Leaf::DateTime | Leaf::Instant
        )
    }

    fn data_type(self) -> DataType {
        match self {
            Leaf::Str => DataType::Utf8,
            Leaf::Bool => DataType::Boolean,
            Leaf::Int => DataType::Int32,
            Leaf::Dec => DataType::Float64,
            Leaf::Date => DataType::Date32,
            Leaf::DateTime | Leaf::Instant => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
        }
    }
}

/// What a JSON member is stored as.
#[derive(Debug)]
pub enum MemberKind {
    /// A primitive (column `col`, and `col + 1` for the text when [`Leaf::has_text`]).
    Prim(Leaf),
    /// A nested object.
    Struct(Arc<StructNode>),
    /// The member's value as JSON text (one string, whatever the value is).
    Json,
    /// An array whose items are each kept as JSON text (list of strings).
    JsonItems,
}

/// One JSON member of an object.
#[derive(Debug)]
pub struct Member {
    /// JSON name.
    pub name: String,
    /// Storage.
    pub kind: MemberKind,
    /// `0..*`: the JSON value is an array and the column a list.
    pub many: bool,
    /// First column of the member in the struct.
    pub col: usize,
}

/// An object type: its members and the Arrow fields they occupy.
#[derive(Debug)]
pub struct StructNode {
    /// Members in column order.
    pub members: Vec<Member>,
    /// Arrow fields, one or two per member.
    pub fields: Fields,
    index: NameIndex,
}

impl StructNode {
    /// The member with this JSON name.
    #[inline]
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.index
            .find(name, |i| &self.members[i].name)
            .map(|i| &self.members[i])
    }

    /// Number of leaf columns below this node (a measure of the schema's width).
    pub fn leaves(&self) -> usize {
        self.members
            .iter()
            .map(|m| match &m.kind {
                MemberKind::Prim(l) => 1 + usize::from(l.has_text()),
                MemberKind::Struct(s) => s.leaves(),
                MemberKind::Json | MemberKind::JsonItems => 1,
            })
            .sum()
    }
}

/// The whole schema of one resource type.
#[derive(Debug)]
pub struct ResourceSchema {
    /// Resource type name.
    pub type_name: String,
    /// The root object (without `resourceType`, which the dataset's folder names).
    pub root: Arc<StructNode>,
    /// The Arrow schema: the root's fields plus `_extra`.
    pub arrow: Arc<Schema>,
    /// `max_depth` it was built with.
    pub max_depth: u32,
    /// Hex FNV-1a of the Arrow schema's text: equal fingerprints, identical columns.
    pub fingerprint: String,
}

fn list_of(dt: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", dt, true)))
}

/// Where an `extension` element sits, which decides whether its extensions are typed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The resource itself: typed extensions.
    Typed,
    /// An Extension (nested extensions: typed one level down).
    Extension,
    /// A data type: extensions as JSON text.
    DataType,
}

struct Builder<'m> {
    model: &'m Model,
    max_depth: u32,
    stack: Vec<TypeId>,
    extension: TypeId,
}

impl Builder<'_> {
    fn node(&mut self, t: TypeId, root: bool) -> StructNode {
        let def = self.model.get(t);
        let owner = match def.kind {
            Kind::Resource if root => Owner::Typed,
            _ if t == self.extension => Owner::Extension,
            _ => Owner::DataType,
        };
        let mut members = Vec::new();
        let mut fields = Vec::new();
        self.stack.push(t);
        for e in &def.elements {
            let many = e.max == MANY || e.max > 1;
            let wrap = |dt: DataType| if many { list_of(dt) } else { dt };
            let json_kind = if many {
                MemberKind::JsonItems
            } else {
                MemberKind::Json
            };
            match e.ty {
                ElemType::Resource => {
                    add(
                        &mut members,
                        &mut fields,
                        &e.name,
                        json_kind,
                        many,
                        DataType::Utf8,
                    );
                }
                ElemType::Type(ty) => match e.primitive {
                    Some(p) => {
                        let leaf = Leaf::of(p);
                        let (n, k) = (&e.name, MemberKind::Prim(leaf));
                        add(&mut members, &mut fields, n, k, many, leaf.data_type());
                        if leaf.has_text() {
                            fields.push(Field::new(
                                format!("{}_text", e.name),
                                wrap(DataType::Utf8),
                                true,
                            ));
                        }
                        // The `_name` sibling (id and extensions of the primitive) has a column
                        // on the resource itself; deeper ones are rare and go to `_extra`.
                        if !root {
                            continue;
                        }
                        let name = format!("_{}", e.name);
                        let k = MemberKind::Json;
                        add(&mut members, &mut fields, &name, k, false, DataType::Utf8);
                    }
                    None => {
                        let seen = self.stack.iter().filter(|&&s| s == ty).count() as u32;
                        let as_json = if e.name == "modifierExtension"
                            || (def.name == "Reference" && e.name == "identifier")
                        {
                            true
                        } else if ty == self.extension {
                            match owner {
                                Owner::Typed => false,
                                Owner::Extension => seen >= 2,
                                Owner::DataType => true,
                            }
                        } else if e.choice.is_some_and(|g| {
                            def.elements.iter().filter(|x| x.choice == Some(g)).count()
                                >= OPEN_CHOICE
                        }) {
                            !TYPED_EXTENSION_VALUES.contains(&self.model.get(ty).name.as_str())
                        } else if self.model.get(ty).kind == Kind::Complex {
                            seen >= 1
                        } else {
                            seen >= self.max_depth
                        };
                        if as_json {
                            let n = &e.name;
                            add(
                                &mut members,
                                &mut fields,
                                n,
                                json_kind,
                                many,
                                DataType::Utf8,
                            );
                        } else {
                            let child = Arc::new(self.node(ty, false));
                            let dt = DataType::Struct(child.fields.clone());
                            let (n, k) = (&e.name, MemberKind::Struct(child));
                            add(&mut members, &mut fields, n, k, many, dt);
                        }
                    }
                },
            }
        }
        self.stack.pop();
        let index = NameIndex::new(members.iter().map(|m| m.name.as_str()));
        StructNode {
            members,
            fields: Fields::from(fields),
            index,
        }
    }
}

/// Appends a member and its Arrow field (a list when `many`).
fn add(
    members: &mut Vec<Member>,
    fields: &mut Vec<Field>,
    name: &str,
    kind: MemberKind,
    many: bool,
    dt: DataType,
) {
    members.push(Member {
        name: name.to_string(),
        kind,
        many,
        col: fields.len(),
    });
    fields.push(Field::new(name, if many { list_of(dt) } else { dt }, true));
}

/// FNV-1a, 64 bits: fingerprints of the schema and of the model text.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Why a schema cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Not a resource type of the model.
    #[error("`{0}` is not an R4 resource type")]
    UnknownType(String),
    /// `max_depth` outside 1..=10.
    #[error("max_depth must be between 1 and 10, got {0}")]
    Depth(u32),
}

impl ResourceSchema {
    /// The schema of `type_name` with recursion cut at `max_depth` occurrences of a type.
    pub fn new(type_name: &str, max_depth: u32) -> Result<ResourceSchema, SchemaError> {
        if !(1..=10).contains(&max_depth) {
            return Err(SchemaError::Depth(max_depth));
        }
        let model = Model::r4();
        let t = model
            .type_id(type_name)
            .filter(|&t| model.get(t).kind == Kind::Resource)
            .ok_or_else(|| SchemaError::UnknownType(type_name.to_string()))?;
        let extension = model
            .type_id("Extension")
            .expect("Extension is in the model");
        let mut b = Builder {
            model,
            max_depth,
            stack: Vec::new(),
            extension,
        };
        let root = Arc::new(b.node(t, true));
        let mut fields: Vec<Field> = root.fields.iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(EXTRA, DataType::Utf8, true));
        let arrow = Schema::new(fields);
        let fingerprint = format!("{:016x}", fnv1a(format!("{arrow:?}").as_bytes()));
        Ok(ResourceSchema {
            type_name: type_name.to_string(),
            root,
            arrow: Arc::new(arrow),
            max_depth,
            fingerprint,
        })
    }
}
