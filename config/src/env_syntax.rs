//! The syntax of 6WIND's fast-path.env, read by our own small parser (no
//! shell is run).
//!
//! fast-path.sh sources the file, so it is shell; the subset its files use
//! is what this accepts (anchors.md section 2.1):
//! - `VAR=value` (also `export VAR=value`): the file's value wins over the
//!   environment's;
//! - `: ${VAR:=value}`: the value applies only if VAR is unset or empty at
//!   that point, so the environment (or an earlier line) wins;
//! - values unquoted, in `'single'` quotes (literal) or `"double"` quotes
//!   (`\"`, `\\`, `` \` `` and `\$` escaped), values with spaces quoted,
//!   outside quotes `\` taking the next character literally;
//! - `#` comments at the start of a line or after whitespace, blank lines.
//!
//! Anything else (commands, `$VAR` expansion, `$(...)`) is a typed error
//! with its line number rather than a guess at what the shell would do.
//! The environment is an input, never read from the process here.

use std::collections::BTreeMap;

/// Which of the two assignment forms a line used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignKind {
    /// `VAR=value` or `export VAR=value`: overrides the environment.
    Set,
    /// `: ${VAR:=value}`: applies only if VAR is unset or empty.
    Default,
}

/// One assignment as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// 1-based line number.
    pub line: usize,
    /// The variable.
    pub var: String,
    /// The value, quotes removed.
    pub value: String,
    /// Which form.
    pub kind: AssignKind,
}

/// Why a line of the file was rejected. Every variant names its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvSyntaxError {
    /// A quote opened and never closed on that line.
    #[error("line {line}: {var}: unterminated {quote} quote in {text:?}")]
    UnterminatedQuote {
        /// Line number.
        line: usize,
        /// The variable being assigned.
        var: String,
        /// `'` or `"`.
        quote: char,
        /// The value text as written.
        text: String,
    },
    /// Not an assignment in either form, nor a comment.
    #[error(
        "line {line}: {text:?} is not an assignment: expected VAR=value, export VAR=value or \
         : ${{VAR:=value}}"
    )]
    NotAnAssignment {
        /// Line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The name is not a shell variable name.
    #[error("line {line}: {name:?} is not a variable name (letters, digits and '_', not starting with a digit)")]
    BadName {
        /// Line number.
        line: usize,
        /// The name as written.
        name: String,
    },
    /// Text after the value that is neither whitespace nor a comment (an
    /// unquoted value with a space in it, usually).
    #[error("line {line}: {var}: unexpected {rest:?} after the value; values with spaces must be quoted")]
    TrailingText {
        /// Line number.
        line: usize,
        /// The variable.
        var: String,
        /// What followed.
        rest: String,
    },
    /// `$` expansion or command substitution, which we do not evaluate.
    #[error("line {line}: {var}: {text:?} uses '$' or '`' expansion, which is not supported; write the value itself")]
    Expansion {
        /// Line number.
        line: usize,
        /// The variable.
        var: String,
        /// The value text as written.
        text: String,
    },
    /// A backslash ending the line: values continued onto the next line
    /// are not supported.
    #[error("line {line}: {var}: a '\\' at the end of the line continues the value; write it on one line")]
    LineContinuation {
        /// Line number.
        line: usize,
        /// The variable.
        var: String,
    },
    /// `: ${VAR:=value` without its closing brace.
    #[error("line {line}: {var}: missing '}}' closing : ${{{var}:=...}}")]
    UnclosedBrace {
        /// Line number.
        line: usize,
        /// The variable.
        var: String,
    },
}

/// Every assignment of the file, in order.
pub fn parse_assignments(text: &str) -> Result<Vec<Assignment>, EnvSyntaxError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        out.push(parse_line(line, trimmed)?);
    }
    Ok(out)
}

/// The values in effect after the file, starting from `env`: each known
/// value with the line that set it (`None`: it came from `env`).
pub fn resolve(
    assignments: &[Assignment],
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, (String, Option<usize>)> {
    let mut values: BTreeMap<String, (String, Option<usize>)> = env
        .iter()
        .map(|(k, v)| (k.clone(), (v.clone(), None)))
        .collect();
    for a in assignments {
        let applies = match a.kind {
            AssignKind::Set => true,
            // The shell's `:=` assigns when the variable is unset or empty.
            AssignKind::Default => values.get(&a.var).is_none_or(|(v, _)| v.is_empty()),
        };
        if applies {
            values.insert(a.var.clone(), (a.value.clone(), Some(a.line)));
        }
    }
    values
}

fn parse_line(line: usize, text: &str) -> Result<Assignment, EnvSyntaxError> {
    let not_assignment = || EnvSyntaxError::NotAnAssignment {
        line,
        text: text.to_string(),
    };
    if let Some(rest) = text.strip_prefix(':') {
        let rest = rest.trim_start();
        let body = rest.strip_prefix("${").ok_or_else(not_assignment)?;
        let (name, value_text) = body.split_once(":=").ok_or_else(not_assignment)?;
        let var = check_name(line, name)?;
        let (value, after) = read_value(line, &var, value_text, true)?;
        let after = after
            .strip_prefix('}')
            .ok_or_else(|| EnvSyntaxError::UnclosedBrace {
                line,
                var: var.clone(),
            })?;
        check_tail(line, &var, after)?;
        return Ok(Assignment {
            line,
            var,
            value,
            kind: AssignKind::Default,
        });
    }
    let body = match text.strip_prefix("export") {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => text,
    };
    let (name, value_text) = body.split_once('=').ok_or_else(not_assignment)?;
    let var = check_name(line, name)?;
    let (value, after) = read_value(line, &var, value_text, false)?;
    check_tail(line, &var, after)?;
    Ok(Assignment {
        line,
        var,
        value,
        kind: AssignKind::Set,
    })
}

fn check_name(line: usize, name: &str) -> Result<String, EnvSyntaxError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(name.to_string())
    } else {
        Err(EnvSyntaxError::BadName {
            line,
            name: name.to_string(),
        })
    }
}

/// Reads one shell word from the start of `text`; returns it and the rest.
/// In a `${...}` default an unquoted `}` ends the word.
fn read_value<'a>(
    line: usize,
    var: &str,
    text: &'a str,
    in_brace: bool,
) -> Result<(String, &'a str), EnvSyntaxError> {
    let expansion = || EnvSyntaxError::Expansion {
        line,
        var: var.to_string(),
        text: text.to_string(),
    };
    let unterminated = |quote| EnvSyntaxError::UnterminatedQuote {
        line,
        var: var.to_string(),
        quote,
        text: text.to_string(),
    };
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(unterminated('\'')),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\' | '$' | '`'))) => value.push(c),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err(unterminated('"')),
                    },
                    Some((_, '$' | '`')) => return Err(expansion()),
                    Some((_, c)) => value.push(c),
                    None => return Err(unterminated('"')),
                }
            },
            // Unquoted, a backslash takes the next character literally; at
            // the end of the line it would continue onto the next one.
            '\\' => match chars.next() {
                Some((_, c)) => value.push(c),
                None => {
                    return Err(EnvSyntaxError::LineContinuation {
                        line,
                        var: var.to_string(),
                    })
                }
            },
            '$' | '`' => return Err(expansion()),
            '}' if in_brace => return Ok((value, text.get(i..).unwrap_or(""))),
            c if c.is_whitespace() => return Ok((value, text.get(i..).unwrap_or(""))),
            c => value.push(c),
        }
    }
    Ok((value, ""))
}

/// After a value: nothing, or whitespace and a comment.
fn check_tail(line: usize, var: &str, rest: &str) -> Result<(), EnvSyntaxError> {
    let trimmed = rest.trim_start();
    // `#` starts a comment only at a word's start, hence "after whitespace"
    // or right after the `}` of the default form.
    if trimmed.is_empty() || trimmed.starts_with('#') {
        Ok(())
    } else {
        Err(EnvSyntaxError::TrailingText {
            line,
            var: var.to_string(),
            rest: trimmed.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(text: &str) -> Assignment {
        let mut v = parse_assignments(text).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    #[test]
    fn plain_export_and_default_forms() {
        let a = one("FP_MASK=1-3");
        assert_eq!(
            (a.var.as_str(), a.value.as_str(), a.kind),
            ("FP_MASK", "1-3", AssignKind::Set)
        );
        let a = one("export NB_MBUF=4096");
        assert_eq!(
            (a.var.as_str(), a.value.as_str(), a.kind),
            ("NB_MBUF", "4096", AssignKind::Set)
        );
        let a = one(": ${FP_MEMORY:=512}");
        assert_eq!(
            (a.var.as_str(), a.value.as_str(), a.kind),
            ("FP_MEMORY", "512", AssignKind::Default)
        );
        let a = one(":   ${FP_PORTS:='0000:01:10.0 0000:01:10.2'} # two VFs");
        assert_eq!(a.value, "0000:01:10.0 0000:01:10.2");
    }

    #[test]
    fn quotes_comments_and_blank_lines() {
        let text = "# header\n\n  # indented comment\nA='x # y'  # tail\nB=\"a \\\"b\\\" \\$c\"\nC=d#e\nD=\n";
        let v = parse_assignments(text).unwrap();
        let got: Vec<(usize, &str, &str)> = v
            .iter()
            .map(|a| (a.line, a.var.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, "A", "x # y"),
                (5, "B", "a \"b\" $c"),
                (6, "C", "d#e"),
                (7, "D", "")
            ]
        );
    }

    #[test]
    fn an_unquoted_backslash_escapes_the_next_character() {
        assert_eq!(one("A=a\\ b").value, "a b");
        assert_eq!(one("A=a\\\\b").value, "a\\b");
        assert_eq!(one("A=\\#x").value, "#x");
    }

    #[test]
    fn set_overrides_the_environment_and_default_yields_to_it() {
        let v = parse_assignments("A=file\n: ${B:=file}\n: ${C:=file}\n: ${A:=again}\n").unwrap();
        let env: BTreeMap<String, String> = [("A", "env"), ("B", "env"), ("PATH", "/bin")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = resolve(&v, &env);
        assert_eq!(r.get("A"), Some(&("file".to_string(), Some(1))));
        assert_eq!(r.get("B"), Some(&("env".to_string(), None)));
        assert_eq!(r.get("C"), Some(&("file".to_string(), Some(3))));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let e = parse_assignments("A=1\nB='open\n").unwrap_err();
        assert!(
            matches!(
                e,
                EnvSyntaxError::UnterminatedQuote {
                    line: 2,
                    quote: '\'',
                    ..
                }
            ),
            "{e:?}"
        );
        let e = parse_assignments("\nB=\"open").unwrap_err();
        assert!(
            matches!(
                e,
                EnvSyntaxError::UnterminatedQuote {
                    line: 2,
                    quote: '"',
                    ..
                }
            ),
            "{e:?}"
        );
        let e = parse_assignments("FP_PORTS=a b").unwrap_err();
        assert!(
            matches!(e, EnvSyntaxError::TrailingText { line: 1, ref rest, .. } if rest == "b"),
            "{e:?}"
        );
        let e = parse_assignments("echo hi").unwrap_err();
        assert!(
            matches!(e, EnvSyntaxError::NotAnAssignment { line: 1, .. }),
            "{e:?}"
        );
        let e = parse_assignments("1A=2").unwrap_err();
        assert!(
            matches!(e, EnvSyntaxError::BadName { line: 1, .. }),
            "{e:?}"
        );
        let e = parse_assignments("A=$HOME").unwrap_err();
        assert!(
            matches!(e, EnvSyntaxError::Expansion { line: 1, .. }),
            "{e:?}"
        );
        let e = parse_assignments("A=1\\\nB=2").unwrap_err();
        assert!(
            matches!(e, EnvSyntaxError::LineContinuation { line: 1, .. }),
            "{e:?}"
        );
        let e = parse_assignments(": ${A:=1").unwrap_err();
        assert!(
            matches!(e, EnvSyntaxError::UnclosedBrace { line: 1, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    proptest! {
        #[test]
        fn no_input_panics(text in "[ -~\\n\\t]{0,200}") {
            if let Ok(v) = parse_assignments(&text) {
                let _ = resolve(&v, &BTreeMap::new());
            }
        }
    }
}
