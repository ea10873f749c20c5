//! Every Markdown link in README.md and docs/ points at a file that exists and, with a `#`, at a
//! heading that file has (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens,
//! `-1`, `-2`, … on repeats). Links to the web are not followed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files checked: the README and everything under docs/.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of a Markdown file outside fenced code blocks, with inline code removed.
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut kept = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                kept.push(c);
            }
        }
        out.push((i + 1, kept));
    }
    out
}

/// The targets of the inline links and images of a line: `[text](target)`, `![alt](target)`.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        // A target ends at its first space (a title may follow).
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.to_string());
        rest = &after[end..];
    }
    out
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    // A link in a heading keeps its text only.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](").zip(rest[open..].find(')')) {
            Some((mid, close)) if mid < close => {
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                rest = &rest[open + close + 1..];
            }
            _ => break,
        }
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(&heading.replace('`', ""));
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// Every broken link under `root`, as `file:line: target: why`.
fn broken_links(root: &Path) -> Vec<String> {
    let mut broken = Vec::new();
    for file in markdown_files(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            broken.push(format!("{}: unreadable", file.display()));
            continue;
        };
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let dir = file.parent().unwrap_or(root);
        for (line, prose) in prose(&text) {
            for target in link_targets(&prose) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{shown}:{line}: {target}: no such file"));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                let Ok(linked_text) = std::fs::read_to_string(&linked) else {
                    broken.push(format!("{shown}:{line}: {target}: not a text file"));
                    continue;
                };
                if !anchors(&linked_text).iter().any(|a| a == anchor) {
                    broken.push(format!("{shown}:{line}: {target}: no such heading"));
                }
            }
        }
    }
    broken
}

#[test]
fn every_link_in_the_readme_and_docs_points_at_something() {
    let root = root();
    assert!(
        markdown_files(&root).len() > 5,
        "the README and the docs are found"
    );
    let broken = broken_links(&root);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn a_missing_file_or_heading_is_reported() {
    let dir = std::env::temp_dir().join(format!("bb-docs-links-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(
        dir.join("README.md"),
        "# Top\n\nSee [the guide](docs/guide.md#the-gateway-breakerbox-serve), \
         [it again](docs/guide.md#the-gateway-breakerbox-serve-1), [gone](docs/gone.md), \
         [nowhere](docs/guide.md#nowhere), [here](#top), ![a picture](docs/missing.svg).\n\
         `[not a link](nowhere.md)`\n\n```text\n[nor this](nowhere.md)\n```\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docs/guide.md"),
        "# Guide\n\n## The gateway (`breakerbox serve`)\n\n## The gateway (breakerbox serve)\n\n\
         Back to [the top](../README.md#top).\n",
    )
    .unwrap();
    let broken = broken_links(&dir);
    assert_eq!(
        broken,
        [
            "README.md:3: docs/gone.md: no such file",
            "README.md:3: docs/guide.md#nowhere: no such heading",
            "README.md:3: docs/missing.svg: no such file",
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        slug("The gateway (breakerbox serve)"),
        "the-gateway-breakerbox-serve"
    );
    assert_eq!(
        slug("Failover: what the engine does"),
        "failover-what-the-engine-does"
    );
    assert_eq!(slug("Recording and replay"), "recording-and-replay");
    assert_eq!(slug("See [the docs](docs/README.md)"), "see-the-docs");
}
