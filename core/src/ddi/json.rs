//! A tiny, allocation-free, zero-copy JSON pull lexer used by the DDI parsers.
//!
//! Strings are returned as [`JsonStr`]: a borrowed view of the raw (still escaped) text whose
//! escapes were validated when it was lexed, so unescaping later cannot fail. Nesting depth is
//! bounded by [`MAX_DEPTH`]; recursion happens only while skipping unknown values.

use super::ParseError;

/// Deepest nesting accepted anywhere in a document (objects and arrays).
pub const MAX_DEPTH: u8 = 16;

/// A JSON string as it appears in the input: escapes validated, not yet decoded.
///
/// Use [`JsonStr::chars`], [`JsonStr::unescape_into`], [`JsonStr::to_heapless`] or
/// [`JsonStr::eq_str`] to read the decoded text (`"http:\/\/x"` reads as `http://x`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    /// Escapes validated; whether there are any is `raw` containing `\\` (two words, so a
    /// `JsonStr` and an `Option<JsonStr>` travel in registers).
    raw: &'a str,
}

impl core::fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("\"")?;
        for c in self.chars() {
            core::fmt::Write::write_char(f, c)?;
        }
        f.write_str("\"")
    }
}

impl core::fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.chars() {
            core::fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// The destination buffer was too small for the decoded string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrTooLong {
    /// Bytes the decoded string needs.
    pub needed: usize,
}

impl<'a> JsonStr<'a> {
    /// A string that needs no decoding (used by tests and by callers building values).
    ///
    /// Returns `None` if `s` contains `\` or `"` (those must come escaped from the lexer).
    pub fn from_plain(s: &'a str) -> Option<Self> {
        if s.bytes().any(|b| b == b'\\' || b == b'"' || b < 0x20) {
            None
        } else {
            Some(Self { raw: s })
        }
    }

    /// Whether the text has escapes (then it needs decoding).
    fn escaped(&self) -> bool {
        self.raw.bytes().any(|b| b == b'\\')
    }

    /// The raw text between the quotes, escapes not decoded.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The decoded text if it needed no decoding.
    pub fn as_plain(&self) -> Option<&'a str> {
        if self.escaped() { None } else { Some(self.raw) }
    }

    /// Decoded characters.
    pub fn chars(&self) -> Chars<'a> {
        Chars { rest: self.raw }
    }

    /// Length of the decoded text in UTF-8 bytes.
    pub fn decoded_len(&self) -> usize {
        if !self.escaped() {
            return self.raw.len();
        }
        self.chars().map(char::len_utf8).sum()
    }

    /// Whether the decoded text equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        if !self.escaped() {
            return self.raw == s;
        }
        self.chars().eq(s.chars())
    }

    /// Whether the decoded text contains `needle` (ASCII needles only need no decoding).
    pub fn contains(&self, needle: &str) -> bool {
        if !self.escaped() {
            return str_contains(self.raw, needle);
        }
        let mut buf = [0u8; 64];
        match self.unescape_into(&mut buf) {
            Ok(s) => str_contains(s, needle),
            Err(_) => str_contains(self.raw, needle),
        }
    }

    /// Decode into `buf`, returning the decoded `&str`.
    pub fn unescape_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, StrTooLong> {
        let needed = self.decoded_len();
        let Some(dst) = buf.get_mut(..needed) else {
            return Err(StrTooLong { needed });
        };
        let mut at = 0;
        for c in self.chars() {
            let l = c.len_utf8();
            if let Some(slot) = dst.get_mut(at..at + l) {
                c.encode_utf8(slot);
            }
            at += l;
        }
        core::str::from_utf8(dst).map_err(|_| StrTooLong { needed })
    }

    /// Decode into a `heapless::String<N>`.
    pub fn to_heapless<const N: usize>(&self) -> Result<heapless::String<N>, StrTooLong> {
        let mut s = heapless::String::new();
        for c in self.chars() {
            if s.push(c).is_err() {
                return Err(StrTooLong {
                    needed: self.decoded_len(),
                });
            }
        }
        Ok(s)
    }
}

/// Iterator over the decoded characters of a [`JsonStr`].
#[derive(Clone)]
pub struct Chars<'a> {
    /// The raw text not yet decoded.
    rest: &'a str,
}

/// `hay.contains(needle)` by a plain byte search (UTF-8 is self-synchronising, so a byte match
/// of a `str` is a `str` match). `str::contains` brings the Two-Way searcher, about 1 KB of
/// Cortex-M flash, for needles of a few bytes.
fn str_contains(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

fn hex4(b: &[u8]) -> Option<u16> {
    let mut v: u16 = 0;
    for &c in b.get(..4)? {
        let d = (c as char).to_digit(16)?;
        v = (v << 4) | d as u16;
    }
    Some(v)
}

/// The escape sequence at the start of `b` (a `\\`): the character and the sequence's length,
/// `None` if it is no valid JSON escape (unknown letter, short `\\u`, a lone or unpaired
/// surrogate). The lexer validates with it, [`Chars`] decodes with it.
#[inline(never)]
fn escape(b: &[u8]) -> Option<(char, usize)> {
    Some(match *b.get(1)? {
        e @ (b'"' | b'\\' | b'/') => (e as char, 2),
        b'b' => ('\u{8}', 2),
        b'f' => ('\u{c}', 2),
        b'n' => ('\n', 2),
        b'r' => ('\r', 2),
        b't' => ('\t', 2),
        b'u' => {
            let hi = u32::from(hex4(b.get(2..)?)?);
            if (0xD800..0xDC00).contains(&hi) {
                // a high surrogate needs a low one right after
                if b.get(6..8)? != b"\\u" {
                    return None;
                }
                let lo = u32::from(hex4(b.get(8..)?)?);
                if !(0xDC00..0xE000).contains(&lo) {
                    return None;
                }
                (
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?,
                    12,
                )
            } else {
                // `None` for a lone low surrogate
                (char::from_u32(hi)?, 6)
            }
        }
        _ => return None,
    })
}

impl Iterator for Chars<'_> {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        let mut plain = self.rest.chars();
        let c = plain.next()?;
        if c != '\\' {
            self.rest = plain.as_str();
            return Some(c);
        }
        let (c, used) = escape(self.rest.as_bytes())?;
        self.rest = self.rest.get(used..)?;
        Some(c)
    }
}

/// `s` as a `u64` if it is one or more ASCII digits and fits (what `s.parse::<u64>()` gives
/// for digit strings), without `str::parse`'s generic code.
pub(crate) fn digits_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A JSON number as raw text (grammar validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonNum<'a>(pub &'a str);

impl JsonNum<'_> {
    /// The value as a non-negative integer without fraction or exponent.
    pub fn as_u64(&self) -> Option<u64> {
        digits_u64(self.0)
    }

    /// The value as a signed integer without fraction or exponent.
    pub fn as_i64(&self) -> Option<i64> {
        let s = self.0;
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

/// One scalar or the start of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Value<'a> {
    /// `{` was consumed; read members with [`Lexer::next_key`].
    Object,
    /// `[` was consumed; read elements with [`Lexer::next_element`].
    Array,
    /// A string.
    Str(JsonStr<'a>),
    /// A number.
    Num(JsonNum<'a>),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl Value<'_> {
    /// Short name of the JSON type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Object => "object",
            Value::Array => "array",
            Value::Str(_) => "string",
            Value::Num(_) => "number",
            Value::Bool(_) => "bool",
            Value::Null => "null",
        }
    }
}

/// Pull lexer over one JSON document, with a sticky error.
///
/// The first error (a syntax error of the lexer, or a field error a parser reports with
/// [`Lexer::fail`]) is kept; from then on the lexer reads as an empty input, so every later
/// [`Lexer::read`], [`Lexer::key`], [`Lexer::field`] or [`Lexer::element`] ends the caller's
/// loops, and [`Lexer::result`] returns that first error. Parsers are then plain loops with one
/// check at the end instead of a `?` (and a 16-byte error copy) after every token.
///
/// The `Result` methods ([`Lexer::value`], [`Lexer::next_key`], [`Lexer::next_element`],
/// [`Lexer::skip`], [`Lexer::skip_value`], [`Lexer::finish`]) read the same tokens and return
/// the stored error.
pub struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    depth: u8,
    /// `true` right after a container was opened (no member/element read yet).
    fresh: bool,
    /// The first error; once set, `b` is empty and `depth` 0.
    err: Option<ParseError>,
    /// The value last read by [`Lexer::read`] / [`Lexer::field`].
    cur: Value<'a>,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Self {
            b,
            pos: 0,
            depth: 0,
            fresh: false,
            err: None,
            cur: Value::Null,
        }
    }

    /// Current byte offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Offset of the next token (whitespace skipped).
    pub fn next_pos(&mut self) -> usize {
        self.ws();
        self.pos
    }

    /// The input between two offsets (empty once an error is stored).
    pub fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.b.get(from..to).unwrap_or(&[])
    }

    /// The value last read by [`Lexer::read`] or [`Lexer::field`] (a container is open, not
    /// consumed).
    pub fn cur(&self) -> Value<'a> {
        self.cur
    }

    /// The stored error, if any.
    pub fn error(&self) -> Option<ParseError> {
        self.err
    }

    /// Store `e` unless an error is stored already (the first one wins) and stop lexing: the
    /// rest of the input reads as empty.
    #[inline(never)]
    pub fn fail(&mut self, e: ParseError) {
        if self.err.is_none() {
            self.err = Some(e);
        }
        self.b = &[];
        self.depth = 0;
    }

    fn syntax_at(&mut self, offset: usize) {
        self.fail(ParseError::Syntax { offset });
    }

    fn syntax(&mut self) {
        self.syntax_at(self.pos);
    }

    /// `Ok(v)` if no error was stored and the parser produced `v`, else the first error.
    pub fn result<T>(&self, v: Option<T>) -> Result<T, ParseError> {
        match (self.err, v) {
            (Some(e), _) => Err(e),
            (None, Some(v)) => Ok(v),
            // every parser stores an error before it gives up
            (None, None) => Err(ParseError::Syntax { offset: self.pos }),
        }
    }

    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.pos).copied()
    }

    /// After the top-level value: only whitespace may follow (else a syntax error is stored).
    pub fn end(&mut self) {
        if self.peek().is_some() {
            self.syntax();
        }
    }

    /// Read the next value into [`Lexer::cur`]. Containers are opened (depth checked), not
    /// consumed. `false` if an error is stored.
    #[inline(never)]
    pub fn read(&mut self) -> bool {
        let Some(c) = self.peek() else {
            self.syntax();
            return false;
        };
        let v = match c {
            b'{' | b'[' => {
                if self.depth >= MAX_DEPTH {
                    self.fail(ParseError::TooDeep { offset: self.pos });
                    return false;
                }
                self.depth += 1;
                self.pos += 1;
                self.fresh = true;
                if c == b'{' {
                    Value::Object
                } else {
                    Value::Array
                }
            }
            b'"' => match self.string() {
                Some(s) => Value::Str(s),
                None => return false,
            },
            b't' => return self.literal(b"true", Value::Bool(true)),
            b'f' => return self.literal(b"false", Value::Bool(false)),
            b'n' => return self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => match self.number() {
                Some(n) => Value::Num(n),
                None => return false,
            },
            _ => {
                self.syntax();
                return false;
            }
        };
        self.cur = v;
        true
    }

    fn literal(&mut self, lit: &[u8], v: Value<'a>) -> bool {
        if self.b.get(self.pos..self.pos + lit.len()) == Some(lit) {
            self.pos += lit.len();
            self.cur = v;
            true
        } else {
            self.syntax();
            false
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.b.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consume `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.pos) == Some(&c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// The input between `from` and the current position as text (a syntax error at `at` if it
    /// is not UTF-8).
    #[inline(never)]
    fn text(&mut self, from: usize, at: usize) -> Option<&'a str> {
        match core::str::from_utf8(self.slice(from, self.pos)) {
            Ok(s) => Some(s),
            Err(_) => {
                self.syntax_at(at);
                None
            }
        }
    }

    fn number(&mut self) -> Option<JsonNum<'a>> {
        let start = self.pos;
        self.eat(b'-');
        // `0` or a digit run starting with 1-9, then `.digits` and `e[+-]digits`, each optional;
        // a failed part leaves the position at the offending byte
        let ok = (self.eat(b'0') || self.digits() > 0)
            && (!self.eat(b'.') || self.digits() > 0)
            && (!(self.eat(b'e') || self.eat(b'E')) || {
                let _ = self.eat(b'+') || self.eat(b'-');
                self.digits() > 0
            });
        if !ok {
            self.syntax();
            return None;
        }
        self.text(start, start).map(JsonNum)
    }

    fn string(&mut self) -> Option<JsonStr<'a>> {
        // at '"'
        self.pos += 1;
        let start = self.pos;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                self.syntax();
                return None;
            };
            match c {
                b'"' => break,
                b'\\' => match escape(self.slice(self.pos, self.b.len())) {
                    Some((_, used)) => self.pos += used,
                    None => {
                        self.syntax();
                        return None;
                    }
                },
                0..=0x1f => {
                    self.syntax();
                    return None;
                }
                _ => self.pos += 1,
            }
        }
        let raw = self.text(start, start)?;
        self.pos += 1; // closing quote
        Some(JsonStr { raw })
    }

    /// Inside an object: the next member key (the `:` is consumed), or `None` at `}` or if an
    /// error is stored.
    #[inline(never)]
    pub fn key(&mut self) -> Option<JsonStr<'a>> {
        let fresh = core::mem::replace(&mut self.fresh, false);
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                self.depth = self.depth.saturating_sub(1);
                return None;
            }
            Some(b',') if !fresh => {
                self.pos += 1;
            }
            Some(b'"') if fresh => {}
            _ => {
                self.syntax();
                return None;
            }
        }
        if self.peek() != Some(b'"') {
            self.syntax();
            return None;
        }
        let k = self.string()?;
        if self.peek() != Some(b':') {
            self.syntax();
            return None;
        }
        self.pos += 1;
        Some(k)
    }

    /// Inside an object: the next member whose key is one of `keys` (the first that matches),
    /// its value read into [`Lexer::cur`]; members with other keys are skipped. `None` at `}`
    /// or if an error is stored.
    #[inline(never)]
    pub fn field(&mut self, keys: &[&str]) -> Option<usize> {
        loop {
            let k = self.key()?;
            if !self.read() {
                return None;
            }
            if let Some(i) = keys.iter().position(|n| k.eq_str(n)) {
                return Some(i);
            }
            self.skip_cur();
        }
    }

    /// Inside an array: `true` if another element follows (positioned at it), `false` at `]`
    /// or if an error is stored.
    #[inline(never)]
    pub fn element(&mut self) -> bool {
        let fresh = core::mem::replace(&mut self.fresh, false);
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                self.depth = self.depth.saturating_sub(1);
                false
            }
            Some(b',') if !fresh => {
                self.pos += 1;
                true
            }
            Some(_) if fresh => true,
            _ => {
                self.syntax();
                false
            }
        }
    }

    /// Skip the remainder of [`Lexer::cur`] (the members or elements of an opened container).
    #[inline(never)]
    pub fn skip_cur(&mut self) {
        match self.cur {
            Value::Object => {
                while self.key().is_some() {
                    if self.read() {
                        self.skip_cur();
                    }
                }
            }
            Value::Array => {
                while self.element() {
                    if self.read() {
                        self.skip_cur();
                    }
                }
            }
            _ => {}
        }
    }

    fn check<T>(&self, v: T) -> Result<T, ParseError> {
        match self.err {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    /// After the top-level value: only whitespace may follow.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        self.end();
        self.check(())
    }

    /// Read the next value. Containers are opened (depth checked), not consumed.
    pub fn value(&mut self) -> Result<Value<'a>, ParseError> {
        self.read();
        self.check(self.cur)
    }

    /// Inside an object: the next member key (the `:` is consumed), or `None` at `}`.
    pub fn next_key(&mut self) -> Result<Option<JsonStr<'a>>, ParseError> {
        let k = self.key();
        self.check(k)
    }

    /// Inside an array: `true` if another element follows (positioned at it), `false` at `]`.
    pub fn next_element(&mut self) -> Result<bool, ParseError> {
        let more = self.element();
        self.check(more)
    }

    /// Skip the remainder of a value whose first token was `v` (the value just read).
    pub fn skip(&mut self, v: Value<'a>) -> Result<(), ParseError> {
        self.cur = v;
        self.skip_cur();
        self.check(())
    }

    /// Read and skip one whole value.
    pub fn skip_value(&mut self) -> Result<(), ParseError> {
        if self.read() {
            self.skip_cur();
        }
        self.check(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_u64_is_parse() {
        for s in [
            "",
            "0",
            "007",
            "42",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "1a",
            "-1",
            "+1",
            " 1",
            "1.0",
        ] {
            let want = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u64>().ok()
            } else {
                None
            };
            assert_eq!(digits_u64(s), want, "{s:?}");
        }
    }

    #[test]
    fn byte_search_is_str_contains() {
        let hays = [
            "",
            "download-http",
            "x-download",
            "dl",
            "äöü download ü",
            "ab",
        ];
        let needles = ["", "download", "d", "ü d", "ö", "abc", "b"];
        for h in hays {
            for n in needles {
                assert_eq!(str_contains(h, n), h.contains(n), "{h:?} {n:?}");
            }
        }
    }

    #[test]
    fn unescape() {
        let mut l = Lexer::new(br#""http:\/\/a\"b\u00e9\ud83d\ude00\n""#);
        let Value::Str(s) = l.value().unwrap() else {
            panic!()
        };
        assert!(s.eq_str("http://a\"b\u{e9}\u{1F600}\n"));
        let mut buf = [0u8; 32];
        assert_eq!(
            s.unescape_into(&mut buf).unwrap(),
            "http://a\"b\u{e9}\u{1F600}\n"
        );
        assert_eq!(s.decoded_len(), "http://a\"b\u{e9}\u{1F600}\n".len());
        let mut small = [0u8; 4];
        assert!(s.unescape_into(&mut small).is_err());
        assert!(s.to_heapless::<4>().is_err());
        assert_eq!(
            s.to_heapless::<32>().unwrap().as_str(),
            "http://a\"b\u{e9}\u{1F600}\n"
        );
    }

    #[test]
    fn bad_strings() {
        for bad in [
            &br#""\x""#[..],
            br#""\ud83d""#,
            br#""\ude00""#,
            br#""\u12""#,
            b"\"a\nb\"",
            b"\"abc",
            b"\"\xff\"",
        ] {
            assert!(Lexer::new(bad).value().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        for (txt, ok) in [
            ("0", true),
            ("-1.5e+3", true),
            ("01", true), // lexes "0", then trailing "1" fails at finish
            ("-", false),
            ("1.", false),
            ("1e", false),
        ] {
            let mut l = Lexer::new(txt.as_bytes());
            let r = l.value().and_then(|_| l.finish());
            assert_eq!(r.is_ok(), ok && txt != "01", "{txt}");
        }
        assert_eq!(JsonNum("123").as_u64(), Some(123));
        assert_eq!(JsonNum("-1").as_u64(), None);
        assert_eq!(JsonNum("1.0").as_u64(), None);
        assert_eq!(JsonNum("99999999999999999999").as_u64(), None);
        assert_eq!(JsonNum("-7").as_i64(), Some(-7));
    }

    #[test]
    fn skip_nested_and_depth() {
        let mut l = Lexer::new(br#"{"a":[1,{"b":null},[true,false]],"c":"x"}"#);
        l.skip_value().unwrap();
        l.finish().unwrap();
        let deep = [b'['; 40];
        assert!(matches!(
            Lexer::new(&deep).skip_value(),
            Err(ParseError::TooDeep { .. })
        ));
        for bad in [
            &b"{,}"[..],
            b"[1,]",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"[1 2]",
            b"{1:2}",
        ] {
            assert!(Lexer::new(bad).skip_value().is_err(), "{bad:?}");
        }
    }
}
