//! The README's picture of the console (`docs/console.svg`) is what the console draws today:
//! regenerating it gives the committed file byte for byte, so a change to the console that
//! changes the picture fails here until `cargo run --example screenshot -- docs/console.svg`
//! is run and its result committed.

#[allow(dead_code)]
#[path = "../../examples/screenshot.rs"]
mod example;

#[test]
fn the_committed_picture_is_what_the_console_draws() {
    let drawn = example::picture().unwrap();
    let path = example::root().join(example::PICTURE);
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == drawn,
        "{} is stale: regenerate it with `cargo run --example screenshot -- {}` and commit it",
        path.display(),
        example::PICTURE,
    );
}

#[test]
fn the_picture_is_the_demo_console_in_an_incident() {
    let svg = example::picture().unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    for seen in [
        "DEMO",
        "breakerbox",
        "OPEN",
        "probe in",
        "overloaded",
        "req 0/50",
        "r88",
        "event log",
    ] {
        assert!(svg.contains(seen), "the picture shows {seen:?}");
    }
    // In colour: the open breaker red (reversed on the selected row, so a red background behind
    // it), the closed one green.
    assert!(svg.contains(r##"fill="#cd3131"/>"##), "a red background");
    assert!(
        svg.contains(r##"fill="#0dbc79">closed"##),
        "closed in green"
    );
    assert_eq!(
        svg.matches("<text ").count(),
        svg.matches("</text>").count()
    );
}
