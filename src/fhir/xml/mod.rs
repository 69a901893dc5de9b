//! FHIR R4 XML → FHIR JSON: converts one resource from its XML form to the JSON form the rest of
//! fhirpipe reads, using the R4 model (`super::model`) for what XML does not say: which elements
//! repeat (arrays where max > 1), which primitives are JSON numbers or booleans, choice
//! variants, backbone elements and content references.
//!
//! The mapping is the specification's: a primitive's `value` attribute is the JSON value, its
//! `id` attribute and `extension` children go to the `_name` sibling (with `null` holes in
//! repeating elements); `id` and `url` attributes of complex elements are properties; a
//! narrative `div` becomes the XHTML text of the element as written; contained resources and
//! `Bundle.entry.resource` wrap the resource in an element named by its type. Decimals keep
//! the text of the XML (`1.50` stays `1.50`). Keys come in document order, `resourceType`
//! first. Anything the model does not know is an error naming its path: nothing is dropped.

use super::model::{ElemType, Kind, Model, Primitive, TypeDef, MANY};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Why an XML document could not be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    /// The text is not well-formed XML.
    #[error("XML syntax error at byte {pos}: {message}")]
    Syntax {
        /// Byte offset.
        pos: u64,
        /// What the parser found.
        message: String,
    },
    /// The XML is well-formed but not an R4 resource as the model describes it.
    #[error("{path}: {message}")]
    Shape {
        /// Where, e.g. `Patient.contact.name`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// An element of the XML document.
#[derive(Debug, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    /// The element as written, for XHTML (`div`).
    raw: Option<String>,
}

fn syntax(pos: u64, e: impl std::fmt::Display) -> XmlError {
    XmlError::Syntax {
        pos,
        message: e.to_string(),
    }
}

fn shape(path: &str, message: impl Into<String>) -> XmlError {
    XmlError::Shape {
        path: path.to_string(),
        message: message.into(),
    }
}

fn element(start: &BytesStart<'_>, pos: u64) -> Result<El, XmlError> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| syntax(pos, e))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        // Namespace declarations and prefixed attributes (xsi:schemaLocation) are not data.
        if key == "xmlns" || key.contains(':') {
            continue;
        }
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| syntax(pos, e))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(El {
        name,
        attrs,
        ..El::default()
    })
}

/// Reads the document into elements; text outside XHTML is ignored (FHIR keeps values in
/// attributes), `div` elements keep their source text.
fn read(xml: &str) -> Result<El, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<El> = Vec::new();
    loop {
        let before = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| syntax(reader.error_position(), e))?;
        match ev {
            Event::Start(s) if s.local_name().as_ref() == b"div" => {
                let mut el = element(&s, before)?;
                let mut depth = 1;
                while depth > 0 {
                    match reader
                        .read_event()
                        .map_err(|e| syntax(reader.error_position(), e))?
                    {
                        Event::Start(_) => depth += 1,
                        Event::End(_) => depth -= 1,
                        Event::Eof => return Err(syntax(reader.buffer_position(), "unclosed div")),
                        _ => {}
                    }
                }
                let end = reader.buffer_position() as usize;
                el.raw = Some(xml[before as usize..end].to_string());
                attach(&mut stack, el)?;
            }
            Event::Empty(s) if s.local_name().as_ref() == b"div" => {
                let mut el = element(&s, before)?;
                el.raw = Some(xml[before as usize..reader.buffer_position() as usize].to_string());
                attach(&mut stack, el)?;
            }
            Event::Start(s) => stack.push(element(&s, before)?),
            Event::Empty(s) => {
                let el = element(&s, before)?;
                if stack.is_empty() {
                    return Ok(el);
                }
                attach(&mut stack, el)?;
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| syntax(before, "unexpected end tag"))?;
                if stack.is_empty() {
                    return Ok(el);
                }
                attach(&mut stack, el)?;
            }
            Event::Eof => return Err(syntax(before, "no root element")),
            _ => {}
        }
    }
}

/// Adds a finished element to its parent.
fn attach(stack: &mut [El], el: El) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(el);
            Ok(())
        }
        None => Err(shape(&el.name, "a div cannot be the document")),
    }
}

/// A JSON value under construction.
#[derive(Debug)]
enum J {
    Null,
    Bool(bool),
    /// A number, as written.
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => write_str(s, out),
            J::Arr(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            J::Obj(props) => {
                out.push('{');
                for (i, (k, v)) in props.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// The values of one element name inside an object, in document order.
struct Slot {
    name: String,
    many: bool,
    values: Vec<Option<J>>,
    exts: Vec<Option<J>>,
}

/// Converts one FHIR R4 resource in XML to compact JSON text.
pub fn resource_to_json(xml: &str) -> Result<String, XmlError> {
    let root = read(xml)?;
    let mut out = String::new();
    Converter { model: Model::r4() }
        .resource(&root, "")?
        .write(&mut out);
    Ok(out)
}

struct Converter {
    model: &'static Model,
}

impl Converter {
    fn resource(&self, el: &El, path: &str) -> Result<J, XmlError> {
        let def = self
            .model
            .type_id(&el.name)
            .map(|id| self.model.get(id))
            .filter(|d| d.kind == Kind::Resource)
            .ok_or_else(|| {
                shape(
                    &join(path, &el.name),
                    format!("{} is not an R4 resource type", el.name),
                )
            })?;
        let mut props = vec![("resourceType".to_string(), J::Str(el.name.clone()))];
        props.extend(self.object(&el.attrs, &el.children, def, &el.name)?);
        Ok(J::Obj(props))
    }

    /// The properties of a complex element, a backbone element or a resource.
    fn object(
        &self,
        attrs: &[(String, String)],
        children: &[El],
        def: &TypeDef,
        path: &str,
    ) -> Result<Vec<(String, J)>, XmlError> {
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot = |name: &str, many: bool| -> usize {
            match slots.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    slots.push(Slot {
                        name: name.to_string(),
                        many,
                        values: Vec::new(),
                        exts: Vec::new(),
                    });
                    slots.len() - 1
                }
            }
        };
        let mut slots_out: Vec<(usize, Option<J>, Option<J>)> = Vec::new();
        for (k, v) in attrs {
            let p = join(path, k);
            let e = def
                .element(k)
                .ok_or_else(|| shape(&p, format!("unknown attribute {k}")))?;
            let ElemType::Type(t) = e.ty else {
                return Err(shape(&p, "a resource cannot be an attribute"));
            };
            let Kind::Primitive(prim) = self.model.get(t).kind else {
                return Err(shape(&p, "only primitives can be attributes"));
            };
            slots_out.push((slot(k, false), Some(primitive(prim, v, &p)?), None));
        }
        for c in children {
            let p = join(path, &c.name);
            let e = def
                .element(&c.name)
                .ok_or_else(|| shape(&p, format!("unknown element {}", c.name)))?;
            let i = slot(&c.name, e.max > 1 || e.max == MANY);
            let (value, ext) = match e.ty {
                ElemType::Resource => match c.children.as_slice() {
                    [r] if c.attrs.is_empty() => (Some(self.resource(r, &p)?), None),
                    _ => return Err(shape(&p, "expected exactly one resource inside")),
                },
                ElemType::Type(t) => {
                    let ty = self.model.get(t);
                    match ty.kind {
                        Kind::Primitive(prim) => self.primitive_element(c, prim, ty, &p)?,
                        _ => (
                            Some(J::Obj(self.object(&c.attrs, &c.children, ty, &p)?)),
                            None,
                        ),
                    }
                }
            };
            slots_out.push((i, value, ext));
        }
        for (i, v, x) in slots_out {
            slots[i].values.push(v);
            slots[i].exts.push(x);
        }
        let mut props = Vec::new();
        for s in slots {
            if !s.many && s.values.len() > 1 {
                return Err(shape(
                    &join(path, &s.name),
                    format!("appears {} times but repeats at most once", s.values.len()),
                ));
            }
            let (value, ext) = if s.many {
                let arr = |xs: Vec<Option<J>>| {
                    xs.iter()
                        .any(Option::is_some)
                        .then(|| J::Arr(xs.into_iter().map(|x| x.unwrap_or(J::Null)).collect()))
                };
                (arr(s.values), arr(s.exts))
            } else {
                let mut v = s.values.into_iter().flatten();
                let mut x = s.exts.into_iter().flatten();
                (v.next(), x.next())
            };
            if let Some(v) = value {
                props.push((s.name.clone(), v));
            }
            if let Some(x) = ext {
                props.push((format!("_{}", s.name), x));
            }
        }
        Ok(props)
    }

    /// A primitive element: its value, and the `_name` object with its id and extensions.
    fn primitive_element(
        &self,
        c: &El,
        prim: Primitive,
        ty: &TypeDef,
        path: &str,
    ) -> Result<(Option<J>, Option<J>), XmlError> {
        if prim == Primitive::Xhtml {
            return match c.raw.as_deref() {
                Some(raw) => Ok((Some(J::Str(xhtml_text(raw, path)?)), None)),
                None => Ok((None, None)),
            };
        }
        let mut value = None;
        let mut others = Vec::new();
        for (k, v) in &c.attrs {
            if k == "value" {
                value = Some(primitive(prim, v, path)?);
            } else {
                others.push((k.clone(), v.clone()));
            }
        }
        let ext = if others.is_empty() && c.children.is_empty() {
            None
        } else {
            // The primitive type's own elements are `id` and `extension`.
            Some(J::Obj(self.object(&others, &c.children, ty, path)?))
        };
        Ok((value, ext))
    }
}

/// The XHTML of a `div` as FHIR JSON holds it: character references are resolved except where
/// markup needs them (`&lt;`, `&gt;`, `&amp;`, `&quot;` stay escaped), so `&#39;` and `&apos;`
/// become `'`, as the specification's own JSON examples have it. Entities XML does not define
/// (`&reg;`, HTML's) make the XHTML invalid: an error.
fn xhtml_text(raw: &str, path: &str) -> Result<String, XmlError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let c = end.and_then(|e| match &rest[1..e] {
            "apos" => Some('\''),
            r => r
                .strip_prefix("#x")
                .or_else(|| r.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| r.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (c, end) {
            (Some('<'), Some(e)) => (out.push_str("&lt;"), rest = &rest[e + 1..]).1,
            (Some('>'), Some(e)) => (out.push_str("&gt;"), rest = &rest[e + 1..]).1,
            (Some('&'), Some(e)) => (out.push_str("&amp;"), rest = &rest[e + 1..]).1,
            (Some('"'), Some(e)) => (out.push_str("&quot;"), rest = &rest[e + 1..]).1,
            (Some(ch), Some(e)) => (out.push(ch), rest = &rest[e + 1..]).1,
            (None, Some(e)) if matches!(&rest[1..e], "lt" | "gt" | "amp" | "quot") => {
                out.push_str(&rest[..=e]);
                rest = &rest[e + 1..];
            }
            _ => {
                let shown: String = rest.chars().take(12).collect();
                return Err(shape(
                    path,
                    format!("the XHTML has an undefined entity or a bare & at {shown:?}"),
                ));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A primitive's `value` attribute as JSON: booleans and numbers as such, the rest as strings.
fn primitive(prim: Primitive, v: &str, path: &str) -> Result<J, XmlError> {
    use Primitive::*;
    Ok(match prim {
        Boolean => match v {
            "true" => J::Bool(true),
            "false" => J::Bool(false),
            _ => return Err(shape(path, format!("{v:?} is not a boolean"))),
        },
        Integer | PositiveInt | UnsignedInt => {
            v.parse::<i64>()
                .map_err(|_| shape(path, format!("{v:?} is not an integer")))?;
            J::Num(v.to_string())
        }
        Decimal => {
            let ok = !v.is_empty()
                && v.parse::<f64>().is_ok_and(f64::is_finite)
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'E' | b'+'))
                && !v.starts_with('+')
                && !v.starts_with('.');
            if !ok {
                return Err(shape(path, format!("{v:?} is not a decimal")));
            }
            J::Num(v.to_string())
        }
        _ => J::Str(v.to_string()),
    })
}

#[cfg(test)]
mod tests;
