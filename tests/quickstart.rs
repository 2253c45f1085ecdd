//! README's first command: the quick-start node from `config/local/node.toml` comes up and
//! the kdig lines it prints work as printed.

mod common;

use common::{Node, kdig, repo};

#[test]
fn quick_start_node_answers_the_lines_it_prints() {
    // The same files, laid out as in the repository, in a scratch copy so the test leaves
    // no state behind in the checkout.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scratch.path().join("config/local")).unwrap();
    std::fs::create_dir_all(scratch.path().join("zones")).unwrap();
    for file in ["config/local/node.toml", "zones/example.test.zone"] {
        std::fs::copy(repo().join(file), scratch.path().join(file)).unwrap();
    }
    let node = Node::start(&scratch.path().join("config/local/node.toml"));
    let banner = node.stdout();
    let lines: Vec<&str> = banner
        .lines()
        .filter(|l| l.trim_start().starts_with("kdig ") || l.trim_start().starts_with("dig "))
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "dig, kdig over TLS and over HTTPS are suggested:\n{banner}"
    );
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.iter().any(|w| w.starts_with("+tls-ca=")) || words[0] == "dig",
            "{line}"
        );
        let tool = words[0];
        let out = if tool == "kdig" {
            kdig(&words[1..])
        } else {
            common::dig(&words[1..])
        };
        assert!(
            out.contains("status: NOERROR") && out.contains("hostmaster.example.test."),
            "`{line}` answered:\n{out}"
        );
        // kdig warns when it could not verify TLS; dig's only warning here is about recursion.
        assert!(
            tool == "dig" || !out.contains("WARNING"),
            "`{line}`:\n{out}"
        );
    }
    node.stop();
}
