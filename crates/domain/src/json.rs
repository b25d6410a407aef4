//! A JSON object kept together with its text, for the parameters that clicks and postbacks
//! store as they came.
//!
//! The hot paths make such an object in the request's handler and store it from the single
//! writer; the writer reads clicks back to decide their postbacks but rarely needs their
//! parameters. So the text is written once where the object is made (off the writer), and a
//! stored text is parsed only when its map is asked for.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

/// A JSON object and its compact text. Cheap to clone (shared).
#[derive(Clone)]
pub struct JsonObject(Arc<Parts>);

struct Parts {
    text: String,
    map: OnceLock<Map<String, Value>>,
}

impl JsonObject {
    /// The object of `map`, its text written now.
    pub fn new(map: Map<String, Value>) -> Self {
        let text = serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned());
        JsonObject(Arc::new(Parts { text, map: OnceLock::from(map) }))
    }

    /// The object a stored `text` holds, parsed when first asked for; text that is not a
    /// JSON object reads as an empty one.
    pub fn from_text(text: String) -> Self {
        JsonObject(Arc::new(Parts { text, map: OnceLock::new() }))
    }

    /// The compact JSON text, as stored.
    pub fn text(&self) -> &str {
        &self.0.text
    }

    pub fn map(&self) -> &Map<String, Value> {
        self.0.map.get_or_init(|| serde_json::from_str(&self.0.text).unwrap_or_default())
    }
}

/// Reads as its map.
impl std::ops::Deref for JsonObject {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        self.map()
    }
}

impl Default for JsonObject {
    fn default() -> Self {
        JsonObject::new(Map::new())
    }
}

impl From<Map<String, Value>> for JsonObject {
    fn from(map: Map<String, Value>) -> Self {
        JsonObject::new(map)
    }
}

impl PartialEq for JsonObject {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map()
    }
}

impl std::fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl serde::Serialize for JsonObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_and_read_back_alike() {
        let map = Map::from_iter([("pub_sub_1".to_owned(), Value::from("wall \"7\""))]);
        let made = JsonObject::new(map.clone());
        let stored = JsonObject::from_text(made.text().to_owned());
        assert_eq!(stored.map(), &map);
        assert_eq!(stored, made);
        assert_eq!(serde_json::to_value(&stored).unwrap(), Value::Object(map));
        assert_eq!(stored.get("pub_sub_1").and_then(Value::as_str), Some("wall \"7\""));
    }

    #[test]
    fn text_that_is_no_object_reads_as_an_empty_one() {
        for text in ["", "null", "[1]", "{\"a\":"] {
            assert!(JsonObject::from_text(text.to_owned()).map().is_empty(), "{text}");
        }
    }
}
