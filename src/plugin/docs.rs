//! Registry documentation generated from the provider's own schemas, in the
//! layout both registries render (shared/design/release.md §6):
//! `docs/index.md`, `docs/resources/<type>.md`, `docs/data-sources/`,
//! `docs/ephemeral-resources/`, `docs/actions/`, `docs/list-resources/`,
//! `docs/functions/`;
//! `docs/guides/` is
//! hand-written and left
//! alone. Examples are included from `examples/provider/provider.tf`,
//! `examples/resources/<name>/resource.tf` + `import.sh`,
//! `examples/data-sources/<name>/data-source.tf` and
//! `examples/ephemeral-resources/<name>/ephemeral-resource.tf`,
//! `examples/actions/<name>/action.tf`,
//! `examples/list-resources/<name>/list-resource.tfquery.hcl` and
//! `examples/functions/<name>/function.tf`.
//!
//! Pages follow tfplugindocs' shape (frontmatter, title, description,
//! example, `## Schema` with Required / Optional / Read-Only and nested
//! sections, import), with what our schema model knows beyond the protocol:
//! defaults, write-only, and which changes force replacement.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::resource::Provider;
use super::schema::{Attribute, AttributeType, Block, NestedBlock, Nesting, Schema};
use super::value::{Type, Value};

/// Kinds of documented objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Managed resource.
    Resource,
    /// Data source.
    DataSource,
    /// Ephemeral resource.
    Ephemeral,
    /// Action (its `config` block).
    Action,
    /// List resource (its `config` block, for `terraform query`).
    ListResource,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Resource => "resources",
            Kind::DataSource => "data-sources",
            Kind::Ephemeral => "ephemeral-resources",
            Kind::Action => "actions",
            Kind::ListResource => "list-resources",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Kind::Resource => "Resource",
            Kind::DataSource => "Data Source",
            Kind::Ephemeral => "Ephemeral Resource",
            Kind::Action => "Action",
            Kind::ListResource => "List Resource",
        }
    }
    fn example_file(self) -> &'static str {
        match self {
            Kind::Resource => "resource.tf",
            Kind::DataSource => "data-source.tf",
            Kind::Ephemeral => "ephemeral-resource.tf",
            Kind::Action => "action.tf",
            Kind::ListResource => "list-resource.tfquery.hcl",
        }
    }
}

/// Renders every page. Keys are paths relative to the docs directory.
/// Errors list every schema problem (e.g. a missing description).
pub fn render<P: Provider>(provider: &P, examples: &Path) -> Result<BTreeMap<PathBuf, String>, Vec<String>> {
    let name = provider.type_name();
    let mut pages = BTreeMap::new();
    let mut problems = Vec::new();
    let mut objects: Vec<(Kind, &'static str, Schema)> = Vec::new();
    objects.extend(provider.resources().iter().map(|r| (Kind::Resource, r.type_name(), r.schema())));
    objects.extend(provider.data_sources().iter().map(|r| (Kind::DataSource, r.type_name(), r.schema())));
    objects.extend(provider.ephemeral_resources().iter().map(|r| (Kind::Ephemeral, r.type_name(), r.schema())));
    objects.extend(provider.actions().iter().map(|a| (Kind::Action, a.type_name(), a.schema())));
    objects.extend(provider.list_resources().iter().map(|l| (Kind::ListResource, l.type_name(), l.schema())));

    let pschema = provider.schema();
    problems.extend(pschema.check().into_iter().map(|p| format!("provider: {p}")));
    pages.insert(PathBuf::from("index.md"), index_page(name, &pschema, examples));
    for (kind, type_name, schema) in objects {
        problems.extend(schema.check().into_iter().map(|p| format!("{type_name}: {p}")));
        if schema.block.description.trim().is_empty() {
            problems.push(format!("{type_name}: no description"));
        }
        let short = type_name.strip_prefix(&format!("{name}_")).unwrap_or(type_name);
        let page = object_page(name, kind, type_name, &schema, examples);
        pages.insert(PathBuf::from(kind.dir()).join(format!("{short}.md")), page);
    }
    for f in provider.functions() {
        if f.summary().trim().is_empty() || f.description().trim().is_empty() {
            problems.push(format!("function {}: no summary or description", f.name()));
        }
        pages.insert(
            PathBuf::from("functions").join(format!("{}.md", f.name())),
            function_page(name, f.as_ref(), examples),
        );
    }
    if problems.is_empty() { Ok(pages) } else { Err(problems) }
}

/// A provider function's page, in tfplugindocs' shape: signature, then one
/// numbered line per argument.
fn function_page(provider: &str, f: &dyn super::Function, examples: &Path) -> String {
    let mut out = frontmatter(&format!("{} function - {provider}", f.name()), f.summary());
    let _ = writeln!(
        out,
        "# function: {}

{}
",
        f.name(),
        f.description().trim()
    );
    if let Some(ex) = read_example(&examples.join("functions").join(f.name()).join("function.tf")) {
        let _ = writeln!(
            out,
            "## Example Usage

```terraform
{ex}
```
"
        );
    }
    let params = f.params();
    let sig: Vec<String> = params.iter().map(|p| format!("{} {}", p.name, type_name(&p.ty).to_lowercase())).collect();
    let _ = writeln!(
        out,
        "## Signature

<!-- signature generated by proxtalos docs -->
```text
{}({}) {}
```
",
        f.name(),
        sig.join(", "),
        type_name(&f.returns()).to_lowercase()
    );
    out.push_str(
        "## Arguments

",
    );
    for (i, p) in params.iter().enumerate() {
        let _ = writeln!(out, "{}. `{}` ({}) {}", i + 1, p.name, type_name(&p.ty), p.description);
    }
    out
}

fn first_paragraph(s: &str) -> &str {
    s.split("\n\n").next().unwrap_or("").trim()
}

fn frontmatter(title: &str, description: &str) -> String {
    let mut out = format!("---\npage_title: \"{title}\"\n");
    out.push_str("subcategory: \"\"\n");
    out.push_str("description: |-\n");
    for line in first_paragraph(description).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("---\n\n");
    out
}

fn read_example(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| without_test_note(&s).trim_end().to_string())
}

/// An example's opening `# Not applied by the tests: ...` comment (up to
/// the first blank line) is for maintainers (tests/it/examples_apply.rs), not
/// for the docs page.
fn without_test_note(text: &str) -> &str {
    if !text.starts_with("# Not applied by the tests:") {
        return text;
    }
    text.split_once("\n\n").map_or(text, |(_, rest)| rest)
}

fn index_page(name: &str, schema: &Schema, examples: &Path) -> String {
    let mut out = format!("---\npage_title: \"{name} Provider\"\ndescription: |-\n");
    for line in first_paragraph(&schema.block.description).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("---\n\n");
    let _ = writeln!(out, "# {name} Provider\n\n{}\n", schema.block.description.trim());
    if let Some(ex) = read_example(&examples.join("provider/provider.tf")) {
        let _ = writeln!(out, "## Example Usage\n\n```terraform\n{ex}\n```\n");
    }
    out.push_str(&schema_section(&schema.block, false));
    out
}

fn object_page(provider: &str, kind: Kind, type_name: &str, schema: &Schema, examples: &Path) -> String {
    let mut out = frontmatter(&format!("{type_name} {} - {provider}", kind.title()), &schema.block.description);
    let _ = writeln!(out, "# {type_name} ({})\n\n{}\n", kind.title(), schema.block.description.trim());
    let dir = examples.join(kind.dir()).join(type_name);
    if let Some(ex) = read_example(&dir.join(kind.example_file())) {
        let _ = writeln!(out, "## Example Usage\n\n```terraform\n{ex}\n```\n");
    }
    out.push_str(&schema_section(&schema.block, kind == Kind::Resource));
    if kind == Kind::Resource
        && let Some(imp) = read_example(&dir.join("import.sh"))
    {
        let _ = writeln!(out, "\n## Import\n\nImport is supported using the following syntax:\n\n```shell\n{imp}\n```");
    }
    out
}

fn schema_section(block: &Block, resource: bool) -> String {
    let mut out = String::from("<!-- schema generated by `terraform-provider-proxtalos docs` -->\n## Schema\n");
    let mut nested = Vec::new();
    render_block(&mut out, block, "", resource, &mut nested);
    while !nested.is_empty() {
        let items = std::mem::take(&mut nested);
        for (anchor, title, block) in items {
            let _ = write!(out, "\n<a id=\"{anchor}\"></a>\n### Nested Schema for `{title}`\n");
            render_block(&mut out, &block, &title, resource, &mut nested);
        }
    }
    out
}

fn render_block(
    out: &mut String,
    block: &Block,
    prefix: &str,
    resource: bool,
    nested: &mut Vec<(String, String, Block)>,
) {
    let required: Vec<_> = block.attributes.iter().filter(|a| a.required).collect();
    let optional: Vec<_> = block.attributes.iter().filter(|a| a.optional).collect();
    let read_only: Vec<_> = block.attributes.iter().filter(|a| a.computed && !a.optional).collect();
    for (title, attrs) in [("Required", required), ("Optional", optional), ("Read-Only", read_only)] {
        let blocks: Vec<&NestedBlock> = if title == "Optional" { block.blocks.iter().collect() } else { Vec::new() };
        if attrs.is_empty() && blocks.is_empty() {
            continue;
        }
        let _ = write!(out, "\n### {title}\n\n");
        for a in attrs {
            out.push_str(&attribute_line(a, prefix, resource, nested));
        }
        for b in blocks {
            let path = join(prefix, &b.type_name);
            let anchor = format!("nestedblock--{}", path.replace('.', "--"));
            let mut limits = String::new();
            if b.max_items == 1 {
                limits.push_str(", Max: 1");
            } else if b.max_items > 0 {
                let _ = write!(limits, ", Max: {}", b.max_items);
            }
            let kind = match nesting_word(b.nesting) {
                "" => "Block".to_string(),
                word => format!("Block {word}"),
            };
            let _ = writeln!(
                out,
                "- `{}` ({kind}{limits}) {} (see [below for nested schema](#{anchor}))",
                b.type_name,
                b.block.description.trim()
            );
            nested.push((anchor, path, b.block.clone()));
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

fn nesting_word(n: Nesting) -> &'static str {
    match n {
        Nesting::Single | Nesting::Group => "",
        Nesting::List => "List",
        Nesting::Set => "Set",
        Nesting::Map => "Map",
    }
}

fn attribute_line(a: &Attribute, prefix: &str, resource: bool, nested: &mut Vec<(String, String, Block)>) -> String {
    let mut tags = vec![match &a.ty {
        AttributeType::Type(t) => type_name(t),
        AttributeType::Nested { nesting, .. } => match nesting {
            Nesting::Single | Nesting::Group => "Attributes".to_string(),
            other => format!("Attributes {}", nesting_word(*other)),
        },
    }];
    if a.sensitive {
        tags.push("Sensitive".into());
    }
    if a.write_only {
        tags.push(
            "[Write-only](https://developer.hashicorp.com/terraform/language/resources/ephemeral#write-only-arguments)"
                .into(),
        );
    }
    if a.deprecation.is_some() {
        tags.push("Deprecated".into());
    }
    let mut text = a.description.trim().to_string();
    if let Some(d) = &a.default {
        let _ = write!(text, " Defaults to `{}`.", literal(d));
    }
    let says_so = ["forces a new resource", "forces a new vm", "replaces the resource", "forces replacement"]
        .iter()
        .any(|p| a.description.to_lowercase().contains(p));
    if resource && a.forces_replacement() && !says_so {
        text.push_str(" Changing this forces a new resource.");
    }
    if let Some(msg) = &a.deprecation {
        let _ = write!(text, " **Deprecated:** {msg}");
    }
    if let AttributeType::Nested { attributes, .. } = &a.ty {
        let path = join(prefix, &a.name);
        let anchor = format!("nestedatt--{}", path.replace('.', "--"));
        let _ = write!(text, " (see [below for nested schema](#{anchor}))");
        nested.push((anchor, path, Block { attributes: attributes.clone(), ..Block::default() }));
    }
    format!("- `{}` ({}) {}\n", a.name, tags.join(", "), text.trim())
}

fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "Boolean".into(),
        Type::Number => "Number".into(),
        Type::String => "String".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// `docs [--check] [--docs DIR] [--examples DIR]`: writes the pages, or with
/// `--check` fails when the committed pages differ. Returns the exit code.
pub fn cli<P: Provider>(provider: &P, args: &[String]) -> std::process::ExitCode {
    let mut check = false;
    let mut docs = PathBuf::from("docs");
    let mut examples = PathBuf::from("examples");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = true,
            "--docs" => docs = it.next().map(PathBuf::from).unwrap_or(docs),
            "--examples" => examples = it.next().map(PathBuf::from).unwrap_or(examples),
            other => {
                eprintln!("docs: unknown argument {other:?}; usage: docs [--check] [--docs DIR] [--examples DIR]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let pages = match render(provider, &examples) {
        Ok(p) => p,
        Err(problems) => {
            for p in problems {
                eprintln!("docs: {p}");
            }
            return std::process::ExitCode::from(1);
        }
    };
    let mut stale = Vec::new();
    for (rel, text) in &pages {
        let path = docs.join(rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == *text {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else if let Err(e) =
            path.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|_| std::fs::write(&path, text))
        {
            eprintln!("docs: cannot write {}: {e}", path.display());
            return std::process::ExitCode::from(1);
        }
    }
    // Generated pages whose object no longer exists.
    for kind in [Kind::Resource, Kind::DataSource, Kind::Ephemeral] {
        if let Ok(entries) = std::fs::read_dir(docs.join(kind.dir())) {
            for e in entries.flatten() {
                let rel = PathBuf::from(kind.dir()).join(e.file_name());
                if !pages.contains_key(&rel) {
                    if check {
                        stale.push(format!("{} (no such object)", e.path().display()));
                    } else {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }
    if !stale.is_empty() {
        eprintln!("docs: out of date (run `cargo run -- docs`):");
        for s in stale {
            eprintln!("  {s}");
        }
        return std::process::ExitCode::from(1);
    }
    std::process::ExitCode::SUCCESS
}
