//! The subset of Go's `text/template` that HAProxy configuration templates use.
//!
//! CAPD lets users replace the load-balancer configuration with their own Go
//! template (`customHAProxyConfigTemplateRef`), so templates written for CAPD must
//! render the same here: actions with `{{-`/`-}}` trimming, fields, variables, `if`/
//! `else if`/`else`, `with`, `range` over maps (in key order) and lists, pipelines,
//! parentheses, comments, Go's comparison and logic built-ins, `len`, `index`,
//! `print[f|ln]`, and `JoinHostPort`. `define`/`template`/`block` and
//! `break`/`continue` are refused at parse time rather than misrendered.

mod exec;
mod funcs;
mod lex;
mod parse;
mod value;

use std::collections::BTreeMap;

pub use value::Value;

/// A template that failed to parse or to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template parse error at line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("template execution error at line {line}: {message}")]
    Exec { line: usize, message: String },
}

impl TemplateError {
    fn parse(line: usize, message: impl Into<String>) -> Self {
        TemplateError::Parse {
            line,
            message: message.into(),
        }
    }

    fn exec(line: usize, message: impl Into<String>) -> Self {
        TemplateError::Exec {
            line,
            message: message.into(),
        }
    }
}

/// A parsed template, reusable for many renders.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parse::Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            nodes: parse::parse(lex::lex(src)?)?,
        })
    }

    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let funcs = funcs::all();
        exec::Exec::new(&funcs, data).run(&self.nodes, data)
    }
}

/// Parses and renders in one go.
pub fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(src)?.render(data)
}

/// A `Value::Map` from pairs.
pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        Value::structure([
            ("Name", "lb".into()),
            ("N", Value::Int(2)),
            ("Flag", Value::Bool(false)),
            ("Empty", map::<String>([])),
            (
                "M",
                map([
                    ("b", Value::structure([("X", "2".into())])),
                    ("a", Value::structure([("X", "1".into())])),
                ]),
            ),
            ("L", Value::List(vec!["x".into(), "y".into()])),
        ])
    }

    fn r(src: &str) -> Result<String, TemplateError> {
        render(src, &data())
    }

    #[test]
    fn ranges_over_maps_in_key_order() {
        assert_eq!(
            r("{{range $k, $v := .M}}{{$k}}={{$v.X}};{{end}}").unwrap(),
            "a=1;b=2;"
        );
        assert_eq!(r("{{range .M}}{{.X}}{{end}}").unwrap(), "12");
        assert_eq!(
            r("{{range $i, $e := .L}}{{$i}}{{$e}}{{end}}").unwrap(),
            "0x1y"
        );
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}").unwrap(), "none");
    }

    #[test]
    fn root_variable_reaches_out_of_range() {
        assert_eq!(
            r("{{range .L}}{{$.Name}}-{{.}} {{end}}").unwrap(),
            "lb-x lb-y "
        );
    }

    #[test]
    fn conditionals_and_builtins() {
        assert_eq!(
            r("{{if .Flag}}a{{else if eq .N 2}}b{{else}}c{{end}}").unwrap(),
            "b"
        );
        assert_eq!(r("{{if not .Flag}}yes{{end}}").unwrap(), "yes");
        assert_eq!(r("{{with .Name}}[{{.}}]{{end}}").unwrap(), "[lb]");
        assert_eq!(
            r("{{len .L}} {{index .L 1}} {{.Name | printf \"%s!\"}}").unwrap(),
            "2 y lb!"
        );
        assert_eq!(
            r("{{ (JoinHostPort \"::1\" \"6443\") }}").unwrap(),
            "[::1]:6443"
        );
        assert_eq!(r("{{ $x := .Name }}{{ $x }}").unwrap(), "lb");
    }

    #[test]
    fn variables_are_scoped_to_their_block() {
        assert!(r("{{if true}}{{$x := 1}}{{end}}{{$x}}").is_err());
    }

    #[test]
    fn unknown_struct_field_is_an_error_map_key_is_not() {
        let err = r("{{ .Nope }}").unwrap_err();
        assert!(matches!(err, TemplateError::Exec { line: 1, .. }), "{err}");
        assert_eq!(r("{{ .M.zzz }}").unwrap(), "<no value>");
    }

    #[test]
    fn unknown_function_is_an_error() {
        assert!(r("{{ nope .Name }}").is_err());
    }
}
