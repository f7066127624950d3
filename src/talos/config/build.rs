//! Small helpers to build ordered YAML trees.

use serde_yaml_ng::{Mapping, Value};

/// An ordered mapping under construction.
pub(crate) struct M(Mapping);

impl M {
    pub fn new() -> Self {
        M(Mapping::new())
    }

    /// A typed document header (`apiVersion: v1alpha1`, `kind`).
    pub fn doc(kind: &str) -> Self {
        M::new().set("apiVersion", "v1alpha1").set("kind", kind)
    }

    pub fn set(mut self, key: &str, value: impl Into<V>) -> Self {
        self.0.insert(Value::from(key), value.into().0);
        self
    }

    pub fn set_if(self, cond: bool, key: &str, value: impl Into<V>) -> Self {
        if cond { self.set(key, value) } else { self }
    }

    pub fn set_opt<T: Into<V>>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    pub fn value(self) -> Value {
        Value::Mapping(self.0)
    }
}

/// A YAML value convertible from the usual Rust types.
pub(crate) struct V(pub Value);

impl From<&str> for V {
    fn from(s: &str) -> Self {
        V(Value::from(s))
    }
}
impl From<String> for V {
    fn from(s: String) -> Self {
        V(Value::from(s))
    }
}
impl From<&String> for V {
    fn from(s: &String) -> Self {
        V(Value::from(s.as_str()))
    }
}
impl From<bool> for V {
    fn from(b: bool) -> Self {
        V(Value::from(b))
    }
}
impl From<u16> for V {
    fn from(n: u16) -> Self {
        V(Value::from(u64::from(n)))
    }
}
impl From<M> for V {
    fn from(m: M) -> Self {
        V(m.value())
    }
}
impl From<Value> for V {
    fn from(v: Value) -> Self {
        V(v)
    }
}
impl<T: Into<V>> From<Vec<T>> for V {
    fn from(items: Vec<T>) -> Self {
        V(Value::Sequence(items.into_iter().map(|i| i.into().0).collect()))
    }
}

/// A sequence of strings.
pub(crate) fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Sequence(items.iter().map(|s| Value::from(s.as_ref())).collect())
}

/// An empty mapping (`{}`).
pub(crate) fn empty() -> Value {
    Value::Mapping(Mapping::new())
}
