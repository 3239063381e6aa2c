//! The layer rules of ARCHITECTURE.md, checked on the source tree: which module may name
//! openraft, tonic, the OS's time, files and sockets, TLS, `cfg(madsim)` and anyhow, and how long
//! a Rust file may grow. `planted_violations_are_found` proves the checker can fail.

use std::path::{Path, PathBuf};

/// Longest Rust file allowed anywhere in the workspace (lines).
const FILE_LINES_MAX: usize = 800;

/// A rule: code matching `pattern` may appear only in files under one of `allowed` (paths
/// relative to the crate's `src/`; a path ending in `.rs` allows that one file).
struct Rule {
    name: &'static str,
    pattern: &'static str,
    allowed: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        name: "openraft only in raft (and io's runtime for it)",
        pattern: "openraft",
        allowed: &["raft/", "io/runtime.rs"],
    },
    Rule {
        name: "tonic only in api, server and the binaries",
        pattern: "tonic",
        allowed: &["api/", "server/", "bin/"],
    },
    Rule {
        name: "timers and the clock only through io",
        pattern: "tokio::time",
        allowed: &["io/", "bin/"],
    },
    Rule {
        name: "the wall clock only through io",
        pattern: "SystemTime",
        allowed: &["io/", "bin/"],
    },
    Rule {
        name: "files only through io",
        pattern: "std::fs",
        allowed: &["io/", "bin/"],
    },
    Rule {
        name: "sockets and name resolution only through io",
        pattern: "std::net",
        allowed: &["io/", "bin/"],
    },
    Rule {
        name: "threads only through io",
        pattern: "std::thread",
        allowed: &["io/", "bin/"],
    },
    Rule {
        name: "cfg(madsim) only in io, server and the binaries",
        pattern: "madsim)",
        allowed: &["io/", "server/", "bin/"],
    },
    Rule {
        name: "TLS only in io (the production half of the seam)",
        pattern: "rustls",
        allowed: &["io/"],
    },
    Rule {
        name: "TLS only in io (the production half of the seam)",
        pattern: "tokio_rustls",
        allowed: &["io/"],
    },
    Rule {
        name: "TLS only in io (the production half of the seam)",
        pattern: "rcgen",
        allowed: &["io/"],
    },
    Rule {
        name: "token signing only in io",
        pattern: "jsonwebtoken",
        allowed: &["io/"],
    },
    Rule {
        name: "anyhow only in the binaries",
        pattern: "anyhow",
        allowed: &["bin/"],
    },
];

/// Every violation in the crate whose `src/` is `source_root`, plus over-long files among
/// all `.rs` files under `workspace_root`, one line each (path:line: rule).
fn violations(source_root: &Path, workspace_root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for path in rust_files(source_root) {
        let relative = path.strip_prefix(source_root).unwrap();
        let relative = relative.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in code_lines(&text) {
            for rule in RULES {
                let allowed = rule.allowed.iter().any(|allowed| {
                    if allowed.ends_with(".rs") {
                        relative == *allowed
                    } else {
                        relative.starts_with(allowed)
                    }
                });
                if !allowed && contains_word(&line, rule.pattern) {
                    found.push(format!("src/{relative}:{number}: {}", rule.name));
                }
            }
        }
    }
    for path in rust_files(workspace_root) {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        if lines > FILE_LINES_MAX {
            let relative = path.strip_prefix(workspace_root).unwrap().display();
            found.push(format!(
                "{relative}: {lines} lines, more than {FILE_LINES_MAX}: split it"
            ));
        }
    }
    found
}

/// Lines of code with their numbers, comments and string literals blanked out: a rule is
/// about what the code uses, not what its comments or messages mention. Test modules are
/// code too and checked the same.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut in_string = false;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut code = String::new();
        let mut characters = line.char_indices();
        while let Some((position, character)) = characters.next() {
            if in_string {
                match character {
                    '\\' => {
                        characters.next();
                    }
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match character {
                '/' if line[position..].starts_with("//") => break,
                '"' => {
                    in_string = true;
                    code.push_str("\"\"");
                }
                // A character literal of a double quote does not open a string.
                '\'' if line[position..].starts_with("'\"'") => {
                    code.push_str("' '");
                    characters.next();
                    characters.next();
                }
                _ => code.push(character),
            }
        }
        if !code.trim().is_empty() {
            lines.push((index + 1, code));
        }
    }
    lines
}

/// `pattern` in `line` not as part of a longer identifier ("monotonic" is not "tonic").
fn contains_word(line: &str, pattern: &str) -> bool {
    let is_identifier = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(pattern).any(|(start, _)| {
        let before = line[..start].chars().next_back();
        let after = line[start + pattern.len()..].chars().next();
        let starts_word = before.is_none_or(|c| !is_identifier(c));
        let ends_word =
            !pattern.ends_with(is_identifier) || after.is_none_or(|c| !is_identifier(c));
        starts_word && ends_word
    })
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_tree_keeps_its_layers() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = violations(&workspace.join("src"), workspace);
    assert!(found.is_empty(), "layer violations:\n{}", found.join("\n"));
}

#[test]
fn planted_violations_are_found() {
    let workspace = tempfile::tempdir().unwrap();
    let source = workspace.path().join("src");
    let write = |path: &str, text: &str| {
        let path = source.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    // Allowed uses, and names that only look like a rule's word.
    write("raft/node.rs", "use openraft::Raft;\n");
    write(
        "io/clock.rs",
        "use tokio::time::sleep;\n#[cfg(madsim)]\nfn f() {}\n",
    );
    write("io/runtime.rs", "use openraft::AsyncRuntime;\n");
    write(
        "bin/cairn.rs",
        "fn main() -> anyhow::Result<()> { Ok(()) }\n",
    );
    write(
        "lease/mod.rs",
        "fn monotonic() {}\n// uses openraft, tokio::time in a comment\n",
    );
    // Violations, one per rule.
    write("mvcc/mod.rs", "use openraft::Entry;\n");
    write("apply/mod.rs", "use tonic::Status;\n");
    write("raft/timers.rs", "let _ = tokio::time::sleep(d);\n");
    write("raft/wall.rs", "let _ = std::time::SystemTime::now();\n");
    write("storage/files.rs", "let _ = std::fs::read(p);\n");
    write("server/listen.rs", "use std::net::ToSocketAddrs;\n");
    write("watch/spawn.rs", "std::thread::spawn(|| ());\n");
    write("api/sim.rs", "#[cfg(not(madsim))]\nfn f() {}\n");
    write(
        "server/start.rs",
        "fn start() -> anyhow::Result<()> { Ok(()) }\n",
    );
    write("base/long.rs", &"let x = 1;\n".repeat(FILE_LINES_MAX + 1));
    write("server/tls.rs", "use rustls::ServerConfig;\n");

    let found = violations(&source, workspace.path());
    let expected = [
        "src/api/sim.rs:1: cfg(madsim) only in io, server and the binaries",
        "src/apply/mod.rs:1: tonic only in api, server and the binaries",
        "src/mvcc/mod.rs:1: openraft only in raft (and io's runtime for it)",
        "src/raft/timers.rs:1: timers and the clock only through io",
        "src/raft/wall.rs:1: the wall clock only through io",
        "src/server/listen.rs:1: sockets and name resolution only through io",
        "src/server/start.rs:1: anyhow only in the binaries",
        "src/storage/files.rs:1: files only through io",
        "src/watch/spawn.rs:1: threads only through io",
        "src/base/long.rs: 801 lines, more than 800: split it",
        "src/server/tls.rs:1: TLS only in io (the production half of the seam)",
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort();
    let mut expected_sorted: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected_sorted.sort();
    assert_eq!(
        found_sorted,
        expected_sorted,
        "found:\n{}",
        found.join("\n")
    );
}

#[test]
fn comments_and_strings_are_not_code() {
    let text = "let a = \"openraft\"; // openraft\nlet b = '\"'; use openraft::X;\nlet c = \"multi\nopenraft line\"; tonic";
    let lines: Vec<String> = code_lines(text).into_iter().map(|(_, code)| code).collect();
    assert_eq!(
        lines,
        [
            "let a = \"\"; ",
            "let b = ' '; use openraft::X;",
            "let c = \"\"",
            "; tonic"
        ]
    );
}
