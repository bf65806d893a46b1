//! The Python half of the toolkit, run by `cargo test` like the rest: unit tests of
//! stress/reporting (the reports' arithmetic: quantiles, fines, audit rules, chart ticks)
//! and of scripts/doc-numbers (the docs' citations of reports), in tests/python/.

use std::process::Command;

#[test]
fn python_unit_tests_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "-s", dir])
        .output()
        .expect("python3 runs (sudo apt-get install python3)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python unit tests failed:\n{log}");
    // Discovery found the suites (an empty discovery also exits 0 on older Pythons).
    assert!(
        log.contains("test_reporting") && log.contains("test_doc_numbers"),
        "{log}"
    );
}

#[test]
fn every_number_the_docs_cite_is_in_its_report() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/doc-numbers");
    let out = Command::new("python3")
        .arg(script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
