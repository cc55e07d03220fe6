//! A GLib key-file reader that keeps line numbers.
//!
//! rauc-hawkbit-updater reads its configuration with `GKeyFile`, so eyas follows the same
//! dialect, to be a drop-in:
//! * only a line whose first non-blank character is `#` is a comment — an inline `# …` after a
//!   value belongs to the value;
//! * `[group]` headers, `key = value` pairs; blanks around the key and before the value are
//!   dropped; a repeated group is merged and a repeated key keeps the last value;
//! * escapes `\s \n \t \r \\` in values;
//! * `key[locale]` entries are kept with their locale so the caller can warn about them.
//!
//! One deliberate difference: trailing blanks of a value are dropped too (write `\s` to keep
//! one), because a token copied with a trailing space is a classic "401 but the token is right".

use std::fmt;

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key as written (without locale suffix).
    pub key: String,
    /// `Some("de")` for `key[de]=…`.
    pub locale: Option<String>,
    /// The unescaped value.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// A `[group]` with its entries in file order (later duplicates replace earlier ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name between the brackets.
    pub name: String,
    /// 1-based line of the first header of this group.
    pub line: usize,
    /// Entries, one per distinct key.
    pub entries: Vec<Entry>,
}

impl Group {
    /// The entry for `key` (without locale), if present.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.key == key && e.locale.is_none())
    }
}

/// A parsed key file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFile {
    /// Groups in order of first appearance.
    pub groups: Vec<Group>,
}

impl KeyFile {
    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// A syntax error at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// Parses key-file text.
pub fn parse(text: &str) -> Result<KeyFile, SyntaxError> {
    let mut file = KeyFile::default();
    let mut current: Option<usize> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .trim_end()
                .strip_suffix(']')
                .ok_or_else(|| SyntaxError {
                    line: line_no,
                    what: format!("group header {line:?} has no closing ']'"),
                })?;
            if name.is_empty() || name.contains(['[', ']']) || name.chars().any(char::is_control) {
                return Err(SyntaxError {
                    line: line_no,
                    what: format!("invalid group name {name:?}"),
                });
            }
            current = Some(match file.groups.iter().position(|g| g.name == name) {
                Some(existing) => existing,
                None => {
                    file.groups.push(Group {
                        name: name.to_owned(),
                        line: line_no,
                        entries: Vec::new(),
                    });
                    file.groups.len() - 1
                }
            });
            continue;
        }
        let Some((key_part, value_part)) = line.split_once('=') else {
            return Err(SyntaxError {
                line: line_no,
                what: format!("{line:?} is neither a [group], a key=value pair nor a # comment"),
            });
        };
        let Some(group_index) = current else {
            return Err(SyntaxError {
                line: line_no,
                what: "key=value before the first [group] header".to_owned(),
            });
        };
        let key_part = key_part.trim_end();
        let (key, locale) = split_locale(key_part).ok_or_else(|| SyntaxError {
            line: line_no,
            what: format!("invalid key name {key_part:?}"),
        })?;
        let value = unescape(value_part.trim()).map_err(|what| SyntaxError {
            line: line_no,
            what: format!("{key}: {what}"),
        })?;
        let entries = &mut file.groups[group_index].entries;
        entries.retain(|e| !(e.key == key && e.locale == locale));
        entries.push(Entry {
            key,
            locale,
            value,
            line: line_no,
        });
    }
    Ok(file)
}

fn split_locale(key: &str) -> Option<(String, Option<String>)> {
    let (name, locale) = match key.find('[') {
        Some(open) => {
            let locale = key[open + 1..].strip_suffix(']')?;
            if locale.is_empty() || locale.contains(['[', ']']) {
                return None;
            }
            (&key[..open], Some(locale.to_owned()))
        }
        None => (key, None),
    };
    if name.is_empty() || name.contains(']') || name.chars().any(char::is_control) {
        return None;
    }
    Some((name.to_owned(), locale))
}

fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            // GLib keeps `\;` and `\,` for list parsing; so do we.
            Some(';') => out.push_str("\\;"),
            Some(',') => out.push_str("\\,"),
            Some(other) => return Err(format!("invalid escape sequence \\{other}")),
            None => return Err("value ends with a lone backslash".to_owned()),
        }
    }
    Ok(out)
}

/// Splits a GLib list value on `;` (an escaped `\;` stays in the item); empty items are dropped.
pub fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => item.push(next),
                None => item.push('\\'),
            },
            ';' => items.push(std::mem::take(&mut item)),
            other => item.push(other),
        }
    }
    items.push(item);
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keys_comments_and_blanks() {
        let kf = parse("# top\n\n[client]\n  hawkbit_server = host:8080  \n#x=1\n[device]\nproduct=Terminator\n")
            .expect("valid");
        assert_eq!(kf.groups.len(), 2);
        let client = kf.group("client").expect("client");
        assert_eq!(client.line, 3);
        let e = client.get("hawkbit_server").expect("key");
        assert_eq!(e.value, "host:8080");
        assert_eq!(e.line, 4);
        assert!(client.get("x").is_none());
        assert_eq!(
            kf.group("device")
                .and_then(|g| g.get("product"))
                .map(|e| e.value.as_str()),
            Some("Terminator")
        );
    }

    #[test]
    fn inline_hash_is_part_of_the_value() {
        let kf = parse("[client]\nauth_token=abc # my token\n").expect("valid");
        assert_eq!(kf.groups[0].entries[0].value, "abc # my token");
    }

    #[test]
    fn escapes_and_crlf() {
        let kf = parse("[a]\r\nk=\\sx\\ty\\\\z\\n\r\n").expect("valid");
        assert_eq!(kf.groups[0].entries[0].value, " x\ty\\z\n");
    }

    #[test]
    fn duplicates_last_wins_and_groups_merge() {
        let kf = parse("[a]\nk=1\n[b]\n[a]\nk=2\nj=3\n").expect("valid");
        let a = kf.group("a").expect("a");
        assert_eq!(a.entries.len(), 2);
        assert_eq!(
            a.get("k").map(|e| (e.value.as_str(), e.line)),
            Some(("2", 5))
        );
    }

    #[test]
    fn locale_keys_are_kept_apart() {
        let kf = parse("[a]\nname=x\nname[de]=y\n").expect("valid");
        let a = kf.group("a").expect("a");
        assert_eq!(a.get("name").map(|e| e.value.as_str()), Some("x"));
        assert_eq!(a.entries[1].locale.as_deref(), Some("de"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("[a]\njunk\n", 2, "neither"),
            ("k=v\n", 1, "before the first"),
            ("[a\n", 1, "closing"),
            ("[]\n", 1, "invalid group"),
            ("[a]\n=v\n", 2, "invalid key"),
            ("[a]\nk[=v\n", 2, "invalid key"),
            ("[a]\nk=\\q\n", 2, "invalid escape"),
            ("[a]\nk=abc\\\n", 2, "lone backslash"),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.what.contains(needle), "{text:?}: {}", err.what);
        }
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("a; b;;c\\;d;"), vec!["a", "b", "c;d"]);
        assert!(split_list("").is_empty());
    }
}
