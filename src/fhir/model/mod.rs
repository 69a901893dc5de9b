//! The FHIR R4 model: every resource, data type and backbone element with its elements (JSON
//! names, types, cardinality, choice groups), the primitive types with their value patterns,
//! and the codes of required bindings on `code` elements.
//!
//! The model is generated from the official definitions by [`generate`] and committed as
//! `r4.model` (compact sorted lines, see the format in `generate.rs`); the binary embeds that
//! file and [`Model::r4`] parses it once into indexed tables. Choice elements are expanded to
//! their JSON names (`value[x]` → `valueQuantity`, ...), content references resolved to the
//! backbone type they name, and each type's elements sorted by JSON name and found through a
//! [`NameIndex`] hash (as are value-set codes and, in `fhir`, the resource types).

pub mod generate;

use std::collections::HashMap;
use std::sync::OnceLock;

/// The committed model text.
pub const R4_MODEL: &str = include_str!("r4.model");

/// Index of a type in [`Model::types`].
pub type TypeId = u16;

/// Why the model text could not be read (only possible for a hand-edited `r4.model`).
#[derive(Debug, thiserror::Error)]
#[error("r4.model line {line}: {message}")]
pub struct ModelError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The FHIR primitive types. Their JSON representation and value rules are fixed by the
/// specification; the model records which one each element uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    /// `base64Binary`
    Base64Binary,
    /// `boolean`
    Boolean,
    /// `canonical`
    Canonical,
    /// `code`
    Code,
    /// `date`
    Date,
    /// `dateTime`
    DateTime,
    /// `decimal`
    Decimal,
    /// `id`
    Id,
    /// `instant`
    Instant,
    /// `integer`
    Integer,
    /// `markdown`
    Markdown,
    /// `oid`
    Oid,
    /// `positiveInt`
    PositiveInt,
    /// `string`
    String,
    /// `time`
    Time,
    /// `unsignedInt`
    UnsignedInt,
    /// `uri`
    Uri,
    /// `url`
    Url,
    /// `uuid`
    Uuid,
    /// `xhtml` (only `Narrative.div`)
    Xhtml,
}

impl Primitive {
    fn from_name(name: &str) -> Option<Primitive> {
        use Primitive::*;
        Some(match name {
            "base64Binary" => Base64Binary,
            "boolean" => Boolean,
            "canonical" => Canonical,
            "code" => Code,
            "date" => Date,
            "dateTime" => DateTime,
            "decimal" => Decimal,
            "id" => Id,
            "instant" => Instant,
            "integer" => Integer,
            "markdown" => Markdown,
            "oid" => Oid,
            "positiveInt" => PositiveInt,
            "string" => String,
            "time" => Time,
            "unsignedInt" => UnsignedInt,
            "uri" => Uri,
            "url" => Url,
            "uuid" => Uuid,
            "xhtml" => Xhtml,
            _ => return None,
        })
    }
}

/// What kind of type a [`TypeDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A primitive: a JSON string, number or boolean (plus `_name` for id/extensions).
    Primitive(Primitive),
    /// A complex data type (`HumanName`, `Quantity`, ...).
    Complex,
    /// A resource (`Patient`, ...).
    Resource,
    /// An anonymous backbone element, named by its path (`Patient.contact`).
    Backbone,
}

/// The type of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// A type of the model.
    Type(TypeId),
    /// Any resource, told by its `resourceType` (`contained`, `Bundle.entry.resource`).
    Resource,
}

/// Upper cardinality meaning "unbounded".
pub const MANY: u32 = u32::MAX;

/// One JSON property of a type. Choice elements appear once per variant.
#[derive(Debug, Clone)]
pub struct Element {
    /// The JSON property name (`valueQuantity` for a variant of `value[x]`).
    pub name: String,
    /// Its type.
    pub ty: ElemType,
    /// The primitive of its type, when the type is one (saves a type lookup per value).
    pub primitive: Option<Primitive>,
    /// Minimum cardinality (0 for choice variants; the group carries the minimum).
    pub min: u32,
    /// Maximum cardinality, [`MANY`] for `*`.
    pub max: u32,
    /// The choice group (index into [`TypeDef::choices`]) of a variant.
    pub choice: Option<u8>,
    /// Required binding: index into [`Model::value_sets`].
    pub value_set: Option<u32>,
    /// Bit in the "seen required elements" mask when `min ≥ 1`.
    pub required_bit: Option<u8>,
}

/// A choice element such as `value[x]`: exactly one variant may be present.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The element's name with `[x]`, e.g. `value[x]`.
    pub name: String,
    /// Minimum cardinality of the group.
    pub min: u32,
}

/// A type of the model.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// `Patient`, `HumanName`, `date`, `Patient.contact`.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// For primitives: the regular expression of the value from the definitions.
    pub pattern: Option<String>,
    /// Elements sorted by JSON name.
    pub elements: Vec<Element>,
    /// Choice groups.
    pub choices: Vec<Choice>,
    /// Elements with `min ≥ 1` (indices into `elements`), in bit order.
    pub required: Vec<u16>,
    /// All bits of `required` set: the "seen required elements" mask of a complete object.
    pub required_mask: u64,
    /// The bits of the choice groups with a minimum of 1.
    pub required_choices: u64,
    /// `elements` by name.
    index: NameIndex,
}

impl TypeDef {
    /// The FHIRPath name of choice group `group` (`value` for `value[x]`).
    pub fn choice_base(&self, group: u8) -> Option<&str> {
        self.choices
            .get(usize::from(group))
            .and_then(|c| c.name.strip_suffix("[x]"))
    }

    /// The position in `elements` of the element with this JSON name.
    #[inline]
    pub fn position(&self, json_name: &str) -> Option<usize> {
        self.index.find(json_name, |i| &self.elements[i].name)
    }

    /// The element with this JSON name.
    #[inline]
    pub fn element(&self, json_name: &str) -> Option<&Element> {
        self.index
            .find(json_name, |i| &self.elements[i].name)
            .map(|i| &self.elements[i])
    }
}

/// The codes of a value set, sorted.
#[derive(Debug, Clone)]
pub struct ValueSet {
    /// Short name (`administrative-gender`) or canonical URL.
    pub name: String,
    /// Codes, sorted.
    pub codes: Vec<String>,
    index: NameIndex,
}

impl ValueSet {
    /// A value set of these codes.
    pub fn new(name: String, mut codes: Vec<String>) -> Self {
        codes.sort();
        let index = NameIndex::new(codes.iter().map(String::as_str));
        ValueSet { name, codes, index }
    }

    /// Whether `code` is in the set.
    #[inline]
    pub fn contains(&self, code: &str) -> bool {
        self.index.find(code, |i| &self.codes[i]).is_some()
    }
}

/// A hash index over a fixed list of names (a type's elements, a value set's codes, the
/// resource types): open addressing with linear probing, a power-of-two table at least twice
/// the list's length. Each slot keeps the name's length and its first and last 8 bytes (what
/// the hash is made of), so a lookup reads the key once, touches one table line and, for
/// names of up to 16 bytes, needs no string comparison at all. A binary search compared
/// ~log2(n) strings behind pointers instead: the validator's biggest cost before (issue 3).
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    slots: Vec<Slot>,
}

/// One slot of a [`NameIndex`]; `pos == u16::MAX` when empty.
#[derive(Debug, Clone, Copy)]
struct Slot {
    head: u64,
    tail: u64,
    len: u32,
    pos: u16,
}

const EMPTY_SLOT: Slot = Slot {
    head: 0,
    tail: 0,
    len: 0,
    pos: u16::MAX,
};

/// The first and last 8 bytes of `s`. Below 8 bytes, `tail` is 0 and `head` holds every
/// byte, read in at most two loads (with the length, which the slots compare too, it tells
/// such names apart exactly): the first and last 4 bytes from 4 bytes up, else the first,
/// middle and last byte.
#[inline]
fn head_tail(s: &[u8]) -> (u64, u64) {
    let n = s.len();
    let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            s[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    };
    match n {
        8.. => (word(0), word(n - 8)),
        4..=7 => (half(0) | half(n - 4) << 32, 0),
        1..=3 => (
            u64::from(s[0]) | u64::from(s[n / 2]) << 8 | u64::from(s[n - 1]) << 16,
            0,
        ),
        0 => (0, 0),
    }
}

#[inline]
fn slot_hash(head: u64, tail: u64, len: usize) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let h = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(K);
    (h ^ (h >> 29)) as usize
}

impl NameIndex {
    /// Indexes `names` (positions 0, 1, ...; fewer than 65,535 names).
    pub fn new<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> Self {
        assert!(names.len() < usize::from(u16::MAX), "too many names");
        let size = (names.len() * 2).next_power_of_two().max(2);
        let mut slots = vec![EMPTY_SLOT; size];
        for (n, name) in names.enumerate() {
            let (head, tail) = head_tail(name.as_bytes());
            let mut i = slot_hash(head, tail, name.len()) & (size - 1);
            while slots[i].pos != u16::MAX {
                i = (i + 1) & (size - 1);
            }
            slots[i] = Slot {
                head,
                tail,
                len: name.len() as u32,
                pos: n as u16,
            };
        }
        NameIndex { slots }
    }

    /// The position of `key`, given the name at each position (only read for names longer
    /// than 16 bytes).
    #[inline]
    pub fn find<'a>(&self, key: &str, name_at: impl Fn(usize) -> &'a str) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let (head, tail) = head_tail(key.as_bytes());
        let mut i = slot_hash(head, tail, key.len()) & mask;
        loop {
            let s = self.slots[i];
            if s.pos == u16::MAX {
                return None;
            }
            if s.head == head
                && s.tail == tail
                && s.len as usize == key.len()
                && (key.len() <= 16 || name_at(usize::from(s.pos)) == key)
            {
                return Some(usize::from(s.pos));
            }
            i = (i + 1) & mask;
        }
    }
}

/// The indexed R4 model.
#[derive(Debug)]
pub struct Model {
    /// All types, in name order.
    pub types: Vec<TypeDef>,
    /// Value sets of required bindings.
    pub value_sets: Vec<ValueSet>,
    by_name: crate::util::hash::FastMap<String, TypeId>,
}

/// Upper-cases the first letter: the type part of a choice variant's name.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Model {
    /// The committed R4 model, parsed on first use.
    pub fn r4() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            Model::parse(R4_MODEL).expect("the committed r4.model parses (checked by tests)")
        })
    }

    /// A type by name.
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.by_name.get(name).copied()
    }

    /// A type by id.
    pub fn get(&self, id: TypeId) -> &TypeDef {
        &self.types[id as usize]
    }

    /// Parses the compact model text.
    pub fn parse(text: &str) -> Result<Model, ModelError> {
        let err = |line: usize, message: String| ModelError { line, message };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h == generate::HEADER => {}
            _ => {
                return Err(err(
                    1,
                    format!("expected the header {:?}", generate::HEADER),
                ))
            }
        }
        // First pass: type names, so element types can be resolved in any order.
        let mut by_name = crate::util::hash::FastMap::default();
        let mut types = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("type ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| err(n + 1, "type line needs a name and a kind".into()))?;
                let kind = match kind {
                    "complex" => Kind::Complex,
                    "resource" => Kind::Resource,
                    "backbone" => Kind::Backbone,
                    "primitive" => Kind::Primitive(
                        Primitive::from_name(name)
                            .ok_or_else(|| err(n + 1, format!("unknown primitive {name}")))?,
                    ),
                    k => return Err(err(n + 1, format!("unknown kind {k}"))),
                };
                let id = TypeId::try_from(types.len())
                    .map_err(|_| err(n + 1, "too many types".into()))?;
                by_name.insert(name.to_string(), id);
                types.push(TypeDef {
                    name: name.to_string(),
                    kind,
                    pattern: None,
                    elements: Vec::new(),
                    choices: Vec::new(),
                    required: Vec::new(),
                    required_mask: 0,
                    required_choices: 0,
                    index: NameIndex::default(),
                });
            }
        }
        let mut vs_index: HashMap<String, u32> = HashMap::new();
        let mut value_sets = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("valueset ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap_or_default().to_string();
                let codes: Vec<String> = parts.map(String::from).collect();
                if codes.is_empty() {
                    return Err(err(n + 1, format!("value set {name} has no codes")));
                }
                vs_index.insert(name.clone(), value_sets.len() as u32);
                value_sets.push(ValueSet::new(name, codes));
            }
        }
        let mut current: Option<usize> = None;
        for (n, line) in lines {
            let n = n + 1;
            if let Some(name) = line.strip_prefix("type ") {
                let name = name.split(' ').next().unwrap_or_default();
                current = by_name.get(name).map(|&i| i as usize);
            } else if let Some(p) = line.strip_prefix("pattern ") {
                let t = current.ok_or_else(|| err(n, "pattern outside a type".into()))?;
                types[t].pattern = Some(p.to_string());
            } else if let Some(rest) = line.strip_prefix("elem ") {
                let t = current.ok_or_else(|| err(n, "elem outside a type".into()))?;
                let f: Vec<&str> = rest.split(' ').collect();
                if f.len() < 4 || f.len() > 5 {
                    return Err(err(
                        n,
                        "elem needs name, min, max, types [, value set]".into(),
                    ));
                }
                let min: u32 = f[1]
                    .parse()
                    .map_err(|_| err(n, format!("bad min {}", f[1])))?;
                let max: u32 = match f[2] {
                    "*" => MANY,
                    m => m.parse().map_err(|_| err(n, format!("bad max {m}")))?,
                };
                let value_set = match f.get(4) {
                    Some(vs) => Some(
                        *vs_index
                            .get(*vs)
                            .ok_or_else(|| err(n, format!("unknown value set {vs}")))?,
                    ),
                    None => None,
                };
                let resolve = |ty: &str| -> Result<(ElemType, Option<Primitive>), ModelError> {
                    if ty == "Resource" {
                        return Ok((ElemType::Resource, None));
                    }
                    by_name
                        .get(ty)
                        .map(|&i| (ElemType::Type(i), Primitive::from_name(ty)))
                        .ok_or_else(|| err(n, format!("unknown type {ty}")))
                };
                let def = &mut types[t];
                if let Some(base) = f[0].strip_suffix("[x]") {
                    let group = u8::try_from(def.choices.len())
                        .ok()
                        .filter(|&g| g < 64)
                        .ok_or_else(|| err(n, "more than 64 choice groups".into()))?;
                    def.choices.push(Choice {
                        name: f[0].to_string(),
                        min,
                    });
                    for ty in f[3].split(',') {
                        let (elem_type, primitive) = resolve(ty)?;
                        def.elements.push(Element {
                            name: format!("{base}{}", capitalized(ty)),
                            ty: elem_type,
                            primitive,
                            min: 0,
                            max,
                            choice: Some(group),
                            value_set,
                            required_bit: None,
                        });
                    }
                } else {
                    if f[3].contains(',') {
                        return Err(err(n, format!("{} has several types but no [x]", f[0])));
                    }
                    let (elem_type, primitive) = resolve(f[3])?;
                    def.elements.push(Element {
                        name: f[0].to_string(),
                        ty: elem_type,
                        primitive,
                        min,
                        max,
                        choice: None,
                        value_set,
                        required_bit: None,
                    });
                }
            } else if !line.starts_with("valueset ") {
                return Err(err(n, format!("unrecognised line {line:?}")));
            }
        }
        for def in &mut types {
            def.elements.sort_by(|a, b| a.name.cmp(&b.name));
            for i in 0..def.elements.len() {
                if def.elements[i].min > 0 {
                    let bit = def.required.len();
                    if bit >= 64 {
                        return Err(err(
                            0,
                            format!("{}: more than 64 required elements", def.name),
                        ));
                    }
                    def.elements[i].required_bit = Some(bit as u8);
                    def.required.push(i as u16);
                    def.required_mask |= 1 << bit;
                }
            }
            for (g, c) in def.choices.iter().enumerate() {
                if c.min > 0 {
                    def.required_choices |= 1 << g;
                }
            }
            def.index = NameIndex::new(def.elements.iter().map(|e| e.name.as_str()));
        }
        Ok(Model {
            types,
            value_sets,
            by_name,
        })
    }
}

#[cfg(test)]
mod tests;
