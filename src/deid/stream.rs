//! The streaming de-identification engine (issue 6 item 7): the rules compiled once into a
//! [`Plan`] of element paths, applied in one pass over the simd-json tape that writes the
//! compact output as it goes, with no element tree per resource.
//!
//! The plan exists when every rule is a value-level method (keep, redact, dateShift,
//! cryptoHash, encrypt) whose path is `nodesByType('T')`, `nodesByType('T').name`, the
//! resource itself, or a member chain from the resource or from `nodesByType('T')` with
//! `where(...)` filters (what the presets use). The tree engine's semantics are kept exactly:
//! a node's rule is the lowest-numbered rule that matches it or an ancestor within its
//! resource (the "first rule that touches a node wins" of the reference, with `keep` a rule
//! that changes nothing), nested resources get their own rules, emptied elements are pruned,
//! `meta.security` labels are inserted where the tree writer would put them, and free text is
//! processed after the rules. Anything the pass does not model (an unknown element, a `_name`
//! that is not right after `name`, a repeated member, several variants of one choice, a
//! primitive where an object belongs, a rule reaching into a nested resource, any error)
//! makes [`run`] return `None`, and the caller uses the tree engine, which then gives the
//! reference's result or error. A test compares both engines byte for byte on the presets
//! and the shared corpora.

use std::borrow::Cow;

use super::{text, Change, Deidentifier, Method, Ops, Output, Rule, Select, ValueAt, LABELS};
use crate::fhir::model::{ElemType, Kind, Model, TypeId};
use crate::fhir::TypeIdx;
use crate::fhirpath::{Env, Expression, Item, Json};
use crate::util::json::write_str;
use simd_json::prelude::*;

/// A rule in compiled form.
#[derive(Debug)]
struct PlanRule {
    /// The resource type it applies to; `None`: every resource.
    applies: Option<TypeId>,
    /// The steps after the anchor.
    steps: Vec<Step>,
    method: Method,
}

#[derive(Debug)]
enum Step {
    /// A member by FHIRPath name: `name`, or a variant of the choice `name[x]`.
    Child(String),
    /// A member named `name` or `name` + an upper-case suffix (`nodesByType('T').name`).
    Prefix(String),
    /// `where(criteria)` on the node reached.
    Where(Expression),
}

/// The compiled rules of a configuration (see the module documentation).
#[derive(Debug)]
pub(crate) struct Plan {
    rules: Vec<PlanRule>,
    /// Rules anchored at the resource that apply to it, by the resource's TypeId, in rule
    /// order (a resource visits only its own, not every resource type's).
    root: Vec<Vec<u16>>,
    /// The model's TypeId of each resource type, by [`TypeIdx`].
    resource_ids: Vec<TypeId>,
    /// Rules anchored at `nodesByType(T)`, by the TypeId of `T`.
    by_type: Vec<Vec<u16>>,
    xhtml: TypeId,
    annotation: TypeId,
    attachment: TypeId,
    reference: TypeId,
    string: TypeId,
    extension: TypeId,
    /// Every type's elements described for the walk, by TypeId and position.
    elems: Vec<Box<[Elem]>>,
    /// Unique per compiled plan (what an [`Automaton`] is bound to).
    id: u64,
}

const KEYWORDS: [&str; 13] = [
    "div", "mod", "and", "or", "xor", "implies", "is", "as", "in", "contains", "true", "false",
    "where",
];

/// Splits FHIRPath text at the top-level dots.
fn segments(expr: &str) -> Option<Vec<&str>> {
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    let mut out = Vec::new();
    for (i, c) in expr.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, '.') if depth == 0 => {
                out.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    (depth == 0 && quote.is_none()).then(|| {
        out.push(&expr[start..]);
        out
    })
}

fn identifier(s: &str) -> Option<&str> {
    let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
        && !KEYWORDS.contains(&s);
    ok.then_some(s)
}

impl Plan {
    /// The plan of `rules`, or `None` when some rule needs the tree engine.
    pub(crate) fn compile(rules: &[Rule]) -> Option<Plan> {
        let model = Model::r4();
        let ty = |n: &str| model.type_id(n);
        let resource_ids = crate::fhir::RESOURCE_TYPES
            .iter()
            .map(|n| ty(n))
            .collect::<Option<Vec<_>>>()?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut plan = Plan {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rules: Vec::new(),
            root: vec![Vec::new(); model.types.len()],
            resource_ids,
            by_type: vec![Vec::new(); model.types.len()],
            xhtml: ty("xhtml")?,
            annotation: ty("Annotation")?,
            attachment: ty("Attachment")?,
            reference: ty("Reference")?,
            string: ty("string")?,
            extension: ty("Extension")?,
            elems: model
                .types
                .iter()
                .map(|def| {
                    def.elements
                        .iter()
                        .enumerate()
                        .map(|(i, e)| Elem {
                            ty: match e.ty {
                                ElemType::Type(t) => Some(t),
                                ElemType::Resource => None,
                            },
                            idx: i as u16,
                            primitive: e.primitive.is_some(),
                            many: super::tree::repeats(&e.name, Some(e)),
                            choice: e.choice,
                        })
                        .collect()
                })
                .collect(),
        };
        // A `nodesByType` type: a data type of the model (never a resource: the lookup does
        // not return resources).
        let data_type = |t: &str| ty(t).filter(|&id| model.get(id).kind != Kind::Resource);
        for r in rules {
            if !matches!(
                r.method,
                Method::Keep
                    | Method::Redact
                    | Method::DateShift
                    | Method::CryptoHash
                    | Method::Encrypt
            ) {
                return None;
            }
            let applies = match r.resource_type.as_str() {
                "" | "Resource" | "DomainResource" => None,
                t => match ty(t).filter(|&id| model.get(id).kind == Kind::Resource) {
                    Some(id) => Some(id),
                    // Never applies (the tree engine compares it with every resource type).
                    None => continue,
                },
            };
            let (anchor, steps) = match &r.select {
                Select::ByType(t, n) => (
                    Some(data_type(t)?),
                    n.iter().map(|n| Step::Prefix(n.clone())).collect(),
                ),
                Select::ByName(..) => return None,
                Select::Resource => (None, Vec::new()),
                Select::Path(expr) => {
                    let segs = segments(expr.source())?;
                    let mut anchor = None;
                    let mut steps = Vec::new();
                    for (i, seg) in segs.iter().enumerate() {
                        if i == 0 {
                            if let Some((t, None)) = super::split_selector(seg, "nodesByType") {
                                anchor = Some(data_type(&t)?);
                                continue;
                            }
                        }
                        if let Some(inner) =
                            seg.strip_prefix("where(").and_then(|s| s.strip_suffix(')'))
                        {
                            if inner.contains('%')
                                || inner.contains("$index")
                                || inner.contains("$total")
                            {
                                return None;
                            }
                            steps.push(Step::Where(Expression::parse(inner).ok()?));
                        } else {
                            steps.push(Step::Child(identifier(seg)?.to_string()));
                        }
                    }
                    (anchor, steps)
                }
            };
            let idx = u16::try_from(plan.rules.len()).ok()?;
            match anchor {
                None => {
                    for (t, def) in model.types.iter().enumerate() {
                        if def.kind == Kind::Resource && applies.is_none_or(|a| usize::from(a) == t)
                        {
                            plan.root[t].push(idx);
                        }
                    }
                }
                Some(t) => plan.by_type[usize::from(t)].push(idx),
            }
            plan.rules.push(PlanRule {
                applies,
                steps,
                method: r.method,
            });
        }
        Some(plan)
    }
}

/// Not modelled: the tree engine takes over.
struct Fb;

type R<T> = Result<T, Fb>;

#[derive(Clone, Copy)]
struct State {
    rule: u16,
    step: u16,
}

/// A node being walked: its type, its rule, and the set of partial matches that continue
/// below it ([`Automaton`] set id, and whether that set is empty), packed in one u64 so that
/// it travels in a register, as do the results that carry it (issue 6 item 7: returned
/// through memory, reading it back stalled on store forwarding).
#[derive(Clone, Copy)]
#[repr(transparent)]
struct Node(u64);

impl Node {
    /// No rule (`eff`): rule indices are below `u16::MAX`.
    const NO_RULE: u16 = u16::MAX;

    #[inline]
    fn new(ty: TypeId, eff: Option<u16>, set: u16, empty: bool) -> Node {
        let eff = eff.unwrap_or(Self::NO_RULE);
        Node(u64::from(ty) | u64::from(eff) << 16 | u64::from(set) << 32 | u64::from(empty) << 48)
    }

    #[inline]
    fn ty(self) -> TypeId {
        self.0 as u16
    }

    /// The rule that applies to the node (the first one, by rule order).
    #[inline]
    fn eff(self) -> Option<u16> {
        Some((self.0 >> 16) as u16).filter(|&r| r != Self::NO_RULE)
    }

    /// Its set of partial matches ([`Automaton::sets`]).
    #[inline]
    fn set(self) -> u16 {
        (self.0 >> 32) as u16
    }

    /// No partial match continues below it.
    #[inline]
    fn no_partial(self) -> bool {
        self.0 >> 48 & 1 == 1
    }

    /// The key of its member at position `idx` in [`Automaton::next`]: everything the
    /// member's node depends on, except the item itself (only `where` filters read it).
    #[inline]
    fn key(self, idx: u16) -> u64 {
        self.0 & 0xFFFF_FFFF_FFFF | u64::from(idx) << 48
    }
}

/// The rule matching as a lazily built automaton (issue 6 item 7): each distinct set of
/// partial matches met in a resource type is interned once, and the node of a member is
/// computed once per (set, rule, type, member position) and then looked up. A member whose
/// node depended on a `where` filter is computed every time (the filter reads the item).
/// A worker keeps it from one resource to the next ([`Buffers`]); it is bound to one
/// [`Plan`].
#[derive(Default)]
pub(crate) struct Automaton {
    /// The plan it was built for ([`Plan::id`]; 0 before the first use).
    plan: u64,
    /// The states of every interned set, one set after another.
    pool: Vec<State>,
    /// Set id → its range in `pool`.
    sets: Vec<(u32, u32)>,
    /// (resource type, states) → set id.
    index: crate::util::hash::FastMap<Box<[u32]>, u16>,
    /// [`Node::key`] → the member's node without its type (its rule, set and emptiness).
    next: crate::util::hash::FastMap<u64, u64>,
    /// Resource type → its root node without its type.
    roots: crate::util::hash::FastMap<TypeId, u64>,
    /// Scratch for a set's key.
    key: Vec<u32>,
}

impl Automaton {
    /// The id of the set `states` of resource type `res`; `Err` past 65,535 sets (the tree
    /// engine takes over).
    fn intern(&mut self, res: TypeId, states: &[State]) -> R<(u16, bool)> {
        self.key.clear();
        self.key.push(u32::from(res));
        self.key.extend(
            states
                .iter()
                .map(|s| u32::from(s.rule) << 16 | u32::from(s.step)),
        );
        if let Some(&id) = self.index.get(&self.key[..]) {
            return Ok((id, states.is_empty()));
        }
        let id = u16::try_from(self.sets.len()).map_err(|_| Fb)?;
        let start = self.pool.len() as u32;
        self.pool.extend_from_slice(states);
        self.sets.push((start, self.pool.len() as u32));
        self.index.insert(self.key.clone().into_boxed_slice(), id);
        Ok((id, states.is_empty()))
    }

    /// Forgets everything when `plan` is not the plan it was built for.
    fn bind(&mut self, plan: &Plan) {
        if self.plan != plan.id {
            *self = Automaton {
                plan: plan.id,
                ..Automaton::default()
            };
        }
    }
}

/// What a member is, from the model (small enough to travel in registers: the walk asks
/// for one per member).
#[derive(Clone, Copy, Debug)]
struct Elem {
    /// `None`: a resource (`contained`, `Bundle.entry.resource`).
    ty: Option<TypeId>,
    /// Its position among its type's elements (0 `id` and 1 `extension` in a `_name`
    /// object): members are told apart by it.
    idx: u16,
    primitive: bool,
    many: bool,
    choice: Option<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Resource,
    Meta,
    Security,
    Other,
}

/// A resource being walked: what was done and where its labels go.
struct Res {
    ty: TypeId,
    contained: bool,
    ops: Ops,
    /// The codes of `meta.security` after the rules (compared ignoring case).
    existing: Vec<String>,
    /// Where a new `meta` goes: after the `id` member, or right after `resourceType`.
    after_id: usize,
    meta: Option<MetaAt>,
}

/// The resource's `meta` member as written.
#[derive(Clone, Copy)]
struct MetaAt {
    /// Where the member starts (before its comma).
    mark: usize,
    /// Non-empty after pruning.
    written: bool,
    /// The position of its `}`.
    close: usize,
    /// The position of `security`'s `]`, when that survived.
    sec_close: Option<usize>,
}

/// A free-text carrier as written.
struct Rec<'a> {
    kind: CarrierKind,
    /// The string literal in the output.
    start: usize,
    end: usize,
    value: Cow<'a, str>,
    path: String,
}

enum CarrierKind {
    Narrative,
    Text,
    /// `Attachment.data`: the slot of its attachment's content type.
    Attachment(usize),
}

/// A value as it will be written.
enum Val<'a> {
    Str(Cow<'a, str>),
    Raw(&'a str),
}

/// The date-shift offsets, computed at most once per id text.
struct Offsets<'a> {
    fixed: Option<i64>,
    prefix: Option<&'a str>,
    key: &'a str,
    /// The root's id as written, its rule, and its final value ("" when removed).
    root_orig: &'a str,
    root_rule: Option<u16>,
    root_final: Option<String>,
    cache: [Option<i64>; 3],
}

impl Offsets<'_> {
    fn get(&mut self, rule: u16, nested: bool) -> i64 {
        if let Some(f) = self.fixed {
            return f;
        }
        let (slot, id) = match self.prefix {
            Some(p) => (0, p),
            None => {
                let changed = nested || self.root_rule.is_some_and(|r| r < rule);
                match (&self.root_final, changed) {
                    (Some(f), true) => (2, f.as_str()),
                    _ => (1, self.root_orig),
                }
            }
        };
        *self.cache[slot].get_or_insert_with(|| super::methods::date_shift_offset(id, self.key))
    }
}

struct W<'p: 'a, 'a> {
    d: &'p Deidentifier,
    plan: &'p Plan,
    model: &'static Model,
    env: Env<'a>,
    out: Vec<u8>,
    edits: Vec<(usize, usize, Vec<u8>)>,
    /// The texts of the numbers (the tape keeps only their values), in document order.
    numbers: crate::fhirpath::NumberScan<'a>,
    /// The rule automaton (the sets of partial matches and the members' nodes).
    dfa: Automaton,
    /// Scratch: the partial matches of the node being computed.
    states: Vec<State>,
    /// The members of the objects being walked, by element position and choice group.
    seen: Vec<(u16, Option<u8>)>,
    path: Vec<(&'a str, Option<u32>)>,
    res: Vec<Res>,
    want_text: bool,
    carriers: Vec<Rec<'a>>,
    /// Content types of the attachments walked (final values).
    content_types: Vec<Option<Cow<'a, str>>>,
    /// The original references (free text); `finish` puts the root's `Type/id` first.
    refs: Vec<&'a str>,
    off: Offsets<'a>,
    /// The root id's change, computed before the walk (the offsets need it).
    root_id: Option<(Change, Ops)>,
    /// Where the root's `id`, `meta.versionId` and `meta.lastUpdated` values were written.
    head: [Option<(usize, usize)>; 3],
}

/// What [`run_parsed`] reports besides the JSON it wrote.
pub(crate) struct Streamed {
    pub type_idx: TypeIdx,
    pub ops: Ops,
    pub text: text::TextOutcome,
    /// Where the output's `id`, `meta.versionId` and `meta.lastUpdated` values are.
    pub head: Head,
}

impl Streamed {
    /// The resource's type name.
    pub fn resource_type(&self) -> &'static str {
        crate::fhir::resource_type_name(self.type_idx)
    }
}

/// The root's `id`, `meta.versionId` and `meta.lastUpdated` values as written (JSON
/// literals), by their positions in the walk's output ([`Buffers::out`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Head {
    pub at: [Option<(usize, usize)>; 3],
    /// The output has a `meta` (versionId and lastUpdated are only read from it).
    pub meta: bool,
}

impl Head {
    /// The three values as plain strings, when each is a JSON string without escapes (the
    /// usual case, read without a parse); `None` otherwise.
    pub fn strings<'o>(&self, out: &'o [u8]) -> Option<[Option<&'o str>; 3]> {
        let mut v = [None; 3];
        for (slot, at) in v.iter_mut().zip(self.at) {
            if let Some((s, e)) = at {
                let lit = out.get(s..e)?;
                let inner = lit.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
                if inner.contains(&b'\\') {
                    return None;
                }
                *slot = Some(std::str::from_utf8(inner).ok()?);
            }
        }
        Some(v)
    }

    /// `{"resourceType":…,"id":…,"meta":{"versionId":…,"lastUpdated":…}}` with the values
    /// there are, for a full check of them ([`Output::head`]).
    pub fn json(&self, rt: &str, out: &[u8]) -> Vec<u8> {
        let mut head = Vec::with_capacity(96);
        head.extend_from_slice(b"{\"resourceType\":");
        write_str(rt, &mut head);
        if let Some((s, e)) = self.at[0] {
            head.extend_from_slice(b",\"id\":");
            head.extend_from_slice(&out[s..e]);
        }
        if self.meta {
            head.extend_from_slice(b",\"meta\":{");
            let mut first = true;
            for (i, key) in [(1, &b"\"versionId\":"[..]), (2, &b"\"lastUpdated\":"[..])] {
                if let Some((s, e)) = self.at[i] {
                    if !first {
                        head.push(b',');
                    }
                    first = false;
                    head.extend_from_slice(key);
                    head.extend_from_slice(&out[s..e]);
                }
            }
            head.push(b'}');
        }
        head.push(b'}');
        head
    }
}

/// Runs the plan on one resource; `None`: use the tree engine.
pub(crate) fn run(
    d: &Deidentifier,
    plan: &Plan,
    text: &[u8],
    scope_prefix: &str,
    known: Option<&text::KnownIndex>,
) -> Option<Output> {
    let mut buf = text.to_vec();
    let tape = simd_json::to_tape(&mut buf).ok()?;
    let mut json = Vec::new();
    let mut bufs = Buffers::default();
    let s = run_parsed(
        d,
        plan,
        tape.as_value(),
        text,
        scope_prefix,
        known,
        None,
        &mut bufs,
        &mut json,
    )?;
    let rt = s.resource_type();
    Some(Output {
        json,
        resource_type: rt,
        ops: s.ops,
        skipped: None,
        text: s.text,
        head: Some(s.head.json(rt, bufs.out())),
    })
}

/// Runs the plan on `root`, the parsed `text` (the check stage's tape: no second parse),
/// appending the output to `dest` (untouched on `None`: use the tree engine). `bufs` are the
/// caller's buffers for the walk, reused from one resource to the next; the walk's own
/// output stays in them ([`Buffers::out`], where [`Streamed::head`] points) until the next
/// call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_parsed<'a>(
    d: &Deidentifier,
    plan: &Plan,
    root: Json<'a>,
    text: &'a [u8],
    scope_prefix: &'a str,
    known: Option<&text::KnownIndex>,
    structurals: Option<&'a [u32]>,
    bufs: &mut Buffers,
    dest: &mut Vec<u8>,
) -> Option<Streamed> {
    let p = &d.params;
    let prefix = match p.date_shift_scope {
        super::DateShiftScope::Resource => None,
        _ => Some(scope_prefix).filter(|s| !s.is_empty()),
    };
    let mut out = std::mem::take(&mut bufs.out);
    out.clear();
    out.reserve(text.len());
    let mut w = W {
        d,
        plan,
        model: Model::r4(),
        env: Env::new().with_anonymizer_functions(),
        out,
        edits: take(&mut bufs.edits),
        numbers: match structurals {
            Some(ix) => crate::fhirpath::NumberScan::with_structurals(text, ix),
            None => crate::fhirpath::NumberScan::new(text),
        },
        dfa: std::mem::take(&mut bufs.dfa),
        states: take(&mut bufs.states),
        seen: take(&mut bufs.seen),
        path: relife(take(&mut bufs.path)),
        res: take(&mut bufs.res),
        want_text: d.text.is_some(),
        carriers: Vec::new(),
        content_types: Vec::new(),
        refs: relife(take(&mut bufs.refs)),
        off: Offsets {
            fixed: p.date_shift_fixed_offset,
            prefix,
            key: p.date_shift_key.expose(),
            root_orig: "",
            root_rule: None,
            root_final: None,
            cache: [None; 3],
        },
        root_id: None,
        head: [None; 3],
    };
    w.dfa.bind(plan);
    let walked = w.resource(root, false);
    let result = walked.and_then(|(rt, res)| w.finish(rt, res, known, dest));
    bufs.out = std::mem::take(&mut w.out);
    bufs.edits = take(&mut w.edits);
    bufs.dfa = std::mem::take(&mut w.dfa);
    bufs.states = take(&mut w.states);
    bufs.seen = take(&mut w.seen);
    bufs.path = relife(take(&mut w.path));
    bufs.res = take(&mut w.res);
    bufs.refs = relife(take(&mut w.refs));
    result.ok()
}

/// The walk's vectors, kept from one resource to the next so that a resource costs no
/// allocations for them (issue 6 item 7). Those that hold borrowed strings are kept empty,
/// as their allocations only ([`relife`]).
#[derive(Default)]
pub(crate) struct Buffers {
    out: Vec<u8>,
    edits: Vec<(usize, usize, Vec<u8>)>,
    dfa: Automaton,
    states: Vec<State>,
    seen: Vec<(u16, Option<u8>)>,
    res: Vec<Res>,
    path: Vec<(&'static str, Option<u32>)>,
    refs: Vec<&'static str>,
}

impl Buffers {
    /// The last walk's output before its edits: what [`Head`] positions refer to.
    pub(crate) fn out(&self) -> &[u8] {
        &self.out
    }
}

/// `v` emptied.
fn take<T>(v: &mut Vec<T>) -> Vec<T> {
    let mut v = std::mem::take(v);
    v.clear();
    v
}

/// An empty vector of `U` in the allocation of `v` (emptied): `U` is `T` with another
/// lifetime, and collecting an adapted `into_iter` reuses the buffer in place.
fn relife<T, U>(v: Vec<T>) -> Vec<U> {
    v.into_iter().filter_map(|_| None).collect()
}

impl<'p: 'a, 'a> W<'p, 'a> {
    fn name(&self, t: TypeId) -> &'static str {
        self.model.get(t).name.as_str()
    }

    fn number(&mut self) -> &'a str {
        self.numbers.next().unwrap_or("0")
    }

    fn applies(&self, r: u16) -> bool {
        let res = self.res.last().map(|r| r.ty);
        self.plan.rules[usize::from(r)]
            .applies
            .is_none_or(|t| Some(t) == res)
    }

    /// Continues rule `rule` at step `step` on the node `item` (of type `ty`): its `where`
    /// filters (`dynamic` set when there is one), then either a complete match (`own`) or a
    /// partial one (a new state).
    fn advance(
        &mut self,
        rule: u16,
        mut step: usize,
        item: Option<Json<'a>>,
        ty: Option<TypeId>,
        own: &mut Option<u16>,
        dynamic: &mut bool,
    ) -> R<()> {
        let plan = self.plan;
        let steps = &plan.rules[usize::from(rule)].steps;
        while let Some(Step::Where(e)) = steps.get(step) {
            *dynamic = true;
            let (Some(item), Some(ty)) = (item.filter(|i| i.is_object()), ty) else {
                return Err(Fb);
            };
            let items = e
                .evaluate_on_item(Item::node(item, self.name(ty)), &self.d.types, &self.env)
                .map_err(|_| Fb)?;
            let pass = match items.as_slice() {
                [] => false,
                [one] => !matches!(&*one.prim(), Item::Bool(false)),
                _ => return Err(Fb),
            };
            if !pass {
                return Ok(());
            }
            step += 1;
        }
        if step == steps.len() {
            *own = Some(own.map_or(rule, |o| o.min(rule)));
        } else {
            self.states.push(State {
                rule,
                step: step as u16,
            });
        }
        Ok(())
    }

    /// The node of member `base` (described by `elem`) of `parent`, item `item`.
    #[inline]
    fn child(&mut self, parent: Node, base: &str, elem: Elem, item: Option<Json<'a>>) -> R<Node> {
        let ty = elem.ty.unwrap_or(0);
        // Most members continue no partial match and start no rule: they inherit the
        // parent's rule and (empty) set, what `child_matching` gives then.
        if let Some(t) = elem.ty {
            if parent.no_partial() && self.plan.by_type[usize::from(t)].is_empty() {
                return Ok(Node(parent.0 & !0xFFFF | u64::from(t)));
            }
        }
        match self.dfa.next.get(&parent.key(elem.idx)) {
            Some(&n) => Ok(Node(n | u64::from(ty))),
            None => self.child_matching(parent, base, elem, item),
        }
    }

    /// [`W::child`] with the rules: the parent's partial matches and those anchored at the
    /// member's type; remembered in the automaton unless a `where` filter was involved.
    fn child_matching(
        &mut self,
        parent: Node,
        base: &str,
        elem: Elem,
        item: Option<Json<'a>>,
    ) -> R<Node> {
        self.states.clear();
        let cap = parent.eff().unwrap_or(u16::MAX);
        let mut own = None;
        let mut dynamic = false;
        let (from, to) = self.dfa.sets[usize::from(parent.set())];
        for i in from as usize..to as usize {
            let s = self.dfa.pool[i];
            if s.rule >= cap {
                continue;
            }
            let hit = match &self.plan.rules[usize::from(s.rule)].steps[usize::from(s.step)] {
                Step::Child(n) => {
                    base == n
                        || elem.choice.is_some_and(|g| {
                            self.model.get(parent.ty()).choice_base(g) == Some(n.as_str())
                        })
                }
                Step::Prefix(n) => {
                    base == n
                        || base
                            .strip_prefix(n.as_str())
                            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
                }
                Step::Where(_) => false,
            };
            if hit {
                if elem.ty.is_none() {
                    // A rule of the enclosing resource reaching into a nested one.
                    return Err(Fb);
                }
                self.advance(
                    s.rule,
                    usize::from(s.step) + 1,
                    item,
                    elem.ty,
                    &mut own,
                    &mut dynamic,
                )?;
            }
        }
        if let Some(t) = elem.ty {
            let plan = self.plan;
            for &r in &plan.by_type[usize::from(t)] {
                if r < cap && self.applies(r) {
                    self.advance(r, 0, item, Some(t), &mut own, &mut dynamic)?;
                }
            }
        }
        let eff = match (parent.eff(), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(e) = eff {
            let mut k = 0;
            for i in 0..self.states.len() {
                if self.states[i].rule < e {
                    self.states[k] = self.states[i];
                    k += 1;
                }
            }
            self.states.truncate(k);
        }
        let res = self.res.last().map_or(0, |r| r.ty);
        let (set, empty) = self.dfa.intern(res, &self.states)?;
        let node = Node::new(elem.ty.unwrap_or(0), eff, set, empty);
        if !dynamic {
            self.dfa.next.insert(parent.key(elem.idx), node.0 & !0xFFFF);
        }
        Ok(node)
    }

    /// The model's description of member `base` of an object of type `parent`.
    #[inline(always)]
    fn elem(&self, parent: TypeId, base: &str) -> R<Elem> {
        let def = self.model.get(parent);
        if let Kind::Primitive(_) = def.kind {
            // The `_name` object of a primitive: its id and extensions.
            return match base {
                "id" => Ok(Elem {
                    ty: Some(self.plan.string),
                    idx: 0,
                    primitive: true,
                    many: false,
                    choice: None,
                }),
                "extension" => Ok(Elem {
                    ty: Some(self.plan.extension),
                    idx: 1,
                    primitive: false,
                    many: true,
                    choice: None,
                }),
                _ => Err(Fb),
            };
        }
        let i = def.position(base).ok_or(Fb)?;
        Ok(self.plan.elems[usize::from(parent)][i])
    }

    /// Walks a resource object; returns its type and its record (labels not yet added).
    fn resource(&mut self, v: Json<'a>, contained: bool) -> R<(TypeIdx, Res)> {
        let obj = v.as_object().ok_or(Fb)?;
        let type_idx = obj
            .get("resourceType")
            .and_then(|t| t.into_string())
            .and_then(crate::fhir::resource_type_index)
            .ok_or(Fb)?;
        let rt = crate::fhir::resource_type_name(type_idx);
        let ty = *self
            .plan
            .resource_ids
            .get(usize::from(type_idx))
            .ok_or(Fb)?;
        let depth = self.res.len();
        self.out.extend_from_slice(b"{\"resourceType\":");
        write_str(rt, &mut self.out);
        self.res.push(Res {
            ty,
            contained,
            ops: Ops::default(),
            existing: Vec::new(),
            after_id: self.out.len(),
            meta: None,
        });
        let node = match self.dfa.roots.get(&ty) {
            Some(&n) => Node(n | u64::from(ty)),
            None => {
                self.states.clear();
                let mut own = None;
                let mut dynamic = false;
                let plan = self.plan;
                for &r in &plan.root[usize::from(ty)] {
                    self.advance(r, 0, Some(v), Some(ty), &mut own, &mut dynamic)?;
                }
                let (set, empty) = self.dfa.intern(ty, &self.states)?;
                let node = Node::new(ty, own, set, empty);
                if !dynamic {
                    self.dfa.roots.insert(ty, node.0 & !0xFFFF);
                }
                node
            }
        };
        if depth == 0 {
            self.root_id(v, node, rt)?;
        }
        self.members(obj, node, Role::Resource, true)?;
        self.out.push(b'}');
        let res = self.res.pop().ok_or(Fb)?;
        Ok((type_idx, res))
    }

    /// The root's id and what its rule does to it, before the walk: a date of the root is
    /// shifted with the id as the rules before the date's rule left it.
    fn root_id(&mut self, root: Json<'a>, node: Node, rt: &str) -> R<()> {
        let Some(v) = root.get("id") else {
            return Ok(());
        };
        if v.is_null() {
            return Ok(());
        }
        let id = v.into_string().ok_or(Fb)?;
        self.off.root_orig = id;
        let elem = self.elem(node.ty(), "id")?;
        let n = self.child(node, "id", elem, Some(v))?;
        self.off.root_rule = n.eff();
        let change = match n.eff().filter(|_| !id.is_empty()) {
            None => (Change::Keep, Ops::default()),
            Some(r) => {
                let at = ValueAt {
                    ty: self.name(n.ty()),
                    name: "id",
                    parent_ty: Some(rt),
                };
                let method = self.plan.rules[usize::from(r)].method;
                let off = &mut self.off;
                self.d
                    .value_method(method, at, id, || off.get(r, false))
                    .map_err(|_| Fb)?
            }
        };
        self.off.root_final = Some(match &change.0 {
            Change::Keep => id.to_string(),
            Change::Set(s) => s.clone(),
            Change::Remove => String::new(),
        });
        self.root_id = Some(change);
        Ok(())
    }

    /// Writes the members of `obj` (a node of type `node.ty()`) after `{`; `true` when one was
    /// written (a resource always has `resourceType`).
    fn members(
        &mut self,
        obj: simd_json::tape::Object<'a, 'a>,
        node: Node,
        role: Role,
        resource: bool,
    ) -> R<bool> {
        let seen0 = self.seen.len();
        let mut wrote = resource;
        let mut any = false;
        let slot = (node.ty() == self.plan.attachment && self.want_text).then(|| {
            self.content_types.push(None);
            self.content_types.len() - 1
        });
        let mut it = obj.iter().peekable();
        while let Some((k, v)) = it.next() {
            if resource && k == "resourceType" {
                continue;
            }
            let (ext, base) = match k.strip_prefix('_') {
                Some(b) => (true, b),
                None => (false, k),
            };
            let elem = self.elem(node.ty(), base)?;
            let dup = self.seen[seen0..]
                .iter()
                .any(|&(i, c)| i == elem.idx || (c.is_some() && c == elem.choice));
            if dup {
                return Err(Fb);
            }
            self.seen.push((elem.idx, elem.choice));
            if ext && !elem.primitive {
                return Err(Fb);
            }
            let ext_v = if !ext && elem.primitive {
                match it.peek() {
                    Some((k2, _)) if k2.strip_prefix('_') == Some(base) => {
                        it.next().map(|(_, e)| e)
                    }
                    _ => None,
                }
            } else {
                None
            };
            let (val, extv) = if ext {
                (None, Some(v))
            } else {
                (Some(v), ext_v)
            };
            let w = self.member(base, elem, val, extv, node, role, slot, &mut wrote)?;
            any |= w;
            if role == Role::Resource && base == "id" {
                if let Some(r) = self.res.last_mut() {
                    r.after_id = self.out.len();
                }
            }
        }
        self.seen.truncate(seen0);
        Ok(any)
    }

    /// Writes `"base":` (after a comma when `wrote`). `base` is the name of a model
    /// element, an ASCII identifier, so it needs no escaping.
    #[inline]
    fn key(&mut self, base: &str, wrote: bool) {
        if wrote {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(base.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// One member (`val` its value or values, `extv` the `_name` of a primitive).
    #[allow(clippy::too_many_arguments)]
    fn member(
        &mut self,
        base: &'a str,
        elem: Elem,
        val: Option<Json<'a>>,
        extv: Option<Json<'a>>,
        parent: Node,
        role: Role,
        slot: Option<usize>,
        wrote: &mut bool,
    ) -> R<bool> {
        let mark = self.out.len();
        if role == Role::Resource && base == "meta" {
            if val.is_some_and(|v| v.is_array()) {
                return Err(Fb);
            }
            if let Some(r) = self.res.last_mut() {
                r.meta = Some(MetaAt {
                    mark,
                    written: false,
                    close: 0,
                    sec_close: None,
                });
            }
        }
        let child_role = match (role, base) {
            (Role::Resource, "meta") => Role::Meta,
            (Role::Meta, "security") => Role::Security,
            _ => Role::Other,
        };
        if elem.primitive && (extv.is_some() || val.is_none()) {
            // A primitive with its `_name`: one element.
            let Some(ext) = extv else { return Err(Fb) };
            if elem.many || ext.is_array() || val.is_some_and(|v| v.is_array()) {
                return Err(Fb);
            }
            self.path.push((base, None));
            let item = val.filter(|v| !v.is_null());
            let node = self.child(parent, base, elem, item)?;
            if let Some(v) = item {
                self.primitive(v, base, node, parent, role, slot, Some(wrote))?;
            }
            let m2 = self.out.len();
            if !ext.is_null() {
                let obj = ext.as_object().ok_or(Fb)?;
                self.key_ext(base, *wrote);
                self.out.push(b'{');
                let w = self.members(obj, node, Role::Other, false)?;
                self.out.push(b'}');
                if w {
                    *wrote = true;
                } else {
                    self.out.truncate(m2);
                }
            }
            self.path.pop();
            return Ok(self.out.len() > mark);
        }
        let v = val.ok_or(Fb)?;
        let array = v.is_array() || elem.many;
        self.key(base, *wrote);
        if array {
            self.out.push(b'[');
        }
        let mut n = 0u32;
        let items = v.as_array().map(|a| a.iter());
        let one = items.is_none().then_some(v);
        for (i, item) in items.into_iter().flatten().chain(one).enumerate() {
            if item.is_array() {
                return Err(Fb);
            }
            if item.is_null() {
                continue;
            }
            self.path.push((base, array.then_some(i as u32)));
            let im = self.out.len();
            if n > 0 {
                self.out.push(b',');
            }
            let wrote_item = if elem.ty.is_none() {
                // Only for its check: no rule of this resource may reach into the nested one.
                self.child(parent, base, elem, Some(item))?;
                let (_, res) = self.resource(item, base == "contained")?;
                self.close_resource(res);
                true
            } else if elem.primitive {
                let node = self.child(parent, base, elem, Some(item))?;
                self.primitive(item, base, node, parent, role, slot, None)?
            } else {
                let obj = item.as_object().ok_or(Fb)?;
                let node = self.child(parent, base, elem, Some(item))?;
                self.out.push(b'{');
                let w = self.members(obj, node, child_role, false)?;
                if child_role == Role::Meta {
                    let close = self.out.len();
                    if let Some(m) = self.res.last_mut().and_then(|r| r.meta.as_mut()) {
                        m.close = close;
                    }
                }
                self.out.push(b'}');
                w
            };
            self.path.pop();
            if wrote_item {
                n += 1;
            } else {
                self.out.truncate(im);
            }
        }
        if n == 0 {
            self.out.truncate(mark);
            return Ok(false);
        }
        if array {
            if role == Role::Meta && base == "security" {
                let close = self.out.len();
                if let Some(m) = self.res.last_mut().and_then(|r| r.meta.as_mut()) {
                    m.sec_close = Some(close);
                }
            }
            self.out.push(b']');
        }
        if child_role == Role::Meta {
            if let Some(m) = self.res.last_mut().and_then(|r| r.meta.as_mut()) {
                m.written = true;
            }
        }
        *wrote = true;
        Ok(true)
    }

    /// Writes `"_base":`, as [`W::key`].
    fn key_ext(&mut self, base: &str, wrote: bool) {
        if wrote {
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"\"_");
        self.out.extend_from_slice(base.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Primitive `v` after its rule, written (after its key, when `key` says whether a
    /// member was written before); `false` when its rule removed it. One call for both, so
    /// that the value is not returned through memory ([`W::value`], [`W::write_value`]).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn primitive(
        &mut self,
        v: Json<'a>,
        base: &'a str,
        node: Node,
        parent: Node,
        role: Role,
        slot: Option<usize>,
        key: Option<&mut bool>,
    ) -> R<bool> {
        let Some(value) = self.value(v, base, node, parent, role, slot)? else {
            return Ok(false);
        };
        if let Some(wrote) = key {
            self.key(base, *wrote);
            *wrote = true;
        }
        self.write_value(value, node.ty(), base, parent, slot, role);
        Ok(true)
    }

    /// The value of primitive `v` after its rule (`None`: removed), with the side records:
    /// the original reference (free text), the security codes, the content type.
    #[inline]
    fn value(
        &mut self,
        v: Json<'a>,
        base: &'a str,
        node: Node,
        parent: Node,
        role: Role,
        slot: Option<usize>,
    ) -> R<Option<Val<'a>>> {
        let (text, is_str): (&'a str, bool) = if let Some(s) = v.into_string() {
            (s, true)
        } else if let Some(b) = v.as_bool() {
            (if b { "true" } else { "false" }, false)
        } else if v.is_object() || v.is_array() {
            return Err(Fb);
        } else {
            (self.number(), false)
        };
        let orig = if is_str {
            Val::Str(Cow::Borrowed(text))
        } else {
            Val::Raw(text)
        };
        if self.want_text && parent.ty() == self.plan.reference && base == "reference" {
            self.refs.push(text);
        }
        let root_id = self.res.len() == 1 && role == Role::Resource && base == "id";
        let (change, ops) = match node.eff().filter(|_| !text.is_empty()) {
            None => (Change::Keep, Ops::default()),
            Some(_) if root_id => self.root_id.take().ok_or(Fb)?,
            Some(r) => {
                let at = ValueAt {
                    ty: self.name(node.ty()),
                    name: base,
                    parent_ty: Some(self.name(parent.ty())),
                };
                let method = self.plan.rules[usize::from(r)].method;
                let nested = self.res.len() > 1;
                let off = &mut self.off;
                self.d
                    .value_method(method, at, text, || off.get(r, nested))
                    .map_err(|_| Fb)?
            }
        };
        if let Some(res) = self.res.last_mut() {
            res.ops |= ops;
        }
        let value = match change {
            Change::Keep => Some(orig),
            Change::Set(s) => Some(Val::Str(Cow::Owned(s))),
            Change::Remove => None,
        };
        if let Some(val) = &value {
            let t = match val {
                Val::Str(s) => s.as_ref(),
                Val::Raw(s) => s,
            };
            if role == Role::Security && base == "code" {
                let code = t.to_string();
                if let Some(res) = self.res.last_mut() {
                    res.existing.push(code);
                }
            }
            if let (Some(s), "contentType") = (slot, base) {
                if self.content_types[s].is_none() {
                    self.content_types[s] = Some(match val {
                        Val::Str(c) => c.clone(),
                        Val::Raw(r) => Cow::Borrowed(*r),
                    });
                }
            }
        }
        Ok(value)
    }

    /// Writes a value (of an element of type `ty`); a string that is a free-text carrier is
    /// recorded, and so is where the root's id and meta.versionId/lastUpdated are.
    fn write_value(
        &mut self,
        value: Val<'a>,
        ty: TypeId,
        base: &'a str,
        parent: Node,
        slot: Option<usize>,
        role: Role,
    ) {
        let start = self.out.len();
        match &value {
            Val::Raw(r) => self.out.extend_from_slice(r.as_bytes()),
            Val::Str(s) => write_str(s, &mut self.out),
        }
        let end = self.out.len();
        if self.res.len() == 1 {
            let h = match (role, base) {
                (Role::Resource, "id") => Some(0),
                (Role::Meta, "versionId") => Some(1),
                (Role::Meta, "lastUpdated") => Some(2),
                _ => None,
            };
            if let Some(h) = h {
                self.head[h] = Some((start, end));
                return;
            }
        }
        let Val::Str(s) = value else { return };
        if !self.want_text {
            return;
        }
        let kind = if ty == self.plan.xhtml {
            CarrierKind::Narrative
        } else if parent.ty() == self.plan.annotation && base == "text" {
            CarrierKind::Text
        } else if let (Some(slot), "data") = (slot, base) {
            CarrierKind::Attachment(slot)
        } else {
            return;
        };
        let path = self.element_path();
        self.carriers.push(Rec {
            kind,
            start,
            end,
            value: s,
            path,
        });
    }

    /// `Type.name[i].name` of the element being written.
    fn element_path(&self) -> String {
        let root = self
            .res
            .first()
            .map_or("", |r| self.model.get(r.ty).name.as_str());
        let mut s = root.to_string();
        for (name, i) in &self.path {
            s.push('.');
            s.push_str(name);
            if let Some(i) = i {
                s.push_str(&format!("[{i}]"));
            }
        }
        s
    }

    /// The labels for `ops` not yet in `existing`, as `(position, bytes)`.
    fn labels(res: &Res, ops: &[Ops]) -> Option<(usize, Vec<u8>)> {
        // Each label's coding as JSON, written once per process.
        static CODINGS: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(|| {
            LABELS
                .iter()
                .map(|(_, system, code, display)| {
                    let mut c = b"{".to_vec();
                    if let Some(s) = system {
                        c.extend_from_slice(b"\"system\":");
                        write_str(s, &mut c);
                        c.push(b',');
                    }
                    c.extend_from_slice(b"\"code\":");
                    write_str(code, &mut c);
                    c.extend_from_slice(b",\"display\":");
                    write_str(display, &mut c);
                    c.push(b'}');
                    c
                })
                .collect()
        });
        let (at, pre, post): (usize, &[u8], &[u8]) = match res.meta {
            None => (res.after_id, b",\"meta\":{\"security\":[", b"]}"),
            Some(m) if !m.written => (m.mark, b",\"meta\":{\"security\":[", b"]}"),
            Some(MetaAt {
                sec_close: Some(p), ..
            }) => (p, b",", b""),
            Some(m) => (m.close, b",\"security\":[", b"]"),
        };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(pre);
        let mut added = 0u32;
        for &o in ops {
            for (i, (flag, _, code, _)) in LABELS.iter().enumerate() {
                if !o.has(*flag)
                    || added & (1 << i) != 0
                    || res.existing.iter().any(|e| e.eq_ignore_ascii_case(code))
                {
                    continue;
                }
                if added != 0 {
                    out.push(b',');
                }
                added |= 1 << i;
                out.extend_from_slice(&CODINGS[i]);
            }
        }
        if added == 0 {
            return None;
        }
        out.extend_from_slice(post);
        Some((at, out))
    }

    /// A nested resource is done: its labels, and its ops for the enclosing one.
    fn close_resource(&mut self, res: Res) {
        if !res.contained && !res.ops.is_empty() {
            if let Some(e) = Self::labels(&res, &[res.ops]) {
                self.edits.push((e.0, e.0, e.1));
            }
        }
        if let Some(parent) = self.res.last_mut() {
            parent.ops |= res.ops;
        }
    }

    /// Free text, the root's labels, and the edits applied; the output is appended to
    /// `dest` (only when all of it succeeded).
    fn finish(
        &mut self,
        type_idx: TypeIdx,
        res: Res,
        known: Option<&text::KnownIndex>,
        dest: &mut Vec<u8>,
    ) -> R<Streamed> {
        let rt = crate::fhir::resource_type_name(type_idx);
        let mut ops = res.ops;
        let mut text_out = text::TextOutcome::default();
        let mut label = Ops::default();
        if let (Some(t), false) = (self.d.text.as_ref(), self.carriers.is_empty()) {
            let mut refs = Vec::with_capacity(self.refs.len() + 1);
            refs.push(format!("{rt}/{}", self.off.root_orig));
            refs.extend(self.refs.iter().map(|r| r.to_string()));
            let known = super::merged_known(known.filter(|_| t.known), &refs);
            let scope = super::patient_scope(&refs);
            let p = t.processor(scope);
            let mut changed = false;
            for c in std::mem::take(&mut self.carriers) {
                let kind = match c.kind {
                    CarrierKind::Narrative => text::Carrier::Narrative,
                    CarrierKind::Text => text::Carrier::Text,
                    CarrierKind::Attachment(s) => {
                        text::Carrier::Attachment(self.content_types[s].as_deref())
                    }
                };
                let path = &c.path;
                let new = text::process_carrier(&p, kind, &c.value, &known, &mut text_out, || {
                    path.clone()
                })
                .map_err(|_| Fb)?;
                if let Some(n) = new {
                    let mut lit = Vec::with_capacity(n.len() + 2);
                    write_str(&n, &mut lit);
                    self.edits.push((c.start, c.end, lit));
                    changed = true;
                }
            }
            label = match t.operation() {
                crate::phi::PhiOperation::Redact => Ops::REDACT,
                crate::phi::PhiOperation::Surrogate => Ops::SUBSTITUTE,
                crate::phi::PhiOperation::Tag => Ops::default(),
            };
            if !changed {
                label = Ops::default();
            }
        }
        let root_labels = Self::labels(&res, &[ops, label]);
        let meta = res.meta.is_some_and(|m| m.written) || root_labels.is_some();
        if let Some(e) = root_labels {
            self.edits.push((e.0, e.0, e.1));
        }
        ops |= label;
        // meta.versionId and lastUpdated are read only from a meta that is written.
        let head = Head {
            at: [
                self.head[0],
                self.head[1].filter(|_| meta),
                self.head[2].filter(|_| meta),
            ],
            meta,
        };
        self.edits.sort_by_key(|e| e.0);
        let extra: usize = self.edits.iter().map(|e| e.2.len()).sum();
        dest.reserve(self.out.len() + extra);
        let mut at = 0;
        for (s, e, bytes) in &self.edits {
            dest.extend_from_slice(&self.out[at..*s]);
            dest.extend_from_slice(bytes);
            at = *e;
        }
        dest.extend_from_slice(&self.out[at..]);
        Ok(Streamed {
            type_idx,
            ops,
            text: text_out,
            head,
        })
    }
}
