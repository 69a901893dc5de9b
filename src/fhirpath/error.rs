//! The two errors of the engine: [`ParseError`] (the expression does not compile: syntax, an
//! unknown function, a wrong number of arguments) and [`EvalError`] (evaluation failed: a
//! collection where one item was needed, operands of the wrong type, an unknown type name).
//! Both carry the byte position in the expression.

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
