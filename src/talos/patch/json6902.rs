//! RFC 6902 JSON Patch on a YAML tree (`add`, `remove`, `replace`, `move`,
//! `copy`, `test`), with RFC 6901 pointers.

use serde_yaml_ng::Value;

use super::PatchError;

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| "a JSON pointer must start with /".to_string())?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let i: usize = token.parse().map_err(|_| format!("{token:?} is not a list index"))?;
    let max = if allow_end { len } else { len.saturating_sub(1) };
    if (allow_end && i <= len) || (!allow_end && i < len) {
        Ok(i)
    } else {
        Err(format!("index {i} out of range (max {max})"))
    }
}

fn get<'a>(root: &'a Value, tokens: &[String]) -> Result<&'a Value, String> {
    let mut cur = root;
    for t in tokens {
        cur = match cur {
            Value::Mapping(m) => m.get(t.as_str()).ok_or_else(|| format!("key {t:?} not found"))?,
            Value::Sequence(s) => &s[index(t, s.len(), false)?],
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok(cur)
}

fn parent<'a>(root: &'a mut Value, tokens: &[String]) -> Result<(&'a mut Value, String), String> {
    let (last, init) = tokens.split_last().ok_or_else(|| "the operation needs a non-root path".to_string())?;
    let mut cur = root;
    for t in init {
        cur = match cur {
            Value::Mapping(m) => m.get_mut(t.as_str()).ok_or_else(|| format!("key {t:?} not found"))?,
            Value::Sequence(s) => {
                let i = index(t, s.len(), false)?;
                &mut s[i]
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok((cur, last.clone()))
}

fn add(root: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    if tokens.is_empty() {
        *root = value;
        return Ok(());
    }
    let (p, last) = parent(root, tokens)?;
    match p {
        Value::Mapping(m) => {
            m.insert(Value::from(last), value);
            Ok(())
        }
        Value::Sequence(s) => {
            let i = index(&last, s.len(), true)?;
            s.insert(i, value);
            Ok(())
        }
        _ => Err("the parent is not a mapping or list".to_string()),
    }
}

fn remove(root: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let (p, last) = parent(root, tokens)?;
    match p {
        Value::Mapping(m) => m.remove(last.as_str()).ok_or_else(|| format!("key {last:?} not found")),
        Value::Sequence(s) => {
            let i = index(&last, s.len(), false)?;
            Ok(s.remove(i))
        }
        _ => Err("the parent is not a mapping or list".to_string()),
    }
}

fn field<'a>(op: &'a Value, name: &str) -> Result<&'a Value, String> {
    op.get(name).ok_or_else(|| format!("missing {name:?}"))
}

fn apply_one(root: &mut Value, op: &Value) -> Result<(), String> {
    let kind = field(op, "op")?.as_str().ok_or_else(|| "\"op\" must be a string".to_string())?;
    let path = field(op, "path")?.as_str().ok_or_else(|| "\"path\" must be a string".to_string())?;
    let tokens = parse_pointer(path)?;
    let from = || -> Result<Vec<String>, String> {
        parse_pointer(field(op, "from")?.as_str().ok_or_else(|| "\"from\" must be a string".to_string())?)
    };
    match kind {
        "add" => add(root, &tokens, field(op, "value")?.clone()),
        "remove" => remove(root, &tokens).map(|_| ()),
        "replace" => {
            get(root, &tokens)?;
            let value = field(op, "value")?.clone();
            if tokens.is_empty() {
                *root = value;
                return Ok(());
            }
            remove(root, &tokens)?;
            add(root, &tokens, value)
        }
        "move" => {
            let from = from()?;
            if tokens.starts_with(&from) && tokens.len() > from.len() {
                return Err("cannot move a value into itself".to_string());
            }
            let v = remove(root, &from)?;
            add(root, &tokens, v)
        }
        "copy" => {
            let v = get(root, &from()?)?.clone();
            add(root, &tokens, v)
        }
        "test" => {
            let expected = field(op, "value")?;
            if get(root, &tokens)? == expected { Ok(()) } else { Err("test failed: value differs".to_string()) }
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

/// Applies the operations of JSON patch `patch` to one document. The patch
/// is atomic: on error the document is left unchanged.
pub fn apply_json_patch(patch: usize, doc: &mut Value, ops: &[Value]) -> Result<(), PatchError> {
    let mut work = doc.clone();
    for (op_index, op) in ops.iter().enumerate() {
        apply_one(&mut work, op).map_err(|message| PatchError::JsonPatchOp {
            patch,
            op: op_index,
            path: op.get("path").and_then(Value::as_str).unwrap_or_default().to_string(),
            message,
        })?;
    }
    *doc = work;
    Ok(())
}
