//! Splits a template into text and actions, applying `{{-` / `-}}` trimming, and
//! tokenizes the inside of actions.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `.` alone.
    Dot,
    /// `.A.B`
    Field(Vec<String>),
    /// `.A.B` right after `)`: fields of the parenthesized value.
    Chain(Vec<String>),
    /// `$`, `$x`, `$x.A.B`
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Declare,
    Assign,
    Comma,
    Pipe,
    LParen,
    RParen,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Text(String),
    Action { line: usize, toks: Vec<Tok> },
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    loop {
        let Some(open) = rest.find(OPEN) else {
            push_text(&mut items, rest, trim_next_text, false);
            break;
        };
        let after_open = &rest[open + OPEN.len()..];
        let trim_left = after_open.starts_with('-') && after_open[1..].starts_with(is_space);
        push_text(&mut items, &rest[..open], trim_next_text, trim_left);
        let line = 1 + src[..src.len() - rest.len() + open].matches('\n').count();
        let mut inner = if trim_left {
            &after_open[1..]
        } else {
            after_open
        };

        // Comments may contain "}}"; they end at "*/" followed by the closing delimiter.
        let trimmed_start = inner.trim_start_matches(is_space);
        let (body, close_at) = if trimmed_start.starts_with("/*") {
            let end = trimmed_start
                .find("*/")
                .ok_or_else(|| TemplateError::parse(line, "unclosed comment"))?;
            let after = &trimmed_start[end + 2..];
            let close = after
                .find(CLOSE)
                .ok_or_else(|| TemplateError::parse(line, "unclosed action"))?;
            let between = &after[..close];
            if !between.trim_matches(is_space).is_empty() && between.trim_matches(is_space) != "-" {
                return Err(TemplateError::parse(
                    line,
                    "comment ends before closing delimiter",
                ));
            }
            inner = after;
            (None, close)
        } else {
            let close =
                find_close(inner).ok_or_else(|| TemplateError::parse(line, "unclosed action"))?;
            (Some(&inner[..close]), close)
        };

        let before_close = &inner[..close_at];
        let trim_right = before_close.ends_with('-')
            && before_close[..before_close.len() - 1].ends_with(is_space);
        if let Some(body) = body {
            let body = if trim_right {
                &body[..body.len() - 1]
            } else {
                body
            };
            items.push(Item::Action {
                line,
                toks: tokenize(body, line)?,
            });
        }
        trim_next_text = trim_right;
        rest = &inner[close_at + CLOSE.len()..];
    }
    Ok(items)
}

/// The closing delimiter, skipping any inside string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start_matches(is_space);
    }
    if trim_end {
        t = t.trim_end_matches(is_space);
    }
    if !t.is_empty() {
        items.push(Item::Text(t.to_string()));
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn tokenize(body: &str, line: usize) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = body.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && is_ident_char(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let fields = |i: &mut usize| {
        let mut out = Vec::new();
        while *i + 1 < chars.len() && chars[*i] == '.' && is_ident_char(chars[*i + 1]) {
            *i += 1;
            let start = *i;
            while *i < chars.len() && is_ident_char(chars[*i]) {
                *i += 1;
            }
            out.push(chars[start..*i].iter().collect::<String>());
        }
        out
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if is_space(c) => i += 1,
            '.' => {
                let f = fields(&mut i);
                if f.is_empty() {
                    i += 1;
                    toks.push(Tok::Dot);
                } else {
                    toks.push(Tok::Field(f));
                }
            }
            '$' => {
                i += 1;
                let name = ident(&mut i);
                let f = fields(&mut i);
                toks.push(Tok::Var(name, f));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(TemplateError::parse(line, "unterminated string"));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied();
                            i += 1;
                            s.push(match e {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some('\\') => '\\',
                                Some('"') => '"',
                                other => {
                                    return Err(TemplateError::parse(
                                        line,
                                        format!("unsupported escape \\{}", other.unwrap_or(' ')),
                                    ))
                                }
                            });
                        }
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(TemplateError::parse(line, "unterminated raw string"));
                }
                toks.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if chars.get(i).is_some_and(|&c| c == '.' || is_ident_char(c)) {
                    return Err(TemplateError::parse(
                        line,
                        format!("unsupported number near {text:?}"),
                    ));
                }
                let n = text
                    .parse()
                    .map_err(|_| TemplateError::parse(line, format!("bad number {text:?}")))?;
                toks.push(Tok::Int(n));
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                toks.push(Tok::Declare);
            }
            '=' => {
                i += 1;
                toks.push(Tok::Assign);
            }
            ',' => {
                i += 1;
                toks.push(Tok::Comma);
            }
            '|' => {
                i += 1;
                toks.push(Tok::Pipe);
            }
            '(' => {
                i += 1;
                toks.push(Tok::LParen);
            }
            ')' => {
                i += 1;
                toks.push(Tok::RParen);
                let f = fields(&mut i);
                if !f.is_empty() {
                    toks.push(Tok::Chain(f));
                }
            }
            c if is_ident_char(c) => {
                let name = ident(&mut i);
                toks.push(Tok::Ident(name));
            }
            other => {
                return Err(TemplateError::parse(
                    line,
                    format!("unexpected {other:?} in action"),
                ))
            }
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_around_markers() {
        let items = lex("a  {{- .X -}}  b").unwrap();
        assert_eq!(
            items,
            vec![
                Item::Text("a".into()),
                Item::Action {
                    line: 1,
                    toks: vec![Tok::Field(vec!["X".into()])]
                },
                Item::Text("b".into()),
            ]
        );
    }

    #[test]
    fn dash_without_space_is_not_a_trim_marker() {
        let items = lex("a {{-3}}").unwrap();
        assert_eq!(items[0], Item::Text("a ".into()));
        assert_eq!(
            items[1],
            Item::Action {
                line: 1,
                toks: vec![Tok::Int(-3)]
            }
        );
    }

    #[test]
    fn comments_vanish() {
        assert_eq!(
            lex("a{{/* x }} y */}}b").unwrap(),
            vec![Item::Text("a".into()), Item::Text("b".into())]
        );
        assert_eq!(
            lex("a {{- /* x */ -}} b").unwrap(),
            vec![Item::Text("a".into()), Item::Text("b".into())]
        );
    }

    #[test]
    fn tokenizes_vars_fields_and_strings() {
        let items = lex(r#"{{range $k, $v := .M}}{{ f $v.A "s}}" 1 }}{{end}}"#).unwrap();
        let Item::Action { toks, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(
            toks,
            &vec![
                Tok::Ident("range".into()),
                Tok::Var("k".into(), vec![]),
                Tok::Comma,
                Tok::Var("v".into(), vec![]),
                Tok::Declare,
                Tok::Field(vec!["M".into()])
            ]
        );
        let Item::Action { toks, .. } = &items[1] else {
            panic!()
        };
        assert_eq!(
            toks,
            &vec![
                Tok::Ident("f".into()),
                Tok::Var("v".into(), vec!["A".into()]),
                Tok::Str("s}}".into()),
                Tok::Int(1)
            ]
        );
    }

    #[test]
    fn reports_line_of_unclosed_action() {
        let err = lex("a\nb {{ .X").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
