//! Evaluates a parsed template against a [`Value`].

use std::collections::BTreeMap;

use super::parse::{Branch, Command, Node, Operand, Pipeline};
use super::value::Value;
use super::TemplateError;

/// A function callable from templates.
pub type Func = fn(&[Value]) -> Result<Value, String>;

pub struct Exec<'a> {
    funcs: &'a BTreeMap<&'static str, Func>,
    /// Variable stack; `$` is always the first entry. Blocks truncate it on exit.
    vars: Vec<(String, Value)>,
    out: String,
}

impl<'a> Exec<'a> {
    pub fn new(funcs: &'a BTreeMap<&'static str, Func>, root: &Value) -> Self {
        Self {
            funcs,
            vars: vec![(String::new(), root.clone())],
            out: String::new(),
        }
    }

    pub fn run(mut self, nodes: &[Node], dot: &Value) -> Result<String, TemplateError> {
        self.walk(nodes, dot)?;
        Ok(self.out)
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::If(b) => self.cond(b, dot, false)?,
                Node::With(b) => self.cond(b, dot, true)?,
                Node::Range(b) => self.range(b, dot)?,
            }
        }
        Ok(())
    }

    fn scoped<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, TemplateError>,
    ) -> Result<T, TemplateError> {
        let mark = self.vars.len();
        let r = f(self);
        self.vars.truncate(mark);
        r
    }

    fn cond(&mut self, b: &Branch, dot: &Value, rebind_dot: bool) -> Result<(), TemplateError> {
        self.scoped(|ex| {
            let v = ex.pipeline(&b.pipe, dot)?;
            if v.truthy() {
                let body_dot = if rebind_dot { v } else { dot.clone() };
                ex.scoped(|ex| ex.walk(&b.body, &body_dot))
            } else {
                ex.scoped(|ex| ex.walk(&b.otherwise, dot))
            }
        })
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> Result<(), TemplateError> {
        self.scoped(|ex| {
            let pipe = Pipeline {
                vars: Vec::new(),
                ..b.pipe.clone()
            };
            let v = ex.pipeline(&pipe, dot)?;
            let entries: Vec<(Value, Value)> = match v {
                Value::List(l) => l
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), v))
                    .collect(),
                Value::Map(m) | Value::Struct(m) => {
                    m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()
                }
                Value::Int(n) => (0..n.max(0))
                    .map(|i| (Value::Int(i), Value::Int(i)))
                    .collect(),
                Value::Nil => Vec::new(),
                other => {
                    return Err(TemplateError::exec(
                        b.line,
                        format!("range can't iterate over {}", other.type_name()),
                    ))
                }
            };
            if entries.is_empty() {
                return ex.scoped(|ex| ex.walk(&b.otherwise, dot));
            }
            for (key, elem) in entries {
                ex.scoped(|ex| {
                    match b.pipe.vars.as_slice() {
                        [] => {}
                        [v] => ex.vars.push((v.clone(), elem.clone())),
                        [k, v] => {
                            ex.vars.push((k.clone(), key.clone()));
                            ex.vars.push((v.clone(), elem.clone()));
                        }
                        _ => return Err(TemplateError::exec(b.line, "too many range variables")),
                    }
                    ex.walk(&b.body, &elem)
                })?;
            }
            Ok(())
        })
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for cmd in &p.cmds {
            piped = Some(self.command(p.line, cmd, dot, piped.take())?);
        }
        let v = piped.unwrap_or(Value::Nil);
        if p.declare {
            for name in &p.vars {
                self.vars.push((name.clone(), v.clone()));
            }
        } else {
            for name in &p.vars {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| {
                        TemplateError::exec(p.line, format!("undefined variable ${name}"))
                    })?;
                slot.1 = v.clone();
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        line: usize,
        cmd: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        if let Operand::Func(name) = &cmd.args[0] {
            let f = *self.funcs.get(name.as_str()).ok_or_else(|| {
                TemplateError::exec(line, format!("function {name:?} not defined"))
            })?;
            let mut args = Vec::with_capacity(cmd.args.len());
            for a in &cmd.args[1..] {
                args.push(self.operand(line, a, dot)?);
            }
            args.extend(piped);
            return f(&args).map_err(|e| TemplateError::exec(line, format!("calling {name}: {e}")));
        }
        if cmd.args.len() > 1 || piped.is_some() {
            return Err(TemplateError::exec(
                line,
                "can't give arguments to a non-function",
            ));
        }
        self.operand(line, &cmd.args[0], dot)
    }

    fn operand(&mut self, line: usize, op: &Operand, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match op {
            Operand::Dot => dot.clone(),
            Operand::Field(path) => fields(line, dot, path)?,
            Operand::Var(name, path) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        TemplateError::exec(line, format!("undefined variable ${name}"))
                    })?;
                fields(line, &v, path)?
            }
            Operand::Func(name) => {
                let f = *self.funcs.get(name.as_str()).ok_or_else(|| {
                    TemplateError::exec(line, format!("function {name:?} not defined"))
                })?;
                f(&[]).map_err(|e| TemplateError::exec(line, format!("calling {name}: {e}")))?
            }
            Operand::Str(s) => Value::Str(s.clone()),
            Operand::Int(n) => Value::Int(*n),
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Nil => Value::Nil,
            Operand::Sub(p, chain) => {
                let v = self.pipeline(p, dot)?;
                fields(line, &v, chain)?
            }
        })
    }
}

fn fields(line: usize, v: &Value, path: &[String]) -> Result<Value, TemplateError> {
    let mut cur = v.clone();
    for name in path {
        cur = match cur {
            Value::Struct(m) => m
                .get(name)
                .cloned()
                .ok_or_else(|| TemplateError::exec(line, format!("can't evaluate field {name}")))?,
            Value::Map(m) => m.get(name).cloned().unwrap_or(Value::Nil),
            Value::Nil => Value::Nil,
            other => {
                return Err(TemplateError::exec(
                    line,
                    format!("can't evaluate field {name} in type {}", other.type_name()),
                ))
            }
        };
    }
    Ok(cur)
}
