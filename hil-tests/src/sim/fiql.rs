//! FIQL subset for `targetFilterQuery` and `q=`: `;` (and), `,` (or), parentheses, operators
//! `== != =lt= =le= =gt= =ge= =in= =out=`, `*` wildcard in `==`/`!=`, quoted values. String
//! comparison is case-insensitive. The words `and`/`or` are not supported (use `;` and `,`).

use super::model::clip;

/// A parsed filter.
#[derive(Debug, Clone)]
pub enum Expr {
    /// All must hold.
    And(Vec<Self>),
    /// One must hold.
    Or(Vec<Self>),
    /// `field op value(s)`.
    Cmp {
        field: String,
        op: Op,
        values: Vec<String>,
    },
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Out,
}

/// Field names the simulator can evaluate.
pub const FIELDS: &str = "controllerid, name, description, updatestatus, ipaddress, attribute.<key>, \
assignedds.name, assignedds.version, installedds.name, installedds.version, lastcontrollerrequestat, createdat";

/// Maximum parenthesis nesting (the parser is recursive; deeper input is rejected, never a stack overflow).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    src: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!(
            "FIQL '{}': {what} at position {}",
            clip(self.src),
            self.pos
        ))
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c == b' ') {
            self.pos += 1;
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.and()?];
        while self.peek() == Some(b',') {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.term()?];
        while self.peek() == Some(b';') {
            self.pos += 1;
            v.push(self.term()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }
    fn term(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        if self.peek() == Some(b'(') {
            if self.depth >= MAX_DEPTH {
                return self.err(&format!("more than {MAX_DEPTH} nested parentheses"));
            }
            self.pos += 1;
            self.depth += 1;
            let e = self.or()?;
            self.depth -= 1;
            self.skip_ws();
            if self.peek() != Some(b')') {
                return self.err("expected ')'");
            }
            self.pos += 1;
            self.skip_ws();
            return Ok(e);
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return self.err("expected a field name");
        }
        let field = self.src[start..self.pos].to_ascii_lowercase();
        let rest = &self.src[self.pos..];
        let (op, len) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("=lt=", Op::Lt),
            ("=le=", Op::Le),
            ("=gt=", Op::Gt),
            ("=ge=", Op::Ge),
            ("=in=", Op::In),
            ("=out=", Op::Out),
        ]
        .iter()
        .find(|(t, _)| rest.starts_with(t))
        .map(|(t, o)| (*o, t.len()))
        .map_or_else(
            || self.err("expected an operator (== != =lt= =le= =gt= =ge= =in= =out=)"),
            Ok,
        )?;
        self.pos += len;
        let values = if matches!(op, Op::In | Op::Out) {
            if self.peek() != Some(b'(') {
                return self.err("=in=/=out= need a list like (a,b)");
            }
            self.pos += 1;
            let mut vals = vec![self.value()?];
            while self.peek() == Some(b',') {
                self.pos += 1;
                vals.push(self.value()?);
            }
            if self.peek() != Some(b')') {
                return self.err("expected ')' after the list");
            }
            self.pos += 1;
            vals
        } else {
            vec![self.value()?]
        };
        self.skip_ws();
        Ok(Expr::Cmp { field, op, values })
    }
    fn value(&mut self) -> Result<String, String> {
        if let Some(q @ (b'"' | b'\'')) = self.peek() {
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|c| c != q) {
                self.pos += 1;
            }
            if self.peek() != Some(q) {
                return self.err("unterminated quote");
            }
            let v = self.src[start..self.pos].to_string();
            self.pos += 1;
            return Ok(v);
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b';' | b',' | b'(' | b')'))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return self.err("expected a value");
        }
        Ok(self.src[start..self.pos].trim_end().to_string())
    }
}

impl Expr {
    /// Parses a filter; `field_ok` rejects unknown fields with a message.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut p = Parser {
            s: src.as_bytes(),
            pos: 0,
            src,
            depth: 0,
        };
        let e = p.or()?;
        if p.pos != src.len() {
            return p.err("unexpected character");
        }
        e.check_fields()?;
        Ok(e)
    }

    /// Parses a filter over another entity (software modules, distribution sets): only `fields`
    /// are known (hawkBit answers 400 for others).
    pub fn parse_over(src: &str, what: &str, fields: &[&str]) -> Result<Self, String> {
        let mut p = Parser {
            s: src.as_bytes(),
            pos: 0,
            src,
            depth: 0,
        };
        let e = p.or()?;
        if p.pos != src.len() {
            return p.err("unexpected character");
        }
        e.check_fields_in(what, fields)?;
        Ok(e)
    }

    fn check_fields_in(&self, what: &str, fields: &[&str]) -> Result<(), String> {
        match self {
            Self::And(v) | Self::Or(v) => {
                v.iter().try_for_each(|e| e.check_fields_in(what, fields))
            }
            Self::Cmp { field, .. } if fields.contains(&field.as_str()) => Ok(()),
            Self::Cmp { field, .. } => Err(format!(
                "FIQL field '{}' is not supported for {what} by hawkbit-sim; supported: {}",
                clip(field),
                fields.join(", ")
            )),
        }
    }

    fn check_fields(&self) -> Result<(), String> {
        match self {
            Self::And(v) | Self::Or(v) => v.iter().try_for_each(Self::check_fields),
            Self::Cmp { field, .. } => {
                let known = matches!(
                    field.as_str(),
                    "controllerid"
                        | "name"
                        | "description"
                        | "updatestatus"
                        | "ipaddress"
                        | "assignedds.name"
                        | "assignedds.version"
                        | "installedds.name"
                        | "installedds.version"
                        | "lastcontrollerrequestat"
                        | "createdat"
                ) || field.starts_with("attribute.");
                if known {
                    Ok(())
                } else {
                    Err(format!(
                        "FIQL field '{}' is not supported by hawkbit-sim; supported: {FIELDS}",
                        clip(field)
                    ))
                }
            }
        }
    }

    /// Evaluates against a record; `get(field)` returns the field's value (None = null).
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Self::And(v) => v.iter().all(|e| e.matches(get)),
            Self::Or(v) => v.iter().any(|e| e.matches(get)),
            Self::Cmp { field, op, values } => {
                let actual = get(field);
                let first = values.first().map(String::as_str).unwrap_or("");
                match op {
                    Op::Eq => actual.is_some_and(|a| wildcard(first, &a)),
                    Op::Ne => !actual.is_some_and(|a| wildcard(first, &a)),
                    Op::In => {
                        actual.is_some_and(|a| values.iter().any(|v| v.eq_ignore_ascii_case(&a)))
                    }
                    Op::Out => {
                        !actual.is_some_and(|a| values.iter().any(|v| v.eq_ignore_ascii_case(&a)))
                    }
                    Op::Lt | Op::Le | Op::Gt | Op::Ge => actual.is_some_and(|a| {
                        let ord = match (a.parse::<i64>(), first.parse::<i64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            _ => a.to_ascii_lowercase().cmp(&first.to_ascii_lowercase()),
                        };
                        match op {
                            Op::Lt => ord.is_lt(),
                            Op::Le => ord.is_le(),
                            Op::Gt => ord.is_gt(),
                            _ => ord.is_ge(),
                        }
                    }),
                }
            }
        }
    }
}

/// Case-insensitive match with `*` as "any sequence".
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(f: &str) -> Option<String> {
        match f {
            "controllerid" => Some("dev-07".into()),
            "attribute.hw_revision" => Some("2".into()),
            "updatestatus" => Some("in_sync".into()),
            _ => None,
        }
    }

    #[test]
    fn evaluates() {
        let ok = |q: &str| Expr::parse(q).unwrap().matches(&rec);
        assert!(ok("controllerid==dev-*"));
        assert!(ok("controllerid==DEV-07"));
        assert!(!ok("controllerid==x*"));
        assert!(ok(
            "attribute.hw_revision==2;controllerid=in=(dev-07,dev-08)"
        ));
        assert!(ok(
            "(name==foo,updatestatus!=error);attribute.hw_revision=ge=2"
        ));
        assert!(!ok("name==foo"));
        assert!(ok("name!=foo"));
        assert!(Expr::parse("tag==x").is_err());
        assert!(Expr::parse("controllerid=").is_err());
        assert!(Expr::parse("(controllerid==a").is_err());
    }
}
