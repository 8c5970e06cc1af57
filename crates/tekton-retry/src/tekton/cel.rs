//! A small evaluator for the CEL `when` expressions Tekton users write
//! (`when: [{cel: "'$(params.env)' == 'prod'"}]`), after Tekton substituted the parameters and
//! results into them. Tekton evaluates each with an empty environment: no variables, only literals
//! and the standard operators (pipelinerunresolution.go `ResolvedPipelineTask.EvaluateCEL`,
//! `cel.NewEnv()` → `Compile` → `Eval`), so a substituted expression's value never depends on
//! anything but its text.
//!
//! Supported: string literals ('…' and "…", with `\\`, `\'`, `\"`, `\n`, `\t` escapes), integer
//! literals, `true`/`false`, list literals `[…]`, parentheses, `==`, `!=`, `in` (list membership),
//! `!`, `&&`, `||` with CEL's precedence (`!` > `==`/`!=`/`in` > `&&` > `||`).
//!
//! Not supported (evaluated as [`CelError::Unsupported`], never guessed): `<`, `>`, `<=`, `>=`,
//! arithmetic, the ternary `?:`, maps, field selection, function calls and macros (`size`,
//! `matches`, `startsWith`, `exists`, …), raw and triple-quoted strings, floats, bytes, unsigned
//! literals, identifiers (Tekton's environment declares none, so any identifier is an error there
//! too). CEL's commutative error/short-circuit semantics for `&&`/`||` are reduced to left-to-right
//! evaluation of well-typed operands.

use std::fmt;

/// Why an expression has no value here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelError {
    /// The expression uses CEL this evaluator does not implement.
    #[error("unsupported CEL: {0}")]
    Unsupported(String),
    /// The expression is malformed or ill-typed (CEL would refuse it too).
    #[error("invalid CEL: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Val>),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Str(_) => write!(f, "string"),
            Val::Int(_) => write!(f, "int"),
            Val::Bool(_) => write!(f, "bool"),
            Val::List(_) => write!(f, "list"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Int(i64),
    Ident(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, CelError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut lit = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(CelError::Invalid("unterminated string".into()));
                };
                i += 1;
                if d == c {
                    break;
                }
                if d == '\\' {
                    let e = chars
                        .get(i)
                        .ok_or_else(|| CelError::Invalid("unterminated escape".into()))?;
                    i += 1;
                    lit.push(match e {
                        '\\' => '\\',
                        '\'' => '\'',
                        '"' => '"',
                        'n' => '\n',
                        't' => '\t',
                        other => return Err(CelError::Unsupported(format!("escape \\{other}"))),
                    });
                } else {
                    lit.push(d);
                }
            }
            out.push(Tok::Str(lit));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<i64>()
                .map_err(|_| CelError::Unsupported(format!("number {text}")))?;
            out.push(Tok::Int(n));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_alphanumeric() || *d == '_')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = match two.as_str() {
            "==" => Some("=="),
            "!=" => Some("!="),
            "&&" => Some("&&"),
            "||" => Some("||"),
            "<=" | ">=" => return Err(CelError::Unsupported(format!("operator {two}"))),
            _ => None,
        };
        if let Some(op) = op {
            out.push(Tok::Op(op));
            i += 2;
            continue;
        }
        let op = match c {
            '!' => "!",
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            other => return Err(CelError::Unsupported(format!("token {other:?}"))),
        };
        out.push(Tok::Op(op));
        i += 1;
    }
    Ok(out)
}

/// Nesting (parentheses, lists, `!`) the evaluator accepts: the expression comes from a user's
/// PipelineRun, and the parser recurses once per level (cel-go's parser also bounds recursion,
/// `maxRecursionDepth`).
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn enter(&mut self) -> Result<(), CelError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CelError::Unsupported(format!(
                "nesting deeper than {MAX_DEPTH}"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Val, CelError> {
        self.enter()?;
        let v = self.or_inner();
        self.depth -= 1;
        v
    }

    fn or_inner(&mut self) -> Result<Val, CelError> {
        let mut left = self.and()?;
        while self.eat_op("||") {
            let right = self.and()?;
            left = Val::Bool(as_bool(&left)? || as_bool(&right)?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Val, CelError> {
        let mut left = self.unary()?;
        while self.eat_op("&&") {
            let right = self.unary()?;
            left = Val::Bool(as_bool(&left)? && as_bool(&right)?);
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Val, CelError> {
        if self.eat_op("!") {
            self.enter()?;
            let v = self.unary();
            self.depth -= 1;
            return Ok(Val::Bool(!as_bool(&v?)?));
        }
        self.relation()
    }

    fn relation(&mut self) -> Result<Val, CelError> {
        let left = self.primary()?;
        if self.eat_op("==") {
            let right = self.primary()?;
            return equal(&left, &right).map(Val::Bool);
        }
        if self.eat_op("!=") {
            let right = self.primary()?;
            return equal(&left, &right).map(|e| Val::Bool(!e));
        }
        if self.peek() == Some(&Tok::Ident("in".into())) {
            self.pos += 1;
            let right = self.primary()?;
            let Val::List(items) = right else {
                return Err(CelError::Invalid(format!(
                    "no matching overload for {left} in {right}"
                )));
            };
            let mut found = false;
            for item in &items {
                found |= equal(&left, item)?;
            }
            return Ok(Val::Bool(found));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Val, CelError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(CelError::Invalid("unexpected end of expression".into()));
        };
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Val::Str(s)),
            Tok::Int(n) => Ok(Val::Int(n)),
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Val::Bool(true)),
                "false" => Ok(Val::Bool(false)),
                _ => Err(CelError::Unsupported(format!("identifier {id}"))),
            },
            Tok::Op("(") => {
                let v = self.or()?;
                if !self.eat_op(")") {
                    return Err(CelError::Invalid("missing )".into()));
                }
                Ok(v)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if self.eat_op("]") {
                    return Ok(Val::List(items));
                }
                loop {
                    items.push(self.or()?);
                    if self.eat_op("]") {
                        return Ok(Val::List(items));
                    }
                    if !self.eat_op(",") {
                        return Err(CelError::Invalid("expected , or ]".into()));
                    }
                }
            }
            Tok::Op(op) => Err(CelError::Invalid(format!("unexpected {op}"))),
        }
    }
}

fn as_bool(v: &Val) -> Result<bool, CelError> {
    match v {
        Val::Bool(b) => Ok(*b),
        other => Err(CelError::Invalid(format!("{other} is not a bool"))),
    }
}

/// CEL `==`: defined between values of one type (no heterogeneous equality for literals here).
fn equal(a: &Val, b: &Val) -> Result<bool, CelError> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x == y),
        (Val::Int(x), Val::Int(y)) => Ok(x == y),
        (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
        (Val::List(x), Val::List(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (p, q) in x.iter().zip(y) {
                if !equal(p, q)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Err(CelError::Invalid(format!(
            "no matching overload for {a} == {b}"
        ))),
    }
}

/// Evaluates `expr` to a bool, as Tekton's `EvaluateCEL` requires ("is not evaluated to a
/// boolean" otherwise).
pub fn evaluate(expr: &str) -> Result<bool, CelError> {
    let toks = tokenize(expr)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let v = p.or()?;
    if p.pos != p.toks.len() {
        return Err(CelError::Invalid(format!("unexpected {:?}", p.toks[p.pos])));
    }
    match v {
        Val::Bool(b) => Ok(b),
        other => Err(CelError::Invalid(format!(
            "The CEL expression {expr} is not evaluated to a boolean ({other})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_users_write() {
        let t = |e: &str| evaluate(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        assert!(t("'prod' == 'prod'"));
        assert!(!t("'dev' == 'prod'"));
        assert!(t("\"dev\" != 'prod'"));
        assert!(t("'prod' in ['staging', 'prod']"));
        assert!(!t("'dev' in ['staging', 'prod']"));
        assert!(t("'a' == 'a' && ('b' == 'c' || 'd' in ['d'])"));
        assert!(!t("!('a' == 'a')"));
        assert!(t("!false && true"));
        assert!(t("3 == 3 && 'it\\'s' == \"it's\""));
        assert!(t("[] == []"), "empty lists");
        // && binds tighter than ||.
        assert!(t("'x' == 'x' || 'a' == 'b' && 'c' == 'd'"));
        assert!(!t("('x' == 'x' || 'a' == 'b') && 'c' == 'd'"));
        // A reference Tekton could not resolve stays a literal.
        assert!(!t("'$(tasks.a.results.x)' == 'yes'"));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(matches!(evaluate(&deep), Err(CelError::Unsupported(_))));
        let nots = format!("{}true", "!".repeat(100_000));
        assert!(matches!(evaluate(&nots), Err(CelError::Unsupported(_))));
        let lists = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(evaluate(&lists).is_err());
        let ok = format!("{}true{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(evaluate(&ok), Ok(true));
    }

    #[test]
    fn what_it_refuses() {
        let unsupported = [
            "size('ab') == 2",
            "'a' < 'b'",
            "1 + 1 == 2",
            "x == 'a'",
            "'a'.startsWith('a')",
            "1.5 == 1.5",
            "{'a': 1}['a'] == 1",
            "true ? true : false",
        ];
        let invalid = [
            "'a'",
            "'a' == 1",
            "'a' == 'a' &&",
            "('a' == 'a'",
            "'unterminated",
            "'a' in 'abc'",
            "'a' == 'a' 'b'",
        ];
        let expressions = unsupported.iter().map(|e| (e, true));
        for (e, is_unsupported) in expressions.chain(invalid.iter().map(|e| (e, false))) {
            let got = evaluate(e);
            let refused = match got {
                Err(CelError::Unsupported(_)) => is_unsupported,
                Err(CelError::Invalid(_)) => !is_unsupported,
                _ => false,
            };
            assert!(refused, "{e}: {got:?}");
        }
    }
}
