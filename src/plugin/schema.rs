//! The schema model: what a provider, resource, data source or ephemeral
//! resource accepts and stores.
//!
//! Descriptions are Markdown and user-facing: the registry docs are generated
//! from them, so write them for the person reading the docs page.

use super::value::{Type, Value};

/// A versioned schema: the top-level block of a provider or resource type.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// Bumped whenever the stored state shape changes; each bump comes with
    /// an upgrader from the prior version.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A version-0 schema with the given description and attributes.
    pub fn new(description: impl Into<String>, attributes: Vec<Attribute>) -> Schema {
        Schema { version: 0, block: Block { description: description.into(), attributes, ..Block::default() } }
    }

    /// The same schema with another version.
    pub fn version(mut self, v: i64) -> Schema {
        self.version = v;
        self
    }

    /// The same schema with nested blocks added.
    pub fn blocks(mut self, blocks: Vec<NestedBlock>) -> Schema {
        self.block.blocks.extend(blocks);
        self
    }

    /// The object type of values of this schema.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    /// Internal consistency: every attribute is exactly one of required,
    /// optional, computed or optional+computed; defaults only on computed
    /// attributes; write-only never computed. Returns the offending paths.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.block.check("", &mut problems);
        problems
    }
}

/// A block: attributes plus nested blocks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// Markdown description.
    pub description: String,
    /// Deprecated as a whole.
    pub deprecated: bool,
    /// Attributes in declaration order.
    pub attributes: Vec<Attribute>,
    /// Nested blocks in declaration order.
    pub blocks: Vec<NestedBlock>,
}

impl Block {
    /// The object type of this block's values.
    pub fn value_type(&self) -> Type {
        Type::object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.value_type()))
                .chain(self.blocks.iter().map(|b| (b.type_name.clone(), b.value_type()))),
        )
    }

    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The nested block called `name`.
    pub fn block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.type_name == name)
    }

    fn check(&self, prefix: &str, problems: &mut Vec<String>) {
        for a in &self.attributes {
            let path = format!("{prefix}{}", a.name);
            let flags = (a.required, a.optional, a.computed);
            let ok = matches!(
                flags,
                (true, false, false) | (false, true, false) | (false, false, true) | (false, true, true)
            );
            if !ok {
                problems.push(format!("{path}: must be required, optional, computed or optional+computed"));
            }
            if a.default.is_some() && !a.computed {
                problems.push(format!("{path}: a default needs computed"));
            }
            if a.write_only && a.computed {
                problems.push(format!("{path}: write-only attributes cannot be computed"));
            }
            if a.description.trim().is_empty() {
                problems.push(format!("{path}: no description"));
            }
            if let AttributeType::Nested { attributes, .. } = &a.ty {
                let inner = Block { attributes: attributes.clone(), ..Block::default() };
                inner.check(&format!("{path}."), problems);
            }
        }
        for b in &self.blocks {
            b.block.check(&format!("{prefix}{}.", b.type_name), problems);
        }
    }
}

/// How nested attributes or blocks repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// Exactly one object (or null).
    Single,
    /// An ordered list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects by key.
    Map,
    /// Like Single, but never null (blocks only).
    Group,
}

impl Nesting {
    fn wrap(self, object: Type) -> Type {
        match self {
            Nesting::Single | Nesting::Group => object,
            Nesting::List => Type::list(object),
            Nesting::Set => Type::set(object),
            Nesting::Map => Type::map(object),
        }
    }
}

/// The type of an attribute: a plain type, or nested attributes (protocol 6).
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeType {
    /// A plain cty type.
    Type(Type),
    /// Nested attributes with their own flags and descriptions.
    Nested {
        /// How the nested object repeats.
        nesting: Nesting,
        /// The nested object's attributes.
        attributes: Vec<Attribute>,
    },
}

/// A replace condition for [`PlanModifier::RequiresReplaceIf`]: given the
/// prior state value and planned value of the attribute, whether the change
/// needs a replacement.
pub type ReplaceIf = fn(prior: &Value, planned: &Value) -> bool;

/// An attribute plan modifier, run in step 4 of the plan pipeline.
#[derive(Clone, Debug)]
pub enum PlanModifier {
    /// An unknown planned value takes the prior state value (stable computed
    /// ids). Does nothing on create or when the config value is unknown.
    UseStateForUnknown,
    /// A change of this attribute replaces the resource.
    RequiresReplace,
    /// A change replaces the resource when the function says so.
    RequiresReplaceIf {
        /// Shown in docs: when the change forces replacement.
        description: &'static str,
        /// The condition.
        check: ReplaceIf,
    },
}

impl PartialEq for PlanModifier {
    /// Conditional modifiers compare by description (function addresses are
    /// not meaningful).
    fn eq(&self, other: &PlanModifier) -> bool {
        match (self, other) {
            (PlanModifier::UseStateForUnknown, PlanModifier::UseStateForUnknown)
            | (PlanModifier::RequiresReplace, PlanModifier::RequiresReplace) => true,
            (
                PlanModifier::RequiresReplaceIf { description: a, .. },
                PlanModifier::RequiresReplaceIf { description: b, .. },
            ) => a == b,
            _ => false,
        }
    }
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Attribute name (snake_case).
    pub name: String,
    /// Its type.
    pub ty: AttributeType,
    /// Markdown description (user-facing; feeds the docs).
    pub description: String,
    /// Must be set in config.
    pub required: bool,
    /// May be set in config.
    pub optional: bool,
    /// Set by the provider (alone, or as a default for optional).
    pub computed: bool,
    /// Hidden in plan output.
    pub sensitive: bool,
    /// Never stored in plan or state (protocol 6.8, Terraform ≥ 1.11).
    pub write_only: bool,
    /// A deprecation message, if deprecated.
    pub deprecation: Option<String>,
    /// The value planned when config leaves it null (step 1 of the pipeline).
    pub default: Option<Value>,
    /// Plan modifiers in order.
    pub modifiers: Vec<PlanModifier>,
}

impl Attribute {
    /// An attribute of a plain type. Call one of [`required`](Self::required),
    /// [`optional`](Self::optional) or [`computed`](Self::computed) next.
    pub fn new(name: impl Into<String>, ty: Type) -> Attribute {
        Attribute {
            name: name.into(),
            ty: AttributeType::Type(ty),
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecation: None,
            default: None,
            modifiers: Vec::new(),
        }
    }

    /// A string attribute.
    pub fn string(name: impl Into<String>) -> Attribute {
        Attribute::new(name, Type::String)
    }

    /// A number attribute.
    pub fn number(name: impl Into<String>) -> Attribute {
        Attribute::new(name, Type::Number)
    }

    /// A bool attribute.
    pub fn bool(name: impl Into<String>) -> Attribute {
        Attribute::new(name, Type::Bool)
    }

    /// Nested attributes (protocol 6 nested type).
    pub fn nested(name: impl Into<String>, nesting: Nesting, attributes: Vec<Attribute>) -> Attribute {
        let mut a = Attribute::new(name, Type::Dynamic);
        a.ty = AttributeType::Nested { nesting, attributes };
        a
    }

    /// Must be set in config.
    pub fn required(mut self) -> Attribute {
        self.required = true;
        self
    }

    /// May be set in config.
    pub fn optional(mut self) -> Attribute {
        self.optional = true;
        self
    }

    /// Set by the provider.
    pub fn computed(mut self) -> Attribute {
        self.computed = true;
        self
    }

    /// Hidden in plan output and logs.
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }

    /// Never stored in plan or state.
    pub fn write_only(mut self) -> Attribute {
        self.write_only = true;
        self
    }

    /// Markdown description.
    pub fn description(mut self, d: impl Into<String>) -> Attribute {
        self.description = d.into();
        self
    }

    /// Deprecated, with a message saying what to use instead.
    pub fn deprecated(mut self, message: impl Into<String>) -> Attribute {
        self.deprecation = Some(message.into());
        self
    }

    /// Default planned when config is null (marks the attribute computed).
    pub fn default(mut self, v: impl Into<Value>) -> Attribute {
        self.default = Some(v.into());
        self.computed = true;
        self
    }

    /// Adds a plan modifier.
    pub fn modifier(mut self, m: PlanModifier) -> Attribute {
        self.modifiers.push(m);
        self
    }

    /// Shorthand for the [`PlanModifier::RequiresReplace`] modifier.
    pub fn requires_replace(self) -> Attribute {
        self.modifier(PlanModifier::RequiresReplace)
    }

    /// Shorthand for the [`PlanModifier::UseStateForUnknown`] modifier.
    pub fn use_state_for_unknown(self) -> Attribute {
        self.modifier(PlanModifier::UseStateForUnknown)
    }

    /// The cty type of this attribute's values.
    pub fn value_type(&self) -> Type {
        match &self.ty {
            AttributeType::Type(t) => t.clone(),
            AttributeType::Nested { nesting, attributes } => {
                let obj = Type::object(attributes.iter().map(|a| (a.name.clone(), a.value_type())));
                nesting.wrap(obj)
            }
        }
    }

    /// Whether a change of this attribute always forces replacement.
    pub fn forces_replacement(&self) -> bool {
        self.modifiers.iter().any(|m| matches!(m, PlanModifier::RequiresReplace))
    }
}

/// A nested block.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    /// The block type name as written in config.
    pub type_name: String,
    /// Its contents.
    pub block: Block,
    /// How it repeats.
    pub nesting: Nesting,
    /// Minimum count (0 = no minimum).
    pub min_items: i64,
    /// Maximum count (0 = no maximum).
    pub max_items: i64,
}

impl NestedBlock {
    /// A nested block with the given attributes.
    pub fn new(
        type_name: impl Into<String>,
        nesting: Nesting,
        description: impl Into<String>,
        attributes: Vec<Attribute>,
    ) -> NestedBlock {
        NestedBlock {
            type_name: type_name.into(),
            block: Block { description: description.into(), attributes, ..Block::default() },
            nesting,
            min_items: 0,
            max_items: 0,
        }
    }

    /// The cty type of this block's values.
    pub fn value_type(&self) -> Type {
        self.nesting.wrap(self.block.value_type())
    }
}

/// The identity schema of a managed resource (protocol 6.9).
#[derive(Clone, Debug, PartialEq)]
pub struct IdentitySchema {
    /// Identity version, separate from the schema version.
    pub version: i64,
    /// Identity attributes.
    pub attributes: Vec<IdentityAttribute>,
}

impl IdentitySchema {
    /// The object type of identity values.
    pub fn value_type(&self) -> Type {
        Type::object(self.attributes.iter().map(|a| (a.name.clone(), a.ty.clone())))
    }
}

/// One identity attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityAttribute {
    /// Name.
    pub name: String,
    /// Type (a primitive or a list of primitives).
    pub ty: Type,
    /// Must be given to import by identity.
    pub required_for_import: bool,
    /// May be given to import by identity.
    pub optional_for_import: bool,
    /// Markdown description.
    pub description: String,
}

impl IdentityAttribute {
    /// An identity attribute required for import.
    pub fn required(name: impl Into<String>, ty: Type, description: impl Into<String>) -> IdentityAttribute {
        IdentityAttribute {
            name: name.into(),
            ty,
            required_for_import: true,
            optional_for_import: false,
            description: description.into(),
        }
    }

    /// An identity attribute optional for import.
    pub fn optional(name: impl Into<String>, ty: Type, description: impl Into<String>) -> IdentityAttribute {
        IdentityAttribute {
            name: name.into(),
            ty,
            required_for_import: false,
            optional_for_import: true,
            description: description.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_type_of_nested_schema() {
        let s = Schema::new(
            "x",
            vec![
                Attribute::string("name").required().description("n"),
                Attribute::nested("disk", Nesting::List, vec![Attribute::number("size").required().description("s")])
                    .optional()
                    .description("d"),
            ],
        )
        .blocks(vec![NestedBlock::new(
            "timeouts",
            Nesting::Single,
            "t",
            vec![Attribute::string("create").optional().description("c")],
        )]);
        assert_eq!(
            s.value_type(),
            Type::object([
                ("name", Type::String),
                ("disk", Type::list(Type::object([("size", Type::Number)]))),
                ("timeouts", Type::object([("create", Type::String)])),
            ])
        );
        assert!(s.check().is_empty(), "{:?}", s.check());
    }

    #[test]
    fn check_finds_bad_flags() {
        let s = Schema::new(
            "x",
            vec![
                Attribute::string("a").description("a"),
                Attribute::string("b").write_only().computed().description("b"),
            ],
        );
        assert_eq!(s.check().len(), 2);
    }
}
