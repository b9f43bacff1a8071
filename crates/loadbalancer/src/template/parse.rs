//! Builds the tree of a template from lexed items.

use super::lex::{Item, Tok};
use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If(Branch),
    With(Branch),
    Range(Branch),
}

/// `if`, `with` and `range`: a pipeline, a body, and an optional `else`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub line: usize,
    pub pipe: Pipeline,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub line: usize,
    /// Variables declared (`:=`) or assigned (`=`) with the result.
    pub vars: Vec<String>,
    pub declare: bool,
    pub cmds: Vec<Command>,
}

/// One stage of a pipeline: a function call or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub args: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Bool(bool),
    Nil,
    /// A parenthesized pipeline, with the fields taken of its value.
    Sub(Box<Pipeline>, Vec<String>),
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else,
    ElseIf(usize, Vec<Tok>),
}

pub fn parse(items: Vec<Item>) -> Result<Vec<Node>, TemplateError> {
    let mut it = items.into_iter();
    let (nodes, end) = parse_list(&mut it)?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End => Err(TemplateError::parse(0, "unexpected {{end}}")),
        Stop::Else | Stop::ElseIf(..) => Err(TemplateError::parse(0, "unexpected {{else}}")),
    }
}

fn parse_list(it: &mut impl Iterator<Item = Item>) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(item) = it.next() {
        let (line, toks) = match item {
            Item::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Item::Action { line, toks } => (line, toks),
        };
        let keyword = match toks.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        match keyword {
            "end" => {
                expect_alone(line, &toks, "end")?;
                return Ok((nodes, Stop::End));
            }
            "else" => {
                if toks.len() == 1 {
                    return Ok((nodes, Stop::Else));
                }
                match &toks[1] {
                    Tok::Ident(k) if k == "if" => {
                        return Ok((nodes, Stop::ElseIf(line, toks[2..].to_vec())))
                    }
                    _ => {
                        return Err(TemplateError::parse(
                            line,
                            "only `else` or `else if` may follow else",
                        ))
                    }
                }
            }
            "if" => nodes.push(Node::If(parse_branch(it, line, &toks[1..], "if", false)?)),
            "with" => nodes.push(Node::With(parse_branch(
                it,
                line,
                &toks[1..],
                "with",
                false,
            )?)),
            "range" => nodes.push(Node::Range(parse_branch(
                it,
                line,
                &toks[1..],
                "range",
                true,
            )?)),
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(TemplateError::parse(
                    line,
                    format!("{{{{{keyword}}}}} is not supported"),
                ))
            }
            _ => nodes.push(Node::Action(parse_pipeline(line, &toks, true)?)),
        }
    }
    Ok((nodes, Stop::Eof))
}

fn expect_alone(line: usize, toks: &[Tok], what: &str) -> Result<(), TemplateError> {
    if toks.len() == 1 {
        Ok(())
    } else {
        Err(TemplateError::parse(
            line,
            format!("unexpected arguments after {what}"),
        ))
    }
}

fn parse_branch(
    it: &mut impl Iterator<Item = Item>,
    line: usize,
    toks: &[Tok],
    what: &str,
    two_vars: bool,
) -> Result<Branch, TemplateError> {
    let pipe = parse_pipeline(line, toks, true)?;
    if pipe.vars.len() > if two_vars { 2 } else { 1 } {
        return Err(TemplateError::parse(
            line,
            format!("too many variables in {what}"),
        ));
    }
    let (body, end) = parse_list(it)?;
    let otherwise = match end {
        Stop::End => Vec::new(),
        Stop::Eof => {
            return Err(TemplateError::parse(
                line,
                format!("{what} has no {{{{end}}}}"),
            ))
        }
        Stop::Else => {
            let (otherwise, end) = parse_list(it)?;
            match end {
                Stop::End => otherwise,
                _ => {
                    return Err(TemplateError::parse(
                        line,
                        format!("{what}: expected {{{{end}}}} after {{{{else}}}}"),
                    ))
                }
            }
        }
        // `{{else if x}}` is an `if` nested in the else branch that shares our `{{end}}`.
        Stop::ElseIf(else_line, rest) => vec![Node::If(parse_branch(
            it, else_line, &rest, "else if", false,
        )?)],
    };
    Ok(Branch {
        line,
        pipe,
        body,
        otherwise,
    })
}

fn parse_pipeline(line: usize, toks: &[Tok], allow_decl: bool) -> Result<Pipeline, TemplateError> {
    let mut vars = Vec::new();
    let mut declare = false;
    let mut rest = toks;
    // `$a := ...`, `$a = ...`, `$k, $v := ...`
    if allow_decl {
        let decl_at = toks
            .iter()
            .position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(at) = decl_at {
            let lhs = &toks[..at];
            let ok = lhs.iter().enumerate().all(|(i, t)| match t {
                Tok::Var(_, f) if i % 2 == 0 => f.is_empty(),
                Tok::Comma => i % 2 == 1,
                _ => false,
            });
            if ok && !lhs.is_empty() && lhs.len() % 2 == 1 {
                vars = lhs
                    .iter()
                    .filter_map(|t| match t {
                        Tok::Var(n, _) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                declare = matches!(toks[at], Tok::Declare);
                rest = &toks[at + 1..];
            }
        }
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match &rest[i] {
            Tok::Pipe => {
                if args.is_empty() {
                    return Err(TemplateError::parse(line, "missing command before |"));
                }
                cmds.push(Command {
                    args: std::mem::take(&mut args),
                });
            }
            Tok::LParen => {
                let close = matching_paren(rest, i)
                    .ok_or_else(|| TemplateError::parse(line, "unclosed ("))?;
                let inner = parse_pipeline(line, &rest[i + 1..close], false)?;
                let chain = match rest.get(close + 1) {
                    Some(Tok::Chain(f)) => {
                        i = close + 1;
                        f.clone()
                    }
                    _ => {
                        i = close;
                        Vec::new()
                    }
                };
                args.push(Operand::Sub(Box::new(inner), chain));
            }
            Tok::RParen | Tok::Chain(_) => return Err(TemplateError::parse(line, "unexpected )")),
            Tok::Dot => args.push(Operand::Dot),
            Tok::Field(f) => args.push(Operand::Field(f.clone())),
            Tok::Var(n, f) => args.push(Operand::Var(n.clone(), f.clone())),
            Tok::Str(s) => args.push(Operand::Str(s.clone())),
            Tok::Int(n) => args.push(Operand::Int(*n)),
            Tok::Ident(id) => args.push(match id.as_str() {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                "nil" => Operand::Nil,
                _ => Operand::Func(id.clone()),
            }),
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err(TemplateError::parse(line, "unexpected declaration"));
            }
        }
        i += 1;
    }
    if args.is_empty() {
        return Err(TemplateError::parse(line, "missing value in action"));
    }
    cmds.push(Command { args });
    Ok(Pipeline {
        line,
        vars,
        declare,
        cmds,
    })
}

fn matching_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::lex::lex;
    use super::*;

    fn p(src: &str) -> Result<Vec<Node>, TemplateError> {
        parse(lex(src)?)
    }

    #[test]
    fn else_if_chains_share_one_end() {
        let nodes = p("{{if .A}}a{{else if .B}}b{{else}}c{{end}}").unwrap();
        let Node::If(b) = &nodes[0] else { panic!() };
        assert_eq!(b.body, vec![Node::Text("a".into())]);
        let Node::If(inner) = &b.otherwise[0] else {
            panic!()
        };
        assert_eq!(inner.otherwise, vec![Node::Text("c".into())]);
    }

    #[test]
    fn rejects_unbalanced_and_unsupported() {
        assert!(p("{{if .A}}x").is_err());
        assert!(p("{{end}}").is_err());
        assert!(p("{{template \"x\"}}").is_err());
        assert!(p("{{ }}").is_err());
        assert!(p("{{ (f .A }}").is_err());
    }

    #[test]
    fn parses_range_with_two_vars_and_pipes() {
        let nodes = p("{{range $k, $v := .M}}{{ $v | f }}{{end}}").unwrap();
        let Node::Range(r) = &nodes[0] else { panic!() };
        assert_eq!(r.pipe.vars, vec!["k".to_string(), "v".to_string()]);
        let Node::Action(a) = &r.body[0] else {
            panic!()
        };
        assert_eq!(a.cmds.len(), 2);
    }
}
