//! The functions templates may call: Go's built-ins that make sense for text
//! output, and `JoinHostPort` which CAPD's templates use.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::exec::Func;
use super::value::Value;

pub fn all() -> BTreeMap<&'static str, Func> {
    let mut m: BTreeMap<&'static str, Func> = BTreeMap::new();
    m.insert("JoinHostPort", join_host_port);
    m.insert("and", and);
    m.insert("or", or);
    m.insert("not", not);
    m.insert("eq", eq);
    m.insert("ne", ne);
    m.insert("lt", lt);
    m.insert("le", le);
    m.insert("gt", gt);
    m.insert("ge", ge);
    m.insert("len", len);
    m.insert("index", index);
    m.insert("print", print);
    m.insert("println", println);
    m.insert("printf", printf);
    m
}

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args: want {n}, got {}",
            args.len()
        ))
    }
}

/// Go's `net.JoinHostPort`: brackets hosts that contain a colon (IPv6).
fn join_host_port(args: &[Value]) -> Result<Value, String> {
    arity(args, 2)?;
    let host = args[0].to_string();
    let port = match &args[1] {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => return Err(format!("port must be a string, not {}", other.type_name())),
    };
    Ok(Value::Str(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }))
}

fn and(args: &[Value]) -> Result<Value, String> {
    let mut last = Value::Nil;
    for a in args {
        if !a.truthy() {
            return Ok(a.clone());
        }
        last = a.clone();
    }
    Ok(last)
}

fn or(args: &[Value]) -> Result<Value, String> {
    let mut last = Value::Nil;
    for a in args {
        if a.truthy() {
            return Ok(a.clone());
        }
        last = a.clone();
    }
    Ok(last)
}

fn not(args: &[Value]) -> Result<Value, String> {
    arity(args, 1)?;
    Ok(Value::Bool(!args[0].truthy()))
}

fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Some(x.cmp(y))),
        (Value::Str(x), Value::Str(y)) => Ok(Some(x.cmp(y))),
        (Value::Bool(x), Value::Bool(y)) => Ok(if x == y { Some(Ordering::Equal) } else { None }),
        (Value::Nil, Value::Nil) => Ok(Some(Ordering::Equal)),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn eq(args: &[Value]) -> Result<Value, String> {
    if args.len() < 2 {
        return Err("eq needs at least two arguments".into());
    }
    for b in &args[1..] {
        if compare(&args[0], b)? == Some(Ordering::Equal) {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn ne(args: &[Value]) -> Result<Value, String> {
    arity(args, 2)?;
    Ok(Value::Bool(
        compare(&args[0], &args[1])? != Some(Ordering::Equal),
    ))
}

fn ordered(args: &[Value], ok: fn(Ordering) -> bool) -> Result<Value, String> {
    arity(args, 2)?;
    match compare(&args[0], &args[1])? {
        Some(o) if !matches!(args[0], Value::Bool(_)) => Ok(Value::Bool(ok(o))),
        _ => Err(format!(
            "invalid type for comparison: {}",
            args[0].type_name()
        )),
    }
}

fn lt(args: &[Value]) -> Result<Value, String> {
    ordered(args, Ordering::is_lt)
}
fn le(args: &[Value]) -> Result<Value, String> {
    ordered(args, Ordering::is_le)
}
fn gt(args: &[Value]) -> Result<Value, String> {
    ordered(args, Ordering::is_gt)
}
fn ge(args: &[Value]) -> Result<Value, String> {
    ordered(args, Ordering::is_ge)
}

fn len(args: &[Value]) -> Result<Value, String> {
    arity(args, 1)?;
    let n = match &args[0] {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        other => return Err(format!("len of {}", other.type_name())),
    };
    Ok(Value::Int(n as i64))
}

fn index(args: &[Value]) -> Result<Value, String> {
    let (first, keys) = args.split_first().ok_or("index needs an argument")?;
    let mut cur = first.clone();
    for k in keys {
        cur = match (&cur, k) {
            (Value::Map(m), Value::Str(s)) => m.get(s).cloned().unwrap_or(Value::Nil),
            (Value::List(l), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .ok_or_else(|| format!("index out of range: {i}"))?,
            (c, k) => {
                return Err(format!(
                    "can't index {} with {}",
                    c.type_name(),
                    k.type_name()
                ))
            }
        };
    }
    Ok(cur)
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
fn print(args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_string());
    }
    Ok(Value::Str(out))
}

fn println(args: &[Value]) -> Result<Value, String> {
    let parts: Vec<String> = args.iter().map(Value::to_string).collect();
    Ok(Value::Str(parts.join(" ") + "\n"))
}

/// `printf` with the verbs configuration templates use: `%s %v %d %q %%`.
fn printf(args: &[Value]) -> Result<Value, String> {
    let (fmt, rest) = args.split_first().ok_or("printf needs a format")?;
    let Value::Str(fmt) = fmt else {
        return Err("printf format must be a string".into());
    };
    let mut out = String::new();
    let mut rest = rest.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb @ ('s' | 'v' | 'd' | 'q')) => {
                let arg = rest
                    .next()
                    .ok_or_else(|| format!("missing argument for %{verb}"))?;
                match (verb, arg) {
                    ('d', Value::Int(i)) => out.push_str(&i.to_string()),
                    ('d', other) => return Err(format!("%d of {}", other.type_name())),
                    ('q', v) => out.push_str(&format!("{:?}", v.to_string())),
                    (_, v) => out.push_str(&v.to_string()),
                }
            }
            Some(other) => return Err(format!("unsupported printf verb %{other}")),
            None => return Err("printf format ends with %".into()),
        }
    }
    Ok(Value::Str(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_host_port_brackets_ipv6() {
        assert_eq!(
            join_host_port(&["1.2.3.4".into(), "6443".into()]).unwrap(),
            "1.2.3.4:6443".into()
        );
        assert_eq!(
            join_host_port(&["fd00::2".into(), "6443".into()]).unwrap(),
            "[fd00::2]:6443".into()
        );
    }

    #[test]
    fn comparisons_follow_go() {
        assert_eq!(
            eq(&[Value::Int(1), Value::Int(2), Value::Int(1)]).unwrap(),
            Value::Bool(true)
        );
        assert!(eq(&[Value::Int(1), "1".into()]).is_err());
        assert_eq!(
            lt(&[Value::Int(1), Value::Int(2)]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            and(&[Value::Bool(true), Value::Int(0)]).unwrap(),
            Value::Int(0)
        );
        assert_eq!(
            or(&[Value::Str(String::new()), "x".into()]).unwrap(),
            "x".into()
        );
    }

    #[test]
    fn printf_formats() {
        let v = printf(&[
            "%s:%d %q 100%%".into(),
            "a".into(),
            Value::Int(3),
            "b".into(),
        ])
        .unwrap();
        assert_eq!(v, "a:3 \"b\" 100%".into());
    }
}
