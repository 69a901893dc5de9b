//! Builds the syntax tree of an expression (precedence climbing over the tokens of
//! [`super::lexer`]) and checks what can be checked before evaluation: function names and their
//! number of arguments, and type specifiers of `is`/`as`. The tree is immutable, `Send + Sync`,
//! and evaluated any number of times on any thread.

use super::decimal::Decimal;
use super::error::ParseError;
use super::functions::{arity, view_arity};
use super::lexer::{tokenize, Tok, Token};
use super::temporal::Temporal;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `true` / `false`.
    Bool(bool),
    /// `'text'`.
    Str(String),
    /// `12`.
    Int(i64),
    /// `1.50`.
    Dec(Decimal),
    /// `@2015`, `@2015-02-04T10:00`, `@T10:00`.
    Temporal(Temporal),
    /// `4 'mg'`, `7 days`.
    Quantity(Decimal, String),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `div`
    IntDiv,
    /// `mod`
    Mod,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `&`
    Concat,
    /// `|`
    Union,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `=`
    Eq,
    /// `~`
    Equiv,
    /// `!=`
    Ne,
    /// `!~`
    NotEquiv,
    /// `in`
    In,
    /// `contains`
    Contains,
    /// `and`
    And,
    /// `or`
    Or,
    /// `xor`
    Xor,
    /// `implies`
    Implies,
}

/// A type name as written in `is`, `as`, `ofType`: an optional namespace and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    /// `FHIR`, `System`, or `None` when not written.
    pub namespace: Option<String>,
    /// `Patient`, `string`, `Integer`.
    pub name: String,
}

/// What a node of the tree does.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `{}`.
    Empty,
    /// A literal.
    Lit(Lit),
    /// A name at the start of a path: a member of the focus, or the focus when it names its type.
    Ident(String),
    /// `$this`.
    This,
    /// `$index`.
    Index,
    /// `$total`.
    Total,
    /// `%name`.
    Env(String),
    /// `a.name`.
    Member(Box<Expr>, String),
    /// `f(args)` on the focus (`None`) or `a.f(args)`.
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    /// `a[i]`.
    Indexer(Box<Expr>, Box<Expr>),
    /// `-a` (`+a` is dropped).
    Neg(Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a is T`.
    Is(Box<Expr>, TypeSpec),
    /// `a as T`.
    As(Box<Expr>, TypeSpec),
}

/// A node of the syntax tree and its byte position in the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it does.
    pub kind: ExprKind,
    /// Byte offset in the expression.
    pub pos: usize,
}

const CALENDAR_UNITS: [&str; 16] = [
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
];

fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::Sym("*") => (BinOp::Mul, 10),
        Tok::Sym("/") => (BinOp::Div, 10),
        Tok::Sym("+") => (BinOp::Add, 9),
        Tok::Sym("-") => (BinOp::Sub, 9),
        Tok::Sym("&") => (BinOp::Concat, 9),
        Tok::Sym("|") => (BinOp::Union, 7),
        Tok::Sym("<") => (BinOp::Lt, 6),
        Tok::Sym(">") => (BinOp::Gt, 6),
        Tok::Sym("<=") => (BinOp::Le, 6),
        Tok::Sym(">=") => (BinOp::Ge, 6),
        Tok::Sym("=") => (BinOp::Eq, 5),
        Tok::Sym("~") => (BinOp::Equiv, 5),
        Tok::Sym("!=") => (BinOp::Ne, 5),
        Tok::Sym("!~") => (BinOp::NotEquiv, 5),
        Tok::Ident {
            name,
            quoted: false,
        } => match name.as_str() {
            "div" => (BinOp::IntDiv, 10),
            "mod" => (BinOp::Mod, 10),
            "in" => (BinOp::In, 4),
            "contains" => (BinOp::Contains, 4),
            "and" => (BinOp::And, 3),
            "or" => (BinOp::Or, 2),
            "xor" => (BinOp::Xor, 2),
            "implies" => (BinOp::Implies, 1),
            _ => return None,
        },
        _ => return None,
    })
}

/// Precedence of `is` / `as`.
const TYPE_PREC: u8 = 8;

struct Parser {
    toks: Vec<Token>,
    at: usize,
    /// Whether the SQL on FHIR functions (`getResourceKey`, `getReferenceKey`) are known.
    view_functions: bool,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.at].pos
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.at].clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }

    fn expect(&mut self, s: &'static str) -> Result<(), ParseError> {
        if *self.peek() == Tok::Sym(s) {
            self.next();
            Ok(())
        } else {
            Err(ParseError::new(
                self.pos(),
                format!("expected '{s}', found {}", describe(self.peek())),
            ))
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            let pos = self.pos();
            if let Tok::Ident {
                name,
                quoted: false,
            } = self.peek()
            {
                if (name == "is" || name == "as") && TYPE_PREC >= min {
                    let is = name == "is";
                    self.next();
                    let spec = self.type_spec()?;
                    let b = Box::new(left);
                    left = Expr {
                        kind: if is {
                            ExprKind::Is(b, spec)
                        } else {
                            ExprKind::As(b, spec)
                        },
                        pos,
                    };
                    continue;
                }
            }
            let Some((op, prec)) = binop(self.peek()) else {
                break;
            };
            if prec < min {
                break;
            }
            self.next();
            let right = self.expr(prec + 1)?;
            left = Expr {
                kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
                pos,
            };
        }
        Ok(left)
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let first = self.ident_name()?;
        if *self.peek() == Tok::Sym(".") {
            self.next();
            let name = self.ident_name()?;
            return Ok(TypeSpec {
                namespace: Some(first),
                name,
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name: first,
        })
    }

    fn ident_name(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Token {
                tok: Tok::Ident { name, .. },
                ..
            } => Ok(name),
            t => Err(ParseError::new(
                t.pos,
                format!("expected a name, found {}", describe(&t.tok)),
            )),
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        match self.peek() {
            Tok::Sym("-") => {
                self.next();
                let e = self.unary()?;
                Ok(match e.kind {
                    ExprKind::Lit(Lit::Int(i)) => Expr {
                        kind: ExprKind::Lit(Lit::Int(-i)),
                        pos,
                    },
                    ExprKind::Lit(Lit::Dec(d)) => Expr {
                        kind: ExprKind::Lit(Lit::Dec(d.neg())),
                        pos,
                    },
                    _ => Expr {
                        kind: ExprKind::Neg(Box::new(e)),
                        pos,
                    },
                })
            }
            Tok::Sym("+") => {
                self.next();
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            let pos = self.pos();
            match self.peek() {
                Tok::Sym(".") => {
                    self.next();
                    let npos = self.pos();
                    let name = self.ident_name()?;
                    if *self.peek() == Tok::Sym("(") {
                        let args = self.call_args(&name, npos)?;
                        e = Expr {
                            kind: ExprKind::Call(Some(Box::new(e)), name, args),
                            pos: npos,
                        };
                    } else {
                        e = Expr {
                            kind: ExprKind::Member(Box::new(e), name),
                            pos: npos,
                        };
                    }
                }
                Tok::Sym("[") => {
                    self.next();
                    let i = self.expr(0)?;
                    self.expect("]")?;
                    e = Expr {
                        kind: ExprKind::Indexer(Box::new(e), Box::new(i)),
                        pos,
                    };
                }
                _ => return Ok(e),
            }
        }
    }

    fn call_args(&mut self, name: &str, pos: usize) -> Result<Vec<Expr>, ParseError> {
        self.expect("(")?;
        let mut args = Vec::new();
        if *self.peek() != Tok::Sym(")") {
            loop {
                args.push(self.expr(0)?);
                if *self.peek() == Tok::Sym(",") {
                    self.next();
                } else {
                    break;
                }
            }
        }
        self.expect(")")?;
        let found = arity(name).or_else(|| view_arity(name).filter(|_| self.view_functions));
        let Some((min, max)) = found else {
            return Err(ParseError::new(pos, format!("unknown function '{name}'")));
        };
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(ParseError::new(
                pos,
                format!("{name}() takes {want} arguments, found {}", args.len()),
            ));
        }
        Ok(args)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let t = self.next();
        let pos = t.pos;
        let kind = match t.tok {
            Tok::Number(n) => {
                let value = Decimal::parse(&n)
                    .ok_or_else(|| ParseError::new(pos, "number out of range"))?;
                let unit = match self.peek() {
                    Tok::Str(u) => Some(u.clone()),
                    Tok::Ident {
                        name,
                        quoted: false,
                    } if CALENDAR_UNITS.contains(&name.as_str()) => Some(name.clone()),
                    _ => None,
                };
                if let Some(u) = unit {
                    self.next();
                    ExprKind::Lit(Lit::Quantity(value, u))
                } else if n.contains('.') {
                    ExprKind::Lit(Lit::Dec(value))
                } else {
                    let i = n
                        .parse()
                        .map_err(|_| ParseError::new(pos, "integer out of range"))?;
                    ExprKind::Lit(Lit::Int(i))
                }
            }
            Tok::Str(s) => ExprKind::Lit(Lit::Str(s)),
            Tok::DateTime(s) => {
                let t = if s.contains('T') {
                    Temporal::parse_datetime(&s, true)
                } else {
                    Temporal::parse_date(&s)
                };
                ExprKind::Lit(Lit::Temporal(t.ok_or_else(|| {
                    ParseError::new(pos, format!("invalid date/time @{s}"))
                })?))
            }
            Tok::Time(s) => {
                let t = Temporal::parse_time(&s)
                    .ok_or_else(|| ParseError::new(pos, format!("invalid time @T{s}")))?;
                ExprKind::Lit(Lit::Temporal(t))
            }
            Tok::Env(n) => ExprKind::Env(n),
            Tok::Sym("$this") => ExprKind::This,
            Tok::Sym("$index") => ExprKind::Index,
            Tok::Sym("$total") => ExprKind::Total,
            Tok::Sym("(") => {
                let e = self.expr(0)?;
                self.expect(")")?;
                return Ok(e);
            }
            Tok::Sym("{") => {
                self.expect("}")?;
                ExprKind::Empty
            }
            Tok::Ident { name, quoted } => {
                if !quoted && (name == "true" || name == "false") {
                    ExprKind::Lit(Lit::Bool(name == "true"))
                } else if *self.peek() == Tok::Sym("(") && !quoted {
                    let args = self.call_args(&name, pos)?;
                    ExprKind::Call(None, name, args)
                } else {
                    ExprKind::Ident(name)
                }
            }
            other => {
                return Err(ParseError::new(
                    pos,
                    format!("expected an expression, found {}", describe(&other)),
                ))
            }
        };
        Ok(Expr { kind, pos })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::End => "the end".into(),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::Ident { name, .. } => format!("'{name}'"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Number(n) => n.clone(),
        Tok::DateTime(s) => format!("@{s}"),
        Tok::Time(s) => format!("@T{s}"),
        Tok::Env(s) => format!("%{s}"),
    }
}

/// Parses a whole expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    parse_with(src, false)
}

/// Parses a whole expression; `view_functions` adds the SQL on FHIR functions.
pub fn parse_with(src: &str, view_functions: bool) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        at: 0,
        view_functions,
    };
    let e = p.expr(0)?;
    if *p.peek() != Tok::End {
        return Err(ParseError::new(
            p.pos(),
            format!("unexpected {}", describe(p.peek())),
        ));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Empty => "{}".into(),
            ExprKind::Lit(l) => format!("{l:?}"),
            ExprKind::Ident(n) => n.clone(),
            ExprKind::This => "$this".into(),
            ExprKind::Index => "$index".into(),
            ExprKind::Total => "$total".into(),
            ExprKind::Env(n) => format!("%{n}"),
            ExprKind::Member(a, n) => format!("{}.{n}", shape(a)),
            ExprKind::Call(a, n, args) => {
                let args: Vec<String> = args.iter().map(shape).collect();
                match a {
                    Some(a) => format!("{}.{n}({})", shape(a), args.join(",")),
                    None => format!("{n}({})", args.join(",")),
                }
            }
            ExprKind::Indexer(a, i) => format!("{}[{}]", shape(a), shape(i)),
            ExprKind::Neg(a) => format!("-({})", shape(a)),
            ExprKind::Binary(op, a, b) => format!("({} {op:?} {})", shape(a), shape(b)),
            ExprKind::Is(a, t) => format!("({} is {:?}.{})", shape(a), t.namespace, t.name),
            ExprKind::As(a, t) => format!("({} as {:?}.{})", shape(a), t.namespace, t.name),
        }
    }

    #[test]
    fn precedence() {
        assert_eq!(
            shape(&parse("1 + 2 * 3 = 7 and true").unwrap()),
            "(((Int(1) Add (Int(2) Mul Int(3))) Eq Int(7)) And Bool(true))"
        );
        assert_eq!(
            shape(&parse("a.b[0].where(c > 1) | d").unwrap()),
            "(a.b[Int(0)].where((c Gt Int(1))) Union d)"
        );
        assert_eq!(
            shape(&parse("1 > 2 is Boolean").unwrap()),
            "(Int(1) Gt (Int(2) is None.Boolean))"
        );
        assert_eq!(
            shape(&parse("-1.5.abs()").unwrap()),
            "-(Dec(Decimal { mantissa: 15, scale: 1 }).abs())"
        );
        assert_eq!(
            shape(&parse("4 days").unwrap()),
            "Quantity(Decimal { mantissa: 4, scale: 0 }, \"days\")"
        );
    }

    #[test]
    fn errors_have_positions() {
        assert_eq!(
            parse("2 + 2 /").unwrap_err().to_string(),
            "at 7: expected an expression, found the end"
        );
        assert_eq!(
            parse("a.foo()").unwrap_err().to_string(),
            "at 2: unknown function 'foo'"
        );
        assert_eq!(
            parse("a.where()").unwrap_err().to_string(),
            "at 2: where() takes 1 arguments, found 0"
        );
        assert_eq!(
            parse("(1").unwrap_err().to_string(),
            "at 2: expected ')', found the end"
        );
        assert_eq!(parse("1 2").unwrap_err().to_string(), "at 2: unexpected 2");
    }
}
