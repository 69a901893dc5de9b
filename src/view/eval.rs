//! Evaluates a compiled view on one resource. A `select` gives, for each focus item of its
//! iteration, the cross product of its own columns (one row), each nested `select`'s rows and
//! the concatenated rows of its `unionAll` branches; `forEachOrNull` with no items gives one
//! row of nulls. `%rowIndex` is the 0-based index of the item in the nearest enclosing
//! iteration (0 at the top). Values become [`Cell`]s of the column's kind.

use super::definition::{Column, Compiled, Iter, Select};
use super::{Cell, ColumnKind, ViewError};
use crate::fhirpath::{default_types, to_json, Env, Expression, Item, Items, Json, TypeInfo};
use simd_json::prelude::*;

struct Run<'v, 'a> {
    view: &'v Compiled,
    root: Item<'a>,
    types: &'static dyn TypeInfo,
    env: Env<'static>,
    id: &'a str,
}

fn kind_name(it: &Item<'_>) -> String {
    let (ns, n) = it.type_name();
    format!("{ns}.{n}")
}

impl<'a> Run<'_, 'a> {
    fn fail(&self, at: &str, message: impl Into<String>) -> ViewError {
        ViewError::Eval {
            at: at.to_string(),
            resource: format!("{}/{}", self.view.resource, self.id),
            message: message.into(),
        }
    }

    fn eval(
        &mut self,
        e: &Expression,
        focus: Option<&Item<'a>>,
        row_index: usize,
        at: &str,
    ) -> Result<Items<'a>, ViewError> {
        if let Err(x) = self.env.set_int("rowIndex", row_index as i64) {
            return Err(self.fail(at, x.to_string()));
        }
        e.evaluate_on(&self.root, focus, self.types, &self.env)
            .map_err(|x| self.fail(at, format!("{} in {:?}", x, e.source())))
    }

    fn cell(&self, c: &Column, it: &Item<'a>) -> Result<Cell, ViewError> {
        // Text columns take a string node's text as written (`+00:00` stays, not `Z`).
        if let (ColumnKind::String | ColumnKind::Any, Item::Node(n)) = (c.kind, it) {
            if let Some(s) = n.value.and_then(|v| v.into_string()) {
                return Ok(Cell::Str(s.to_string()));
            }
        }
        let p = it.prim();
        let mismatch = || {
            self.fail(
                &format!("{} ({})", c.at, c.name),
                format!(
                    "the path gives a {}, not a {}",
                    kind_name(it),
                    c.fhir_type.as_deref().unwrap_or("primitive")
                ),
            )
        };
        Ok(match (c.kind, &*p) {
            (ColumnKind::Boolean | ColumnKind::Any, Item::Bool(b)) => Cell::Bool(*b),
            (ColumnKind::Integer | ColumnKind::Any, Item::Int(i)) => Cell::Int(*i),
            (ColumnKind::Integer, Item::Dec(d)) if d.is_integer() => {
                Cell::Int(d.trunc_i64().ok_or_else(mismatch)?)
            }
            (ColumnKind::Decimal | ColumnKind::Any, Item::Dec(d)) => Cell::Dec(*d),
            (ColumnKind::Decimal, Item::Int(i)) => {
                Cell::Dec(crate::fhirpath::Decimal::from_int(*i))
            }
            (ColumnKind::String | ColumnKind::Any, Item::Str(s)) => Cell::Str(s.to_string()),
            (ColumnKind::String | ColumnKind::Any, Item::Temporal(t)) => Cell::Str(t.to_string()),
            (ColumnKind::String, Item::Bool(b)) => Cell::Str(b.to_string()),
            (ColumnKind::String, Item::Int(i)) => Cell::Str(i.to_string()),
            (ColumnKind::String, Item::Dec(d)) => Cell::Str(d.to_string()),
            (ColumnKind::String | ColumnKind::Any, Item::Node(_) | Item::Quantity(..)) => {
                // A complex value (or a primitive with only extensions): its JSON.
                let j = to_json(std::slice::from_ref(it));
                Cell::Str(j[1..j.len() - 1].to_string())
            }
            _ => return Err(mismatch()),
        })
    }

    fn column(
        &mut self,
        c: &Column,
        focus: Option<&Item<'a>>,
        row_index: usize,
    ) -> Result<Cell, ViewError> {
        let at = format!("{} ({})", c.at, c.name);
        let items = self.eval(&c.path, focus, row_index, &at)?;
        if c.collection {
            return Ok(Cell::List(
                items
                    .iter()
                    .map(|i| self.cell(c, i))
                    .collect::<Result<_, _>>()?,
            ));
        }
        match items.as_slice() {
            [] => Ok(Cell::Null),
            [one] => self.cell(c, one),
            many => Err(self.fail(
                &at,
                format!(
                    "the path {:?} gives {} values; a column takes one unless it has \"collection\": true",
                    c.path.source(),
                    many.len()
                ),
            )),
        }
    }

    /// The items a select iterates over, `None` for no iteration.
    fn items(
        &mut self,
        s: &Select,
        focus: Option<&Item<'a>>,
        row_index: usize,
    ) -> Result<Option<Items<'a>>, ViewError> {
        Ok(match &s.iter {
            Iter::Once => None,
            Iter::ForEach(e) => {
                Some(self.eval(e, focus, row_index, &format!("{}.forEach", s.at))?)
            }
            Iter::ForEachOrNull(e) => {
                Some(self.eval(e, focus, row_index, &format!("{}.forEachOrNull", s.at))?)
            }
            Iter::Repeat(paths) => {
                let mut out = Vec::new();
                self.repeat(paths, focus, row_index, &s.at, &mut out, 0)?;
                Some(out)
            }
        })
    }

    fn repeat(
        &mut self,
        paths: &[Expression],
        focus: Option<&Item<'a>>,
        row_index: usize,
        at: &str,
        out: &mut Items<'a>,
        depth: usize,
    ) -> Result<(), ViewError> {
        if depth > 1000 {
            return Err(self.fail(&format!("{at}.repeat"), "more than 1000 levels deep"));
        }
        for p in paths {
            let children = self.eval(p, focus, row_index, &format!("{at}.repeat"))?;
            for c in children {
                out.push(c.clone());
                self.repeat(paths, Some(&c), row_index, at, out, depth + 1)?;
            }
        }
        Ok(())
    }

    fn select(
        &mut self,
        s: &Select,
        focus: Option<&Item<'a>>,
        row_index: usize,
    ) -> Result<Vec<Vec<Cell>>, ViewError> {
        match self.items(s, focus, row_index)? {
            None => self.body(s, focus, row_index),
            Some(items) => {
                let mut rows = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    rows.extend(self.body(s, Some(it), i)?);
                }
                if items.is_empty() && matches!(s.iter, Iter::ForEachOrNull(_)) {
                    // The body on an empty focus (so `%rowIndex` is 0 and paths give null),
                    // and one row of nulls if that gives no row (a nested `forEach`).
                    rows = self.body(s, None, 0)?;
                    if rows.is_empty() {
                        rows.push(vec![Cell::Null; s.width]);
                    }
                }
                Ok(rows)
            }
        }
    }

    fn body(
        &mut self,
        s: &Select,
        focus: Option<&Item<'a>>,
        row_index: usize,
    ) -> Result<Vec<Vec<Cell>>, ViewError> {
        let mut own = Vec::with_capacity(s.width);
        for c in &s.columns {
            own.push(self.column(c, focus, row_index)?);
        }
        let mut acc = vec![own];
        for sub in &s.select {
            let rows = self.select(sub, focus, row_index)?;
            acc = product(acc, &rows);
            if acc.is_empty() {
                return Ok(acc);
            }
        }
        if !s.union_all.is_empty() {
            let mut rows = Vec::new();
            for b in &s.union_all {
                rows.extend(self.select(b, focus, row_index)?);
            }
            acc = product(acc, &rows);
        }
        Ok(acc)
    }
}

/// Every row of `left` followed by every row of `right`.
fn product(left: Vec<Vec<Cell>>, right: &[Vec<Cell>]) -> Vec<Vec<Cell>> {
    if right.len() == 1 {
        return left
            .into_iter()
            .map(|mut l| {
                l.extend_from_slice(&right[0]);
                l
            })
            .collect();
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in right {
            let mut row = Vec::with_capacity(l.len() + r.len());
            row.extend_from_slice(l);
            row.extend_from_slice(r);
            out.push(row);
        }
    }
    out
}

/// Appends the rows of `resource` to `out`.
pub(crate) fn rows(
    view: &Compiled,
    resource: Json<'_>,
    out: &mut Vec<Vec<Cell>>,
) -> Result<(), ViewError> {
    let ty = resource
        .get("resourceType")
        .and_then(|t| t.into_string())
        .unwrap_or("");
    if ty != view.resource {
        return Ok(());
    }
    let mut env = Env::new();
    for (n, v) in &view.constants {
        // Names were checked when the view was compiled.
        let _ = env.set(n, vec![v.clone()]);
    }
    let mut run = Run {
        view,
        root: Item::node(resource, ty),
        types: default_types(resource),
        env,
        id: resource
            .get("id")
            .and_then(|t| t.into_string())
            .unwrap_or(""),
    };
    let root = run.root.clone();
    for (w, at) in &view.wheres {
        let r = run.eval(w, Some(&root), 0, at)?;
        let keep = match r.as_slice() {
            [] => false,
            [x] => match &*x.prim() {
                Item::Bool(b) => *b,
                _ => {
                    return Err(run.fail(
                        at,
                        format!(
                            "where {:?} gives a {}, not a boolean",
                            w.source(),
                            kind_name(x)
                        ),
                    ))
                }
            },
            many => {
                return Err(run.fail(
                    at,
                    format!(
                        "where {:?} gives {} values, not one boolean",
                        w.source(),
                        many.len()
                    ),
                ))
            }
        };
        if !keep {
            return Ok(());
        }
    }
    out.extend(run.select(&view.root, Some(&root), 0)?);
    Ok(())
}
