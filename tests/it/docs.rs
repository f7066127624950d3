//! The committed registry docs are exactly what the schemas generate, and
//! every attribute has a description. Regenerate with
//! `cargo run -- docs`.

use std::path::Path;

use proxtalos::provider::ProxtalosProvider;

#[test]
fn committed_docs_match_the_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pages = proxtalos::plugin::docs::render(&ProxtalosProvider, &root.join("examples"))
        .unwrap_or_else(|problems| panic!("schema problems:\n{}", problems.join("\n")));
    let mut stale = Vec::new();
    for (rel, text) in &pages {
        let path = root.join("docs").join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(stale.is_empty(), "docs out of date, run `cargo run -- docs`: {stale:?}");
    for (rel, text) in &pages {
        assert!(!text.contains("Not applied by the tests"), "docs/{} shows the examples' test note", rel.display());
    }
}

use crate::tftest;

#[test]
fn resource_page_shows_flags_defaults_and_nested_schemas() {
    let pages = proxtalos::plugin::docs::render(&tftest::TestProvider, Path::new("/nonexistent")).unwrap();
    let page = &pages[Path::new("resources/thing.md")];
    assert!(page.starts_with("---\npage_title: \"tftest_thing Resource - tftest\""), "{page}");
    assert!(
        page.contains("- `name` (String) Name; changing it replaces the object. Changing this forces a new resource."),
        "{page}"
    );
    assert!(page.contains("- `size` (Number) Size, default 3. Defaults to `3`."), "{page}");
    assert!(page.contains("- `secret` (String, [Write-only]"), "{page}");
    assert!(
        page.contains("- `ports` (Attributes List) Ports. (see [below for nested schema](#nestedatt--ports))"),
        "{page}"
    );
    assert!(page.contains("### Nested Schema for `ports`"), "{page}");
    assert!(page.contains("### Read-Only\n\n- `id` (String)"), "{page}");
    assert!(pages.contains_key(Path::new("data-sources/info.md")));
    assert!(pages[Path::new("ephemeral-resources/token.md")].contains("(String, Sensitive)"));
}
