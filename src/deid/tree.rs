//! The editable element tree de-identification works on, in the shape of the FHIR element
//! model (a primitive is one element with its value and its `_name` id/extensions; array items
//! are elements of the same name), built from the simd-json tape that FHIRPath evaluates on.
//!
//! Two things the tape cannot give are recovered here: which tree element a FHIRPath result is
//! (every element records the identity of its tape value, see [`tape_key`]), and the text of
//! numbers (the tape holds `f64`; the texts are scanned from the original bytes in document
//! order, so `1.50` is written back as `1.50`). Serialisation keeps member order; a primitive's
//! `_name` is written right after `name`.

use super::error::DeidError;
use crate::fhirpath::{Json, TypeInfo, PRIMITIVE_TYPES};
use crate::util::json::write_str;
use simd_json::prelude::*;

/// Index of an element in [`Tree::els`].
pub type Id = usize;

/// A primitive value.
#[derive(Debug, Clone, PartialEq)]
pub enum Prim {
    /// A JSON string.
    Str(String),
    /// A number or boolean, as its JSON text.
    Raw(String),
}

impl Prim {
    /// The value's text.
    pub fn text(&self) -> &str {
        match self {
            Prim::Str(s) | Prim::Raw(s) => s,
        }
    }
}

/// One element.
#[derive(Debug, Clone)]
pub struct El {
    /// The JSON member name (`valueQuantity` for a choice); `""` for the root. Interned
    /// ([`intern`]): no allocation per element.
    pub name: &'static str,
    /// The FHIR type (`HumanName`, `date`, `Patient.contact`, a resource type).
    pub ty: &'static str,
    /// A primitive's value.
    pub value: Option<Prim>,
    /// Children: members of a complex element; `id`/`extension` of a primitive.
    pub kids: Vec<Id>,
    /// The parent element.
    pub parent: Option<Id>,
    /// Written as an array item.
    pub in_array: bool,
    /// A resource (root, contained or bundled).
    pub resource: bool,
    /// Removed (substitute, pruning).
    pub removed: bool,
}

/// The tree of one resource.
#[derive(Debug, Default)]
pub struct Tree {
    /// All elements; 0 is the root resource.
    pub els: Vec<El>,
    /// Tape keys → elements ([`crate::util::hash::FastHasher`]: the keys are addresses, and
    /// SipHash cost a noticeable share of the tree build, issue 6 item 7).
    by_key: crate::util::hash::FastMap<[usize; 2], Id>,
}

thread_local! {
    static NAMES: std::cell::RefCell<std::collections::HashSet<&'static str, std::hash::BuildHasherDefault<crate::util::hash::FastHasher>>> =
        Default::default();
}

/// The element name `s` as a `&'static str`, allocated (and kept) the first time a thread sees
/// it. Only names of the R4 model reach this (an unknown member is an error before an element
/// is made), so what is kept is bounded by the model's names, not by the input.
pub fn intern(s: &str) -> &'static str {
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if let Some(&k) = n.get(s) {
            return k;
        }
        let k: &'static str = Box::leak(s.to_string().into_boxed_str());
        n.insert(k);
        k
    })
}

pub use crate::fhirpath::{number_texts, tape_key};

/// Whether `ty` is a FHIR primitive type.
pub fn is_primitive(ty: &str) -> bool {
    PRIMITIVE_TYPES.contains(&ty)
}

/// Whether `parent.name` repeats in the R4 model (written as an array whatever the input had,
/// as the reference's serializer does).
fn is_many(parent: &str, name: &str) -> bool {
    use crate::fhir::model::Model;
    let model = Model::r4();
    repeats(
        name,
        model
            .type_id(parent)
            .and_then(|id| model.get(id).element(name)),
    )
}

/// Whether member `name`, the model's `element` (if it has one), is written as an array:
/// extensions always, other elements when their maximum is above 1.
pub(crate) fn repeats(name: &str, element: Option<&crate::fhir::model::Element>) -> bool {
    name == "extension"
        || name == "modifierExtension"
        || element.is_some_and(|e| e.max > 1 || e.max == crate::fhir::model::MANY)
}

fn static_resource_type(t: &str) -> Option<&'static str> {
    crate::fhir::resource_type_index(t).map(crate::fhir::resource_type_name)
}

struct Builder<'n, 'a> {
    tree: Tree,
    numbers: std::slice::Iter<'n, &'n str>,
    types: &'n dyn TypeInfo,
    resources: Vec<(Id, Json<'a>)>,
}

impl Tree {
    /// Builds the tree of the resource `root`; `raw` is the resource's original text (for the
    /// number texts). Also returns every resource element (root first, then contained and
    /// bundled ones in document order) with its tape value, for FHIRPath.
    pub fn build<'a>(
        root: Json<'a>,
        raw: &[u8],
        types: &dyn TypeInfo,
    ) -> Result<(Tree, Vec<(Id, Json<'a>)>), DeidError> {
        let numbers = number_texts(raw);
        let mut b = Builder {
            tree: Tree::default(),
            numbers: numbers.as_slice().iter(),
            types,
            resources: Vec::new(),
        };
        let ty = resource_type_of(root)?;
        let id = b.push(El {
            name: "",
            ty,
            value: None,
            kids: Vec::new(),
            parent: None,
            in_array: false,
            resource: true,
            removed: false,
        });
        b.tree.by_key.insert(tape_key(&root), id);
        b.resources.push((id, root));
        b.object(id, root, ty, ty)?;
        Ok((b.tree, b.resources))
    }

    /// The element a FHIRPath result node stands for.
    pub fn lookup(&self, value: Option<Json<'_>>, ext: Option<Json<'_>>) -> Option<Id> {
        value
            .and_then(|v| self.by_key.get(&tape_key(&v)))
            .or_else(|| ext.and_then(|e| self.by_key.get(&tape_key(&e))))
            .copied()
    }

    /// Adds an element (not yet attached).
    pub fn push(&mut self, el: El) -> Id {
        self.els.push(el);
        self.els.len() - 1
    }

    /// Appends `kid` to `parent`'s children.
    pub fn attach(&mut self, parent: Id, kid: Id) {
        self.els[kid].parent = Some(parent);
        self.els[parent].kids.push(kid);
    }

    /// The live children of `id` named `name`.
    pub fn kids_named(&self, id: Id, name: &str) -> Vec<Id> {
        self.els[id]
            .kids
            .iter()
            .copied()
            .filter(|&k| !self.els[k].removed && self.els[k].name == name)
            .collect()
    }

    /// The live children of `id`.
    pub fn live_kids(&self, id: Id) -> Vec<Id> {
        self.els[id]
            .kids
            .iter()
            .copied()
            .filter(|&k| !self.els[k].removed)
            .collect()
    }

    /// Whether `id` has a live child.
    pub fn has_live_kids(&self, id: Id) -> bool {
        self.els[id].kids.iter().any(|&k| !self.els[k].removed)
    }

    /// The resource's `id` value.
    pub fn resource_id(&self, res: Id) -> &str {
        self.kids_named(res, "id")
            .first()
            .and_then(|&k| self.els[k].value.as_ref())
            .map_or("", Prim::text)
    }

    /// Removes, bottom-up, every element with no value and no live children (not resources).
    pub fn prune(&mut self, id: Id) {
        let mut i = 0;
        while let Some(&k) = self.els[id].kids.get(i) {
            i += 1;
            if self.els[k].removed {
                continue;
            }
            self.prune(k);
            let e = &self.els[k];
            if !e.resource && e.value.is_none() && e.kids.iter().all(|&c| self.els[c].removed) {
                self.els[k].removed = true;
            }
        }
    }

    /// Writes element `id` (an object or resource) as JSON.
    pub fn write(&self, id: Id, out: &mut Vec<u8>) {
        let e = &self.els[id];
        out.push(b'{');
        let mut first = true;
        if e.resource {
            out.extend_from_slice(b"\"resourceType\":");
            write_str(e.ty, out);
            first = false;
        }
        let kids = self.live_kids(id);
        let mut group: Vec<Id> = Vec::new();
        for (i, &k) in kids.iter().enumerate() {
            let name = self.els[k].name;
            // A name is written once, at its first element, with all its elements.
            if kids[..i].iter().any(|&c| self.els[c].name == name) {
                continue;
            }
            group.clear();
            group.extend(
                kids[i..]
                    .iter()
                    .copied()
                    .filter(|&c| self.els[c].name == name),
            );
            let array = self.els[group[0]].in_array;
            let primitive = group
                .iter()
                .any(|&c| self.els[c].value.is_some() || is_primitive(self.els[c].ty));
            if !primitive {
                sep(&mut first, out);
                write_str(name, out);
                out.push(b':');
                self.write_items(&group, array, out, |t, c, out| t.write(c, out));
                continue;
            }
            if group.iter().any(|&c| self.els[c].value.is_some()) {
                sep(&mut first, out);
                write_str(name, out);
                out.push(b':');
                self.write_items(&group, array, out, |t, c, out| match &t.els[c].value {
                    Some(Prim::Str(s)) => write_str(s, out),
                    Some(Prim::Raw(s)) => out.extend_from_slice(s.as_bytes()),
                    None => out.extend_from_slice(b"null"),
                });
            }
            if group.iter().any(|&c| self.has_live_kids(c)) {
                sep(&mut first, out);
                write_str(&format!("_{name}"), out);
                out.push(b':');
                self.write_items(&group, array, out, |t, c, out| {
                    if !t.has_live_kids(c) {
                        out.extend_from_slice(b"null");
                    } else {
                        t.write(c, out);
                    }
                });
            }
        }
        out.push(b'}');
    }
}

impl Tree {
    /// Writes one item, or all of them as an array.
    fn write_items(
        &self,
        group: &[Id],
        array: bool,
        out: &mut Vec<u8>,
        item: impl Fn(&Tree, Id, &mut Vec<u8>),
    ) {
        if !array {
            item(self, group[0], out);
            return;
        }
        out.push(b'[');
        for (i, &c) in group.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item(self, c, out);
        }
        out.push(b']');
    }
}

fn sep(first: &mut bool, out: &mut Vec<u8>) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

fn resource_type_of(v: Json<'_>) -> Result<&'static str, DeidError> {
    let Some(t) = v.get("resourceType").and_then(|t| t.into_string()) else {
        return Err(DeidError::Invalid(
            "not a FHIR resource (no resourceType)".into(),
        ));
    };
    static_resource_type(t).ok_or_else(|| DeidError::Invalid(format!("unknown R4 type '{t}'")))
}

impl<'a> Builder<'_, 'a> {
    fn push(&mut self, el: El) -> Id {
        self.tree.push(el)
    }

    fn number(&mut self) -> String {
        self.numbers
            .next()
            .map_or_else(|| "0".into(), |s| s.to_string())
    }

    /// Fills `id` with the members of the object `v` of FHIR type `ty`; `path` is for errors.
    fn object(
        &mut self,
        id: Id,
        v: Json<'a>,
        ty: &'static str,
        path: &str,
    ) -> Result<(), DeidError> {
        let Some(obj) = v.as_object() else {
            return Err(DeidError::Invalid(format!("{path} is not an object")));
        };
        // name → the elements made for it, so `_name` and `name` meet whatever their order.
        let mut slots: Vec<(&str, Vec<Id>)> = Vec::new();
        for (k, val) in obj.iter() {
            if k == "resourceType" && self.tree.els[id].resource {
                continue;
            }
            let (ext, base) = match k.strip_prefix('_') {
                Some(b) => (true, b),
                None => (false, k),
            };
            let child_ty: &'static str = if is_primitive(ty) {
                match base {
                    "id" => "string",
                    "extension" => "Extension",
                    _ => None.ok_or_else(|| {
                        DeidError::Invalid(format!("unknown element '{k}' at {path}"))
                    })?,
                }
            } else {
                self.types.child_type(ty, base).ok_or_else(|| {
                    DeidError::Invalid(format!(
                        "Type checking the data: Encountered unknown element '{k}' at {path}"
                    ))
                })?
            };
            let found = slots.as_slice().iter().position(|(n, _)| *n == base);
            let slot = match found {
                Some(i) => i,
                None => {
                    slots.push((base, Vec::new()));
                    slots.len() - 1
                }
            };
            // The array's items, or the value itself (no `Vec` per member).
            let many = val.as_array().map(|a| a.iter());
            let one = many.is_none().then_some(val);
            let array = val.is_array() || is_many(ty, base);
            for (i, item) in many.into_iter().flatten().chain(one).enumerate() {
                let el = match slots[slot].1.get(i) {
                    Some(&e) => e,
                    None => {
                        let e = self.push(El {
                            name: intern(base),
                            ty: child_ty,
                            value: None,
                            kids: Vec::new(),
                            parent: None,
                            in_array: array,
                            resource: false,
                            removed: false,
                        });
                        self.tree.attach(id, e);
                        slots[slot].1.push(e);
                        e
                    }
                };
                if item.is_null() {
                    continue;
                }
                self.tree.by_key.insert(tape_key(&item), el);
                // Only built where an object is entered or an error named (not per value).
                let sub = || format!("{path}.{base}");
                if ext {
                    // The `_name` object's members are the primitive's id and extensions.
                    if !is_primitive(child_ty) {
                        return Err(DeidError::Invalid(format!(
                            "'{k}' at {path}: only primitive elements have a '_' sibling"
                        )));
                    }
                    self.object(el, item, child_ty, &sub())?;
                    continue;
                }
                if item.is_object() {
                    if child_ty == "Resource" {
                        let rt = resource_type_of(item)?;
                        self.tree.els[el].ty = rt;
                        self.tree.els[el].resource = true;
                        self.resources.push((el, item));
                        self.object(el, item, rt, rt)?;
                    } else {
                        self.object(el, item, child_ty, &sub())?;
                    }
                } else if let Some(s) = item.into_string() {
                    self.tree.els[el].value = Some(Prim::Str(s.to_string()));
                } else if let Some(b) = item.as_bool() {
                    self.tree.els[el].value = Some(Prim::Raw(b.to_string()));
                } else if item.is_array() {
                    return Err(DeidError::Invalid(format!("nested array at {}", sub())));
                } else {
                    let n = self.number();
                    self.tree.els[el].value = Some(Prim::Raw(n));
                }
            }
        }
        Ok(())
    }
}
