//! The shape of `src/`, checked: no source file over 500 lines, no function over 60 lines
//! (test code aside), and the modules' imports one-way, as `docs/ARCHITECTURE.md` draws
//! them ("Import graph"): that section is compared with the imports the code really has,
//! so the map cannot drift from the code.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 60;
/// Modules whose parts are graph nodes of their own: the server and client sides of `dns`
/// sit at different heights (the client is used by modules the server uses).
const SPLIT: &[&str] = &["dns"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, as (path relative to `src/`, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = root().join("src");
    let mut paths = Vec::new();
    walk(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn is_test_file(rel: &str) -> bool {
    rel.ends_with("/tests.rs") || rel.contains("/tests/")
}

/// The text with comments, strings and character literals blanked (newlines kept), so
/// braces and paths can be counted on what the compiler reads as code.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(next, Some(b'"' | b'#')) && !ident_before(b, i) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            // `r##"` becomes `"` and blanks, so lengths stay put.
            out.push(b'"');
            out.extend(std::iter::repeat_n(b' ', j - i));
            i = j + 1;
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            out.push(b'"');
            out.extend(std::iter::repeat_n(b' ', hashes));
            i += close.len();
        } else if c == b'"' {
            out.push(b'"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                let step = if b[i] == b'\\' { 2 } else { 1 };
                for k in 0..step {
                    if let Some(&x) = b.get(i + k) {
                        blank(&mut out, x);
                    }
                }
                i += step;
            }
            out.push(b'"');
            i += 1;
        } else if c == b'\'' {
            // A character literal ('x', '\n', '\u{..}', '{') or a lifetime ('a).
            let end = if next == Some(b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.push(b'\'');
                    out.extend(std::iter::repeat_n(b' ', end - i - 1));
                    out.push(b'\'');
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The code before a file's `#[cfg(test)] mod tests`: the rest is test code.
fn without_tests(code: &str) -> &str {
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let at = from + at;
        let after = code[at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod tests") {
            return &code[..at];
        }
        from = at + 1;
    }
    code
}

/// Index of the brace closing the one opened at `open`.
fn closing(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn line_of(code: &[u8], at: usize) -> usize {
    code[..at].iter().filter(|&&c| c == b'\n').count() + 1
}

/// Every function with a body: (name, first line, lines from `fn` to its closing brace).
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("fn ") {
        let at = from + at;
        from = at + 3;
        if ident_before(b, at) {
            continue;
        }
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` outside the signature's brackets; a `;` first
        // means a declaration without a body (a trait method).
        let (mut paren, mut angle) = (0i32, 0i32);
        let mut body = None;
        for (i, &c) in b.iter().enumerate().skip(at) {
            match c {
                b'(' | b'[' => paren += 1,
                b')' | b']' => paren -= 1,
                b'<' => angle += 1,
                b'>' if b.get(i.wrapping_sub(1)) != Some(&b'-') => angle -= 1,
                b';' if paren == 0 => break,
                b'{' if paren == 0 && angle <= 0 => {
                    body = Some(i);
                    break;
                }
                _ => {}
            }
        }
        if let Some(open) = body {
            let start = line_of(b, at);
            let end = line_of(b, closing(b, open));
            found.push((name, start, end - start + 1));
        }
    }
    found
}

#[test]
fn no_source_file_is_over_500_lines() {
    let _gate = crate::common::gate();
    let long: Vec<String> = sources()
        .iter()
        .filter(|(rel, _)| !is_test_file(rel))
        .filter(|(_, text)| text.lines().count() > MAX_FILE_LINES)
        .map(|(rel, text)| format!("src/{rel}: {} lines", text.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines (split them by concept):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_function_is_over_60_lines() {
    let _gate = crate::common::gate();
    let mut long = Vec::new();
    for (rel, text) in sources().iter().filter(|(rel, _)| !is_test_file(rel)) {
        let code = code_only(text);
        for (name, line, lines) in functions(without_tests(&code)) {
            if lines > MAX_FN_LINES {
                long.push(format!("src/{rel}:{line}: fn {name}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines outside tests:\n{}",
        long.join("\n")
    );
}

/// The paths a `crate::` occurrence names: `crate::a::{b, c::d}` names `a::b` and `a::c::d`.
fn use_paths(code: &str, mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let b = code.as_bytes();
    let mut path = prefix.to_vec();
    loop {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                while b
                    .get(i)
                    .is_some_and(|c| c.is_ascii_whitespace() || *c == b',')
                {
                    i += 1;
                }
                if b.get(i) == Some(&b'}') || i >= b.len() {
                    return i + 1;
                }
                i = use_paths(code, i, &path, out);
            }
        }
        let ident: String = code[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            out.push(path);
            return i;
        }
        i += ident.len();
        if ident != "self" {
            path.push(ident);
        }
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            // `as` renames and anything after the path end it.
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b';' | b'(' | b')'))
            {
                i += 1;
            }
            out.push(path);
            return i;
        }
    }
}

/// The graph node a file or a path belongs to: its top module, or `dns::server` etc.
fn node(segments: &[String]) -> Option<String> {
    let top = segments.first()?;
    match segments.get(1) {
        Some(sub) if SPLIT.contains(&top.as_str()) => Some(format!("{top}::{sub}")),
        _ => Some(top.clone()),
    }
}

/// Which nodes each node imports from (`crate::` paths in code, test code aside).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut modules: BTreeSet<String> = BTreeSet::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files: Vec<(Vec<String>, String)> = sources()
        .into_iter()
        .filter(|(rel, _)| !is_test_file(rel) && rel != "main.rs" && rel != "lib.rs")
        .map(|(rel, text)| {
            let segments: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .filter(|s| *s != "mod")
                .map(str::to_owned)
                .collect();
            (segments, text)
        })
        .collect();
    // A split module's own file is only the map of its parts: not a node.
    let is_map = |segments: &[String]| segments.len() == 1 && SPLIT.contains(&segments[0].as_str());
    for (segments, _) in files.iter().filter(|(s, _)| !is_map(s)) {
        modules.insert(node(segments).unwrap());
    }
    for (segments, text) in files.iter().filter(|(s, _)| !is_map(s)) {
        let from = node(segments).unwrap();
        let code = code_only(text);
        let code = without_tests(&code);
        let entry = graph.entry(from.clone()).or_default();
        let mut at = 0;
        while let Some(found) = code[at..].find("crate::") {
            let start = at + found + "crate::".len();
            let mut paths = Vec::new();
            at = use_paths(code, start, &[], &mut paths).max(start);
            for path in paths {
                // `crate::dns::Handler` names a re-export of `dns` itself, not a part.
                let to = node(&path)
                    .filter(|to| modules.contains(to))
                    .or_else(|| path.first().cloned().filter(|top| modules.contains(top)));
                if let Some(to) = to.filter(|to| *to != from) {
                    entry.insert(to);
                }
            }
        }
    }
    graph
}

/// The "Import graph" section of docs/ARCHITECTURE.md: `node -> a, b` lines in its block.
fn documented_graph() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let block = doc
        .split("## Import graph")
        .nth(1)
        .and_then(|section| section.split("```").nth(1))
        .unwrap_or_default();
    block
        .lines()
        .filter_map(|line| line.split_once("->"))
        .map(|(from, to)| {
            let to = to
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "(nothing)")
                .map(str::to_owned)
                .collect();
            (from.trim().to_owned(), to)
        })
        .collect()
}

#[test]
fn imports_go_one_way_and_architecture_md_draws_them() {
    let _gate = crate::common::gate();
    let graph = import_graph();
    // One-way: a depth-first walk finds no edge back to a node still on the path.
    fn visit<'a>(
        at: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(at) {
            return;
        }
        if let Some(i) = path.iter().position(|p| *p == at) {
            panic!("import cycle: {} -> {at}", path[i..].join(" -> "));
        }
        path.push(at);
        for next in graph.get(at).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(at);
    }
    let mut done = BTreeSet::new();
    for from in graph.keys() {
        visit(from, &graph, &mut Vec::new(), &mut done);
    }
    let drawn = documented_graph();
    let text = |g: &BTreeMap<String, BTreeSet<String>>| {
        g.iter()
            .map(|(from, to)| {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                let to = if to.is_empty() {
                    "(nothing)".to_owned()
                } else {
                    to.join(", ")
                };
                format!("{from} -> {to}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        drawn == graph,
        "docs/ARCHITECTURE.md's import graph differs from the code; the code's is:\n{}",
        text(&graph)
    );
}

#[test]
fn the_scanner_sees_code_not_strings_or_comments() {
    let _gate = crate::common::gate();
    let text = "fn a() {\n let s = \"}\"; // }\n let c = '{';\n let r = r#\"{\"#;\n}\nfn b<'x>(v: &'x u8) -> u8 { *v }\n";
    let code = code_only(text);
    let fns = functions(&code);
    assert_eq!(
        fns,
        vec![("a".to_owned(), 1, 5), ("b".to_owned(), 6, 1)],
        "{code}"
    );
    let mut paths = Vec::new();
    use_paths("{a::{self, B}, c::d as e, f};", 0, &[], &mut paths);
    let names: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(names, ["a", "a::B", "c::d", "f"]);
}

/// README.md and the docs rendered by a Markdown renderer (Python's `markdown`, as a
/// reader's viewer would): every line that starts with `|` outside code blocks comes out
/// as a table row, so no table is broken into raw pipes.
#[test]
fn markdown_tables_render_as_tables() {
    let _gate = crate::common::gate();
    for doc in ["README.md", "docs/ARCHITECTURE.md", "docs/PROTOCOL.md"] {
        let path = root().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut fenced = false;
        let mut rows = 0;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            } else if !fenced && line.trim_start().starts_with('|') {
                let separator = line.trim().chars().all(|c| "|-: ".contains(c));
                rows += usize::from(!separator);
            }
        }
        let output = std::process::Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import sys, markdown; print(markdown.markdown(open(sys.argv[1]).read(), \
                 extensions=['tables', 'fenced_code']))",
            ])
            .arg(&path)
            .output()
            .expect("python3 runs (tests/setup.sh installs python3-markdown)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let html = String::from_utf8(output.stdout).unwrap();
        let rendered = html.matches("<tr>").count();
        assert_eq!(
            rendered, rows,
            "{doc}: {rows} table lines but {rendered} rendered rows: a table is broken"
        );
        assert!(rows > 0 || doc != "README.md", "README.md has its tables");
    }
}
