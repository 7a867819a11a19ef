//! How paths appear in log lines and messages: one line each, whatever
//! bytes a name holds. A leaf module: it knows nothing of the rest.

use std::path::Path;

/// A path made safe for a log line: control characters (newlines, ANSI
/// escapes) and invalid UTF-8 are escaped.
pub fn shown(path: &Path) -> String {
    let lossy = path.to_string_lossy();
    if lossy.chars().any(char::is_control) || matches!(lossy, std::borrow::Cow::Owned(_)) {
        let bytes = path.as_os_str().as_encoded_bytes();
        bytes.utf8_chunks().fold(String::new(), |mut s, chunk| {
            s.extend(chunk.valid().chars().flat_map(char::escape_debug));
            for b in chunk.invalid() {
                s.push_str(&format!("\\x{b:02x}"));
            }
            s
        })
    } else {
        lossy.into_owned()
    }
}
