//! What the caller runs: one `docker exec -i <node> argv...` per [`Action`].

use std::fmt::Write as _;

/// The file whose existence tells that a node's `kubeadm init`/`join` has started.
///
/// CAPD writes it right before kubeadm runs; a manager that finds it (after a
/// restart or a `clusterctl move`) must not bootstrap the node a second time.
pub const SENTINEL_PATH: &str = "/run/cluster-api/capd.bootstrap.started";

/// The directory of [`SENTINEL_PATH`].
pub(crate) const SENTINEL_DIR: &str = "/run/cluster-api";

/// Retries CAPD gives file writes, chmod/chown, systemd commands and the sentinel.
pub const FILE_RETRIES: u32 = 5;
/// Retries CAPD gives `runcmd` entries: none, they are not known to be idempotent.
pub const RUNCMD_RETRIES: u32 = 0;

/// The shell script used to write a file: `$1` is the directory, `$2` the file.
/// Paths travel as positional parameters, never inside the script text, so no
/// path can be read as shell syntax; the content travels on stdin.
pub(crate) const WRITE_SCRIPT: &str = "mkdir -p -- \"$1\" && cat > \"$2\"";
/// As [`WRITE_SCRIPT`], appending.
pub(crate) const APPEND_SCRIPT: &str = "mkdir -p -- \"$1\" && cat >> \"$2\"";
/// `$0` of the write scripts: what `sh` names itself in its error messages.
pub(crate) const WRITE_ARG0: &str = "capd-write-file";

/// What an [`Action`] does, for callers that want more than its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// Creates the file's directory and writes (or appends) stdin to it.
    WriteFile { path: String, append: bool },
    /// `chmod <mode> <path>`.
    Chmod { path: String, mode: u32 },
    /// `chown -- <owner> <path>`.
    Chown { path: String, owner: String },
    /// A `runcmd` entry (possibly rewritten for kubeadm, see [`crate::Options::kubeadm_fixups`]).
    RunCommand { index: usize, kubeadm: bool },
    /// Writes [`SENTINEL_PATH`]; always directly before a `kubeadm init`/`join` command.
    Sentinel,
    /// A `systemctl` command for an Ignition unit.
    Systemd { unit: String },
}

/// One command to run in the node container, verbatim:
/// `docker exec -i <node> argv...`, with `stdin` (if any) fed to it and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The program and its arguments; never empty, no element holds a NUL byte.
    pub argv: Vec<String>,
    /// Bytes to feed on stdin (file content), `None` for no stdin.
    pub stdin: Option<Vec<u8>>,
    /// How many times CAPD re-runs the command after a failure (5 s apart)
    /// before bootstrap is failed.
    pub retries: u32,
    /// Human-readable, for logs and the failure condition, e.g.
    /// `write_files[3]: write /etc/kubernetes/pki/ca.crt`.
    pub description: String,
    pub kind: ActionKind,
}

impl Action {
    /// The command line with each argument shell-quoted where needed; for logs.
    pub fn command_line(&self) -> String {
        let mut out = String::new();
        for (i, arg) in self.argv.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&shell_quote(arg));
        }
        out
    }

    pub(crate) fn write_file(origin: &str, path: &str, content: Vec<u8>, append: bool) -> Action {
        let dir = parent_dir(path);
        let script = if append { APPEND_SCRIPT } else { WRITE_SCRIPT };
        let verb = if append { "append to" } else { "write" };
        Action {
            argv: vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                script.to_string(),
                WRITE_ARG0.to_string(),
                dir.to_string(),
                path.to_string(),
            ],
            stdin: Some(content),
            retries: FILE_RETRIES,
            description: format!("{origin}: {verb} {path}"),
            kind: ActionKind::WriteFile {
                path: path.to_string(),
                append,
            },
        }
    }

    pub(crate) fn chmod(origin: &str, path: &str, mode: u32) -> Action {
        let mode_str = format_mode(mode);
        Action {
            // `path` is absolute, so it cannot be taken for an option.
            argv: vec!["chmod".to_string(), mode_str.clone(), path.to_string()],
            stdin: None,
            retries: FILE_RETRIES,
            description: format!("{origin}: chmod {mode_str} {path}"),
            kind: ActionKind::Chmod {
                path: path.to_string(),
                mode,
            },
        }
    }

    pub(crate) fn chown(origin: &str, path: &str, owner: &str) -> Action {
        Action {
            argv: vec![
                "chown".to_string(),
                "--".to_string(),
                owner.to_string(),
                path.to_string(),
            ],
            stdin: None,
            retries: FILE_RETRIES,
            description: format!("{origin}: chown {owner} {path}"),
            kind: ActionKind::Chown {
                path: path.to_string(),
                owner: owner.to_string(),
            },
        }
    }

    pub(crate) fn systemctl(origin: &str, unit: &str, args: &[&str]) -> Action {
        let mut argv = vec!["systemctl".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut action = Action {
            argv,
            stdin: None,
            retries: FILE_RETRIES,
            description: String::new(),
            kind: ActionKind::Systemd {
                unit: unit.to_string(),
            },
        };
        action.description = format!("{origin}: {}", action.command_line());
        action
    }
}

/// The action that records that kubeadm is about to run: creates [`SENTINEL_PATH`].
pub fn sentinel_action() -> Action {
    Action {
        argv: vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!("mkdir -p {SENTINEL_DIR} && echo started > {SENTINEL_PATH}"),
        ],
        stdin: None,
        retries: FILE_RETRIES,
        description: format!("record that kubeadm started: write {SENTINEL_PATH}"),
        kind: ActionKind::Sentinel,
    }
}

/// The command that tells whether a node's bootstrap already started, as CAPD
/// runs it: it always exits 0 and prints `true` or `false`; read its stdout
/// with [`sentinel_check_result`].
pub fn sentinel_check_command() -> Vec<String> {
    vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!("test -f {SENTINEL_PATH} && echo true || echo false"),
    ]
}

/// Reads the stdout of [`sentinel_check_command`]: `Some(true)` when the
/// sentinel exists, `Some(false)` when not, `None` for anything else
/// (the caller should treat that as an error, not as "absent").
pub fn sentinel_check_result(stdout: &[u8]) -> Option<bool> {
    match String::from_utf8_lossy(stdout).trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Quotes `s` for a POSIX shell: as is when it only has safe characters,
/// otherwise in single quotes (a single quote becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-'
                )
        });
    if safe {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A mode as CAPD passes it to chmod: octal, at least four digits (`0644`).
pub(crate) fn format_mode(mode: u32) -> String {
    let mut s = String::new();
    let _ = write!(s, "{mode:04o}");
    s
}

/// The directory holding an absolute file path (`/etc/a` -> `/etc`, `/a` -> `/`).
pub(crate) fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_safe_words_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("/etc/kubernetes/pki/ca.crt"),
            "/etc/kubernetes/pki/ca.crt"
        );
        assert_eq!(
            shell_quote("--ignore-preflight-errors=a,b"),
            "--ignore-preflight-errors=a,b"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(x)`y`;z\n"), "'$(x)`y`;z\n'");
    }

    #[test]
    fn parent_dirs() {
        assert_eq!(parent_dir("/etc/a"), "/etc");
        assert_eq!(parent_dir("/a"), "/");
        assert_eq!(parent_dir("/a/b/c"), "/a/b");
        assert_eq!(parent_dir("/é/ü"), "/é");
        assert_eq!(parent_dir("noslash"), "/");
    }

    #[test]
    fn modes_have_four_octal_digits() {
        assert_eq!(format_mode(0o644), "0644");
        assert_eq!(format_mode(0), "0000");
        assert_eq!(format_mode(0o4755), "4755");
    }

    #[test]
    fn sentinel_check_output() {
        assert_eq!(sentinel_check_result(b"true\n"), Some(true));
        assert_eq!(sentinel_check_result(b"false\n"), Some(false));
        assert_eq!(sentinel_check_result(b""), None);
        assert_eq!(sentinel_check_result(b"OCI runtime exec failed"), None);
    }
}
