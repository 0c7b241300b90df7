//! The AWS CLI's shorthand syntax (`Key=value,Key2=value2`), parsed into an
//! untyped tree.
//!
//! This is a small recursive-descent parser that follows the grammar of the
//! AWS CLI's own `awscli/shorthand.py` (v2), so that a command line written
//! for `aws securityhub batch-update-findings` means the same thing here:
//!
//! ```text
//! parameter  = keyval *( "," keyval )
//! keyval     = key "=" [ values ]
//! key        = 1*( ALPHA / DIGIT / "-" / "_" / "." / "#" / "/" / ":" )
//! values     = explicit-list / hash-literal / csv-value
//! csv-value  = first-value *( "," second-value )   ; a list when there is more than one
//! explicit-list = "[" [ element *( "," element ) ] "]"
//! hash-literal  = "{" [ key "=" element *( "," key "=" element ) ] "}"
//! element    = explicit-list / hash-literal / first-value
//! first-value = 'single quoted' / "double quoted" / unquoted
//! ```
//!
//! Whitespace is allowed around `,` and `=`; unquoted values may contain
//! spaces (trailing ones are dropped) and `\,` for a literal comma; quoted
//! values may contain anything, with `\\` and `\"` (or `\'`) as escapes.
//! `a=b,c,d=e` gives `a` the list `[b, c]`: a value list runs until the
//! next `key=`.
//!
//! It does not know what the keys mean or what type a value must have: the
//! caller maps the tree onto the API's shapes. Where the AWS CLI silently
//! accepts something odd, this parser rejects it with a position instead:
//! an empty key, and a key given twice inside `{...}` (the CLI keeps the
//! last one there, and rejects duplicates only at the top level).

use std::fmt;

/// A parsed shorthand value: every scalar is a string, as in the AWS CLI;
/// the caller converts strings to numbers where the API wants numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// A scalar value.
    Str(String),
    /// `a,b,c` after a key, or `[a,b,c]`.
    List(Vec<Node>),
    /// `{k=v,...}`, or the top level; keys in input order, unique.
    Map(Vec<(String, Node)>),
}

/// A syntax error, with the 0-based character position it was found at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// 0-based index, in characters, of the offending character.
    pub position: usize,
    /// What was wrong, as a lowercase fragment.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.position + 1)
    }
}

/// Parses a whole shorthand value into its top-level `key=value` pairs.
pub(crate) fn parse(input: &str) -> Result<Vec<(String, Node)>, SyntaxError> {
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    p.parameter()
}

/// Characters allowed in a key (the AWS CLI's set).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '#' | '/' | ':')
}

/// Characters an unquoted value may start with: anything printable except
/// the ones that would make it something else (`"`, `'`, `,`, `=`, `[`, `{`).
fn is_start_char(c: char) -> bool {
    !c.is_control() && !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | '=' | '[' | '{')
}

/// Characters that may follow inside the first value after a key, or inside
/// `[...]`/`{...}`: `=` is fine here, but `]` and `}` end the value.
fn is_first_follow_char(c: char) -> bool {
    (c.is_whitespace() || !c.is_control()) && !matches!(c, '"' | '\'' | ',' | ']' | '}')
}

/// Characters that may follow inside a second, third, ... value of a
/// `a=b,c` list: `=` is not, because `,key=` starts the next pair.
fn is_second_follow_char(c: char) -> bool {
    (c.is_whitespace() || !c.is_control()) && !matches!(c, '"' | '\'' | ',' | '=')
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            position: self.pos,
            message: message.into(),
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    fn expect(&mut self, want: char) -> Result<(), SyntaxError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {want:?}, found {}", self.found())))
        }
    }

    fn parameter(&mut self) -> Result<Vec<(String, Node)>, SyntaxError> {
        let mut pairs: Vec<(String, Node)> = Vec::new();
        loop {
            self.skip_whitespace();
            let key_at = self.pos;
            let (key, value) = self.keyval()?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(SyntaxError {
                    position: key_at,
                    message: format!(
                        "key {key:?} is given twice (a \",\" where a space was meant?)"
                    ),
                });
            }
            pairs.push((key, value));
            self.skip_whitespace();
            if self.at_end() {
                return Ok(pairs);
            }
            self.expect(',')?;
        }
    }

    fn keyval(&mut self) -> Result<(String, Node), SyntaxError> {
        let key = self.key()?;
        self.skip_whitespace();
        if self.peek() != Some('=') {
            // Most often a key with a character keys cannot hold.
            return Err(self.error(format!(
                "expected '=' after key {key:?}, found {} (keys may hold only letters, digits \
                 and - _ . # / :; use the JSON syntax for other keys)",
                self.found()
            )));
        }
        self.pos += 1;
        self.skip_whitespace();
        let value = self.values()?;
        Ok((key, value))
    }

    fn key(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(is_key_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error(format!(
                "expected a key (letters, digits and - _ . # / :), found {}",
                self.found()
            )));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn values(&mut self) -> Result<Node, SyntaxError> {
        match self.peek() {
            None => Ok(Node::Str(String::new())),
            Some('[') => self.explicit_list(),
            Some('{') => self.hash_literal(),
            Some(_) => self.csv_value(),
        }
    }

    /// `first` or `first,second,...`: the list runs until something that is
    /// not a plain value followed by `,` or the end (normally the next
    /// `key=`), at which point the parser steps back to the last comma.
    fn csv_value(&mut self) -> Result<Node, SyntaxError> {
        let first = self.first_value()?;
        self.skip_whitespace();
        if self.peek() != Some(',') {
            return Ok(Node::Str(first));
        }
        let mut items = vec![Node::Str(first)];
        loop {
            // Just before the comma that might start another list item.
            let comma_at = self.pos;
            self.pos += 1;
            self.skip_whitespace();
            match self.second_value() {
                Ok(v) => {
                    self.skip_whitespace();
                    match self.peek() {
                        None => {
                            items.push(Node::Str(v));
                            break;
                        }
                        Some(',') => items.push(Node::Str(v)),
                        Some(_) => {
                            self.pos = comma_at;
                            break;
                        }
                    }
                }
                // A trailing comma is an error, as in the AWS CLI.
                Err(e) if self.at_end() => return Err(e),
                Err(_) => {
                    self.pos = comma_at;
                    break;
                }
            }
        }
        if items.len() == 1 {
            Ok(items.swap_remove(0))
        } else {
            Ok(Node::List(items))
        }
    }

    fn explicit_list(&mut self) -> Result<Node, SyntaxError> {
        let open = self.pos;
        self.expect('[')?;
        self.skip_whitespace();
        let mut items = Vec::new();
        while self.peek() != Some(']') {
            if self.at_end() {
                return Err(SyntaxError {
                    position: open,
                    message: "this \"[\" is never closed".to_owned(),
                });
            }
            items.push(self.element()?);
            self.skip_whitespace();
            if self.at_end() {
                return Err(SyntaxError {
                    position: open,
                    message: "this \"[\" is never closed".to_owned(),
                });
            }
            if self.peek() != Some(']') {
                self.expect(',')?;
                self.skip_whitespace();
            }
        }
        self.expect(']')?;
        Ok(Node::List(items))
    }

    fn hash_literal(&mut self) -> Result<Node, SyntaxError> {
        let open = self.pos;
        self.expect('{')?;
        self.skip_whitespace();
        let mut pairs: Vec<(String, Node)> = Vec::new();
        while self.peek() != Some('}') {
            if self.at_end() {
                return Err(SyntaxError {
                    position: open,
                    message: "this \"{\" is never closed".to_owned(),
                });
            }
            let key_at = self.pos;
            let key = self.key()?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(SyntaxError {
                    position: key_at,
                    message: format!("key {key:?} is given twice"),
                });
            }
            self.skip_whitespace();
            self.expect('=')?;
            self.skip_whitespace();
            let value = self.element()?;
            pairs.push((key, value));
            self.skip_whitespace();
            if self.at_end() {
                return Err(SyntaxError {
                    position: open,
                    message: "this \"{\" is never closed".to_owned(),
                });
            }
            if self.peek() != Some('}') {
                self.expect(',')?;
                self.skip_whitespace();
            }
        }
        self.expect('}')?;
        Ok(Node::Map(pairs))
    }

    fn element(&mut self) -> Result<Node, SyntaxError> {
        match self.peek() {
            Some('[') => self.explicit_list(),
            Some('{') => self.hash_literal(),
            _ => Ok(Node::Str(self.first_value()?)),
        }
    }

    fn first_value(&mut self) -> Result<String, SyntaxError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => self.quoted(q),
            // Like the AWS CLI, nothing at all (`Key=,` or `Key=` at the
            // end) is the empty string; validation decides if that is allowed.
            _ => Ok(self.unquoted(is_first_follow_char)),
        }
    }

    fn second_value(&mut self) -> Result<String, SyntaxError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => self.quoted(q),
            Some(c) if is_start_char(c) || self.escaped_comma() => {
                Ok(self.unquoted(is_second_follow_char))
            }
            _ => Err(self.error(format!("expected a value, found {}", self.found()))),
        }
    }

    fn escaped_comma(&self) -> bool {
        self.peek() == Some('\\') && self.chars.get(self.pos + 1) == Some(&',')
    }

    /// An unquoted value: a start character, then follow characters; `\,` is
    /// a literal comma anywhere. Trailing whitespace is not part of it.
    fn unquoted(&mut self, follows: fn(char) -> bool) -> String {
        let mut out = String::new();
        let mut first = true;
        loop {
            if self.escaped_comma() {
                out.push(',');
                self.pos += 2;
            } else {
                match self.peek() {
                    Some(c) if (first && is_start_char(c)) || (!first && follows(c)) => {
                        out.push(c);
                        self.pos += 1;
                    }
                    _ => break,
                }
            }
            first = false;
        }
        let kept = out.trim_end().len();
        out.truncate(kept);
        out
    }

    /// A value in `quote`s: `\\` is a backslash, `\<quote>` is the quote,
    /// any other backslash is kept as it is.
    fn quoted(&mut self, quote: char) -> Result<String, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        position: open,
                        message: format!("this {quote:?} is never closed"),
                    });
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => match self.chars.get(self.pos + 1) {
                    Some(&n) if n == quote || n == '\\' => {
                        out.push(n);
                        self.pos += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.pos += 1;
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Node {
        Node::Str(v.to_owned())
    }

    fn ok(input: &str) -> Vec<(String, Node)> {
        match parse(input) {
            Ok(v) => v,
            Err(e) => panic!("{input:?} should parse: {e}"),
        }
    }

    fn pairs(items: &[(&str, Node)]) -> Vec<(String, Node)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn flat_pairs() {
        assert_eq!(
            ok("key1=value1,key2=value2,key3=value3"),
            pairs(&[
                ("key1", s("value1")),
                ("key2", s("value2")),
                ("key3", s("value3"))
            ])
        );
        assert_eq!(ok("Status=RESOLVED"), pairs(&[("Status", s("RESOLVED"))]));
    }

    #[test]
    fn unquoted_values_keep_inner_spaces_and_drop_trailing_ones() {
        // What the shell passes for `--note Text="Known issue that is not a risk.",UpdatedBy="user1"`.
        assert_eq!(
            ok("Text=Known issue that is not a risk.,UpdatedBy=user1"),
            pairs(&[
                ("Text", s("Known issue that is not a risk.")),
                ("UpdatedBy", s("user1"))
            ])
        );
        assert_eq!(ok("a = b  , c= d "), pairs(&[("a", s("b")), ("c", s("d"))]));
    }

    #[test]
    fn quoted_values_may_hold_commas_equals_and_escapes() {
        assert_eq!(
            ok(r#"Text="Known issue, see JIRA-1",UpdatedBy=secops"#),
            pairs(&[
                ("Text", s("Known issue, see JIRA-1")),
                ("UpdatedBy", s("secops"))
            ])
        );
        assert_eq!(
            ok(r#"Text='a=b, "c"',UpdatedBy='it\'s'"#),
            pairs(&[("Text", s(r#"a=b, "c""#)), ("UpdatedBy", s("it's"))])
        );
        assert_eq!(ok(r#"a="x\"y\\z\n""#), pairs(&[("a", s(r#"x"y\z\n"#))]));
        assert_eq!(ok(r"a=x\,y,b=z"), pairs(&[("a", s("x,y")), ("b", s("z"))]));
    }

    #[test]
    fn equals_inside_the_first_value_is_literal() {
        assert_eq!(ok("a=b=c"), pairs(&[("a", s("b=c"))]));
    }

    #[test]
    fn csv_lists_run_until_the_next_key() {
        assert_eq!(
            ok("a=b,c,d=e"),
            pairs(&[("a", Node::List(vec![s("b"), s("c")])), ("d", s("e"))])
        );
        assert_eq!(
            ok("a=b, c ,'d,e'"),
            pairs(&[("a", Node::List(vec![s("b"), s("c"), s("d,e")]))])
        );
    }

    #[test]
    fn nested_structures_and_lists() {
        assert_eq!(
            ok("Key={A=1,B=[x, y]},L=[a,{C=2}],E=[],F={}"),
            pairs(&[
                (
                    "Key",
                    Node::Map(vec![
                        ("A".into(), s("1")),
                        ("B".into(), Node::List(vec![s("x"), s("y")]))
                    ])
                ),
                (
                    "L",
                    Node::List(vec![s("a"), Node::Map(vec![("C".into(), s("2"))])])
                ),
                ("E", Node::List(vec![])),
                ("F", Node::Map(vec![])),
            ])
        );
    }

    #[test]
    fn empty_values() {
        assert_eq!(ok("a="), pairs(&[("a", s(""))]));
        assert_eq!(ok("a=,b=c"), pairs(&[("a", s("")), ("b", s("c"))]));
        assert_eq!(ok("a=\"\""), pairs(&[("a", s(""))]));
    }

    #[test]
    fn keys_may_hold_cli_key_punctuation() {
        assert_eq!(
            ok("team/owner:primary=alice,ticket.id=1,x-y_z#=2"),
            pairs(&[
                ("team/owner:primary", s("alice")),
                ("ticket.id", s("1")),
                ("x-y_z#", s("2"))
            ])
        );
    }

    #[test]
    fn errors_carry_positions() {
        let cases: &[(&str, usize, &str)] = &[
            ("Text", 4, "expected '='"),
            ("Text=a,=b", 7, "expected a key"),
            ("=x", 0, "expected a key"),
            ("a=b,", 4, "expected a value"),
            ("a=\"open", 2, "never closed"),
            ("a=[x,y", 2, "never closed"),
            ("a={x=1", 2, "never closed"),
            ("a=b,a=c", 4, "given twice"),
            ("a={x=1,x=2}", 7, "given twice"),
            ("a=\"x\"y", 5, "expected ','"),
            ("my key=v", 3, "expected '='"),
        ];
        for &(input, position, fragment) in cases {
            match parse(input) {
                Ok(v) => panic!("{input:?} should fail, got {v:?}"),
                Err(e) => {
                    assert_eq!(e.position, position, "{input:?}: {e}");
                    assert!(e.message.contains(fragment), "{input:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for input in [
            "",
            ",",
            "=",
            "[",
            "{",
            "a=[",
            "a={",
            "a=[{",
            "a={b=[",
            "\\",
            "a=\\",
            "a='\\",
            "a=]",
            "a=}",
            "é=1",
            "a=é,b=🦀",
            "a=\u{0}",
        ] {
            let _ = parse(input);
        }
    }
}
