//! The two errors of the engine: [`ParseError`] (the expression does not compile: syntax, an
//! unknown function, a wrong number of arguments) and [`EvalError`] (evaluation failed: a
//! collection where one item was needed, operands of the wrong type, an unknown type name, an
//! undefined `%variable`). Both carry the byte position in the expression. [`VarError`]: a user
//! variable that cannot be defined.

use thiserror::Error;

/// The expression does not compile.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at {pos}: {message}")]
pub struct ParseError {
    /// Byte offset in the expression.
    pub pos: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    /// An error at `pos`.
    pub fn new(pos: usize, message: impl Into<String>) -> Self {
        ParseError {
            pos,
            message: message.into(),
        }
    }
}

/// Evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at {pos}: {message}")]
pub struct EvalError {
    /// Byte offset of the sub-expression that failed.
    pub pos: usize,
    /// What is wrong.
    pub message: String,
}

impl EvalError {
    /// An error at `pos`.
    pub fn new(pos: usize, message: impl Into<String>) -> Self {
        EvalError {
            pos,
            message: message.into(),
        }
    }
}

/// A user variable that cannot be defined (see [`super::Env`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VarError {
    /// The name is one the engine defines itself.
    #[error("%{0} is defined by FHIRPath and cannot be set")]
    Reserved(String),
    /// The name is empty or contains a backtick.
    #[error("invalid variable name {0:?}")]
    BadName(String),
}
