//! The plan pipeline, in terraform-plugin-framework's order (users' habits
//! are built on it; see shared/design/style-anchors.md §B1):
//!
//! 1. schema defaults for attributes that are null in config;
//! 2. write-only attributes nulled;
//! 3. if anything changed, computed attributes that are null in config (and
//!    have no default) become unknown;
//! 4. attribute plan modifiers (`UseStateForUnknown`, `RequiresReplace(If)`);
//! 5. the resource's own `ModifyPlan` (run by the server, not here);
//! 6. `RequiresReplace` paths sorted and deduplicated; a destroy plan stays
//!    null.
//!
//! Nested attributes and blocks are walked element by element: list and
//! tuple elements by index, map elements by key. Inside a set there is no
//! stable element identity, so modifiers on attributes nested in a set act
//! on the whole set attribute (a replacement path names the set).

use super::diag::{AttributePath, PathStep};
use super::schema::{Attribute, AttributeType, Block, Nesting, PlanModifier, Schema};
use super::value::Value;

/// Steps 1–4 for a create or update. `prior` is Null on create.
pub fn plan_attributes(
    schema: &Schema,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> (Value, Vec<AttributePath>) {
    let mut planned = proposed.clone();

    // 1. defaults
    for inst in instances(&schema.block, &planned) {
        if let Some(default) = &inst.attr.default
            && get_path(config, &inst.path).is_null()
        {
            set_path(&mut planned, &inst.path, default.clone());
        }
    }

    // 2. write-only attributes are never planned
    null_write_only(&schema.block, &mut planned);

    // 3. computed attributes that are null in config become unknown when
    //    anything changes
    if !planned.semantically_equal(prior) {
        for inst in instances(&schema.block, &planned) {
            let a = inst.attr;
            if a.computed && a.default.is_none() && get_path(config, &inst.path).is_null() {
                set_path(&mut planned, &inst.path, Value::Unknown);
            }
        }
    }

    // 4. attribute plan modifiers
    let mut replace = Vec::new();
    if !prior.is_null() {
        for inst in instances(&schema.block, &planned) {
            for m in &inst.attr.modifiers {
                apply_modifier(m, &inst, prior, config, &mut planned, &mut replace);
            }
        }
    }
    (planned, replace)
}

/// Step 6: sort and deduplicate replacement paths.
pub fn finish_requires_replace(mut paths: Vec<AttributePath>) -> Vec<AttributePath> {
    paths.sort();
    paths.dedup();
    paths
}

/// Sets every write-only attribute in `v` (recursively) to null, as plan,
/// apply and read responses require.
pub fn null_write_only(block: &Block, v: &mut Value) {
    for inst in instances(block, v) {
        if inst.attr.write_only {
            set_path(v, &inst.path, Value::Null);
        }
    }
}

/// Required attributes that are null in `config` (not unknown), wherever
/// their parent object exists. Terraform checks this too; the provider says
/// it again with the path so no code below ever sees a missing value.
pub fn missing_required(block: &Block, config: &Value) -> Vec<AttributePath> {
    if !matches!(config, Value::Object(_)) {
        return Vec::new();
    }
    instances(block, config)
        .into_iter()
        .filter(|i| i.attr.required && get_path(config, &i.path).is_null())
        .map(|i| i.path)
        .collect()
}

/// Replaces every unknown inside `v` with null and returns the paths where
/// that happened (a provider must not return unknowns after apply or read).
pub fn take_unknowns(v: &mut Value) -> Vec<AttributePath> {
    fn walk(v: &mut Value, path: &mut Vec<PathStep>, out: &mut Vec<AttributePath>) {
        match v {
            Value::Unknown => {
                *v = Value::Null;
                out.push(AttributePath(path.clone()));
            }
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(PathStep::Index(i as i64));
                    walk(item, path, out);
                    path.pop();
                }
            }
            Value::Object(m) => {
                for (k, item) in m.iter_mut() {
                    path.push(PathStep::Attr(k.clone()));
                    walk(item, path, out);
                    path.pop();
                }
            }
            Value::Map(m) => {
                for (k, item) in m.iter_mut() {
                    path.push(PathStep::Key(k.clone()));
                    walk(item, path, out);
                    path.pop();
                }
            }
            Value::Dynamic(_, inner) => walk(inner, path, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn apply_modifier(
    m: &PlanModifier,
    inst: &Instance<'_>,
    prior: &Value,
    config: &Value,
    planned: &mut Value,
    replace: &mut Vec<AttributePath>,
) {
    let plan_v = get_path(planned, &inst.path).clone();
    let prior_v = get_path(prior, &inst.path);
    match m {
        PlanModifier::UseStateForUnknown => {
            if inst.in_set || !plan_v.is_unknown() || prior_v.is_null() || get_path(config, &inst.path).is_unknown() {
                return;
            }
            set_path(planned, &inst.path, prior_v.clone());
        }
        PlanModifier::RequiresReplace => {
            if !plan_v.semantically_equal(prior_v) {
                replace.push(inst.report_path.clone());
            }
        }
        PlanModifier::RequiresReplaceIf { check, .. } => {
            if !plan_v.semantically_equal(prior_v) && check(prior_v, &plan_v) {
                replace.push(inst.report_path.clone());
            }
        }
    }
}

/// One occurrence of an attribute in a value.
struct Instance<'s> {
    attr: &'s Attribute,
    /// Exact path (set elements by index, for our own use).
    path: AttributePath,
    /// Path Terraform understands (cut at the first set).
    report_path: AttributePath,
    in_set: bool,
}

/// Every attribute occurrence in `v`, parents before children.
fn instances<'s>(block: &'s Block, v: &Value) -> Vec<Instance<'s>> {
    let mut out = Vec::new();
    walk_block(&block.attributes, &block.blocks, v, &AttributePath::root(), None, &mut out);
    out
}

fn walk_block<'s>(
    attrs: &'s [Attribute],
    blocks: &'s [super::schema::NestedBlock],
    v: &Value,
    path: &AttributePath,
    set_cut: Option<&AttributePath>,
    out: &mut Vec<Instance<'s>>,
) {
    for a in attrs {
        let p = path.and_attr(&a.name);
        out.push(Instance {
            attr: a,
            report_path: set_cut.cloned().unwrap_or_else(|| p.clone()),
            in_set: set_cut.is_some(),
            path: p.clone(),
        });
        if let AttributeType::Nested { nesting, attributes } = &a.ty {
            walk_nested(*nesting, get_path(v, &p), &p, set_cut, out, &|child, cp, cut, out| {
                walk_block(attributes, &[], child, cp, cut, out)
            });
        }
    }
    for b in blocks {
        let p = path.and_attr(&b.type_name);
        walk_nested(b.nesting, get_path(v, &p), &p, set_cut, out, &|child, cp, cut, out| {
            walk_block(&b.block.attributes, &b.block.blocks, child, cp, cut, out)
        });
    }
}

type Recurse<'s, 'f> = dyn Fn(&Value, &AttributePath, Option<&AttributePath>, &mut Vec<Instance<'s>>) + 'f;

fn walk_nested<'s>(
    nesting: Nesting,
    v: &Value,
    p: &AttributePath,
    set_cut: Option<&AttributePath>,
    out: &mut Vec<Instance<'s>>,
    recurse: &Recurse<'s, '_>,
) {
    match (nesting, v) {
        (Nesting::Single | Nesting::Group, Value::Object(_)) => recurse(v, p, set_cut, out),
        (Nesting::List, Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                recurse(item, &p.and_index(i as i64), set_cut, out);
            }
        }
        (Nesting::Set, Value::Set(items)) => {
            let cut = set_cut.cloned().unwrap_or_else(|| p.clone());
            for (i, item) in items.iter().enumerate() {
                recurse(item, &p.and_index(i as i64), Some(&cut), out);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            for (k, item) in items {
                recurse(item, &p.and_key(k), set_cut, out);
            }
        }
        _ => {}
    }
}

/// The value at `path` (Null where the path leads nowhere, Unknown inside an
/// unknown value).
pub fn get_path<'v>(v: &'v Value, path: &AttributePath) -> &'v Value {
    static NULL: Value = Value::Null;
    static UNKNOWN: Value = Value::Unknown;
    let mut cur = v;
    for step in &path.0 {
        cur = match (cur, step) {
            (Value::Unknown, _) => return &UNKNOWN,
            (Value::Object(m), PathStep::Attr(a)) => m.get(a).unwrap_or(&NULL),
            (Value::Map(m), PathStep::Key(k)) => m.get(k).unwrap_or(&NULL),
            (Value::List(items) | Value::Set(items) | Value::Tuple(items), PathStep::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| items.get(i)).unwrap_or(&NULL)
            }
            (Value::Dynamic(_, inner), _) => return get_path(inner, &AttributePath(vec![step.clone()])),
            _ => return &NULL,
        };
    }
    cur
}

/// Sets the value at `path`; does nothing where the path leads nowhere
/// (e.g. into a null or unknown parent).
pub fn set_path(v: &mut Value, path: &AttributePath, new: Value) {
    let Some((last, parents)) = path.0.split_last() else {
        *v = new;
        return;
    };
    let mut cur = v;
    for step in parents {
        let next = match (cur, step) {
            (Value::Object(m), PathStep::Attr(a)) => m.get_mut(a),
            (Value::Map(m), PathStep::Key(k)) => m.get_mut(k),
            (Value::List(items) | Value::Set(items) | Value::Tuple(items), PathStep::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| items.get_mut(i))
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (cur, last) {
        (Value::Object(m), PathStep::Attr(a)) => {
            if let Some(slot) = m.get_mut(a) {
                *slot = new;
            } else {
                m.insert(a.clone(), new);
            }
        }
        (Value::Map(m), PathStep::Key(k)) => {
            if let Some(slot) = m.get_mut(k) {
                *slot = new;
            }
        }
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), PathStep::Index(i)) => {
            if let Some(slot) = usize::try_from(*i).ok().and_then(|i| items.get_mut(i)) {
                *slot = new;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::schema::{Attribute, NestedBlock};

    fn schema() -> Schema {
        Schema::new(
            "test",
            vec![
                Attribute::string("id").computed().use_state_for_unknown().description("id"),
                Attribute::string("name").required().requires_replace().description("name"),
                Attribute::number("size").optional().default(3).description("size"),
                Attribute::string("note").optional().description("note"),
                Attribute::string("etag").computed().description("changes on every update"),
                Attribute::string("password").optional().write_only().description("pw"),
                Attribute::nested(
                    "disks",
                    Nesting::List,
                    vec![
                        Attribute::number("size").required().description("s"),
                        Attribute::string("volume").computed().use_state_for_unknown().description("v"),
                        Attribute::string("storage").optional().requires_replace().description("st"),
                    ],
                )
                .optional()
                .description("disks"),
            ],
        )
        .blocks(vec![NestedBlock::new(
            "timeouts",
            Nesting::Single,
            "t",
            vec![Attribute::string("create").optional().description("c")],
        )])
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn state() -> Value {
        obj(&[
            ("id", "abc".into()),
            ("name", "a".into()),
            ("size", Value::int(3)),
            ("note", Value::Null),
            ("etag", "e1".into()),
            ("password", Value::Null),
            (
                "disks",
                Value::List(vec![obj(&[
                    ("size", Value::int(10)),
                    ("volume", "v0".into()),
                    ("storage", "local".into()),
                ])]),
            ),
            ("timeouts", Value::Null),
        ])
    }

    fn config_from(state: &Value) -> Value {
        // config: computed-only attributes null, write-only as given
        let mut c = state.clone();
        c.set_attr("id", Value::Null);
        c.set_attr("etag", Value::Null);
        c.set_attr("size", Value::Null);
        if let Some(Value::List(disks)) = c.attrs_mut().and_then(|m| m.get_mut("disks")) {
            for d in disks {
                d.set_attr("volume", Value::Null);
            }
        }
        c
    }

    #[test]
    fn create_fills_defaults_and_marks_computed_unknown() {
        let mut config = config_from(&state());
        config.set_attr("password", "secret".into());
        let proposed = config.clone();
        let (planned, replace) = plan_attributes(&schema(), &Value::Null, &proposed, &config);
        assert_eq!(planned.attr("size"), &Value::int(3), "default");
        assert_eq!(planned.attr("id"), &Value::Unknown, "computed unknown on create");
        assert_eq!(planned.attr("etag"), &Value::Unknown);
        assert_eq!(planned.attr("password"), &Value::Null, "write-only nulled");
        assert_eq!(get_path(&planned, &AttributePath::attr("disks").and_index(0).and_attr("volume")), &Value::Unknown);
        assert!(replace.is_empty(), "no replacement on create");
    }

    #[test]
    fn no_change_keeps_computed_values() {
        let prior = state();
        let config = config_from(&prior);
        // Terraform proposes prior values for computed attributes null in config
        let proposed = prior.clone();
        let (planned, replace) = plan_attributes(&schema(), &prior, &proposed, &config);
        assert_eq!(planned, prior, "empty diff");
        assert!(replace.is_empty());
    }

    #[test]
    fn update_marks_computed_unknown_but_keeps_stable_ids() {
        let prior = state();
        let mut config = config_from(&prior);
        config.set_attr("note", "hello".into());
        let mut proposed = prior.clone();
        proposed.set_attr("note", "hello".into());
        let (planned, replace) = plan_attributes(&schema(), &prior, &proposed, &config);
        assert_eq!(planned.attr("id"), &Value::from("abc"), "UseStateForUnknown");
        assert_eq!(planned.attr("etag"), &Value::Unknown, "other computed attributes unknown");
        assert_eq!(
            get_path(&planned, &AttributePath::attr("disks").and_index(0).and_attr("volume")),
            &Value::from("v0")
        );
        assert!(replace.is_empty());
    }

    #[test]
    fn requires_replace_top_level_and_nested() {
        let prior = state();
        let mut config = config_from(&prior);
        config.set_attr("name", "b".into());
        set_path(&mut config, &AttributePath::attr("disks").and_index(0).and_attr("storage"), "ceph".into());
        let mut proposed = prior.clone();
        proposed.set_attr("name", "b".into());
        set_path(&mut proposed, &AttributePath::attr("disks").and_index(0).and_attr("storage"), "ceph".into());
        let (_, replace) = plan_attributes(&schema(), &prior, &proposed, &config);
        let replace = finish_requires_replace(replace);
        assert_eq!(
            replace,
            vec![AttributePath::attr("disks").and_index(0).and_attr("storage"), AttributePath::attr("name")]
        );
    }

    #[test]
    fn removing_optional_default_attribute_returns_to_default() {
        let mut prior = state();
        prior.set_attr("size", Value::int(5));
        let config = config_from(&prior); // size null in config
        let proposed = prior.clone(); // Terraform proposes prior for optional+computed
        let (planned, _) = plan_attributes(&schema(), &prior, &proposed, &config);
        assert_eq!(planned.attr("size"), &Value::int(3));
    }

    #[test]
    fn unknown_config_is_not_replaced_by_state() {
        let prior = state();
        let mut config = config_from(&prior);
        config.set_attr("id", Value::Unknown); // not possible for computed-only, but proves the guard
        let mut proposed = prior.clone();
        proposed.set_attr("id", Value::Unknown);
        proposed.set_attr("note", "x".into());
        let (planned, _) = plan_attributes(&schema(), &prior, &proposed, &config);
        assert_eq!(planned.attr("id"), &Value::Unknown);
    }

    #[test]
    fn missing_required_names_paths() {
        let mut c = config_from(&state());
        c.set_attr("name", Value::Null);
        set_path(&mut c, &AttributePath::attr("disks").and_index(0).and_attr("size"), Value::Null);
        let missing = missing_required(&schema().block, &c);
        assert_eq!(
            missing,
            vec![AttributePath::attr("name"), AttributePath::attr("disks").and_index(0).and_attr("size")]
        );
        c.set_attr("name", Value::Unknown);
        assert_eq!(missing_required(&schema().block, &c).len(), 1, "unknown is not missing");
    }

    #[test]
    fn take_unknowns_reports_paths() {
        let mut v = obj(&[("a", Value::Unknown), ("b", Value::List(vec![Value::Unknown]))]);
        let paths = take_unknowns(&mut v);
        assert_eq!(paths, vec![AttributePath::attr("a"), AttributePath::attr("b").and_index(0)]);
        assert!(v.is_fully_known());
    }

    #[test]
    fn set_and_get_path_ignore_missing_parents() {
        let mut v = obj(&[("a", Value::Null)]);
        set_path(&mut v, &AttributePath::attr("a").and_attr("b"), Value::int(1));
        assert_eq!(v, obj(&[("a", Value::Null)]));
        assert_eq!(get_path(&Value::Unknown, &AttributePath::attr("x")), &Value::Unknown);
    }
}
