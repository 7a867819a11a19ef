//! The structured fields the daemon's events carry for the systemd journal
//! (docs/operations.md, "Journal fields"): one fixed 128-bit `MESSAGE_ID`
//! per kind of event, and the file and host it concerns. This module only
//! names them; `logging` decides where they go (native journal entries
//! under systemd, the JSON log's `fields`, never the text lines).
//!
//! An event is tagged at its log site with tracing fields of these exact
//! names, which the journal layer upper-cases (`message_id` becomes
//! `MESSAGE_ID`):
//!
//! ```ignore
//! let (source, source_raw) = journal::path(rel);
//! info!(
//!     message_id = journal::ARCHIVED,
//!     rlewatch_source = %source,
//!     rlewatch_source_raw = source_raw.as_deref(),
//!     rlewatch_host = %host,
//!     "archived …"
//! );
//! ```
//!
//! The ids never change once released: operators filter on them
//! (`journalctl -u rlewatch MESSAGE_ID=…`), and they are kept in alerting
//! rules and saved searches.

use std::path::Path;

/// A file archived (its archive and ledger line durable, the original
/// filed), or found already archived (after a restart) and filed.
pub const ARCHIVED: &str = "f31fd86b424d4093947edea39e34f61e";
/// A file moved to failed/ with its reason.
pub const QUARANTINED: &str = "35c6e31167db49dbbc2bfd2dcd53146c";
/// A file left in place after an error, to be tried again after a backoff.
pub const RETRYING: &str = "bcaf54f1eddb48b39a808229f4637964";
/// The claims of a host whose heartbeat stopped, taken over by this one.
pub const TAKEN_OVER: &str = "359cadbada83422fab911b79058c657a";
/// A configuration reloaded (SIGHUP) and applied.
pub const RELOADED: &str = "de8e60addef9429989e2bd8b5c18df40";
/// A reload refused: the daemon keeps its running configuration.
pub const RELOAD_REFUSED: &str = "0d830c9b3c124c86a16e04e3067b92a6";
/// An original (done/) or a quarantined file (failed/) removed by
/// retention.
pub const REMOVED: &str = "d362c8de83bc4614831adfde1c8d18b9";
/// A name in the inbox that the patterns ignore, said once per name.
pub const IGNORED: &str = "2274e75081c94cf5b7b18aef6b02cc41";

/// Every id with the name the docs give its kind of event.
pub const ALL: [(&str, &str); 8] = [
    ("archived", ARCHIVED),
    ("quarantined", QUARANTINED),
    ("retrying", RETRYING),
    ("taken_over", TAKEN_OVER),
    ("reloaded", RELOADED),
    ("reload_refused", RELOAD_REFUSED),
    ("removed", REMOVED),
    ("ignored", IGNORED),
];

/// True for the fields that exist for the journal (and the JSON log):
/// `message_id` and `rlewatch_*`. The text log lines leave them out, as
/// their message already says the same in words.
pub fn is_journal_field(name: &str) -> bool {
    name == "message_id" || name.starts_with("rlewatch_")
}

/// A path as `RLEWATCH_SOURCE`/`RLEWATCH_ARCHIVE` carry it, exactly as the
/// ledger writes `source`/`archive`: the text of a UTF-8 path (newlines
/// and other control characters kept as they are: journal fields are
/// binary-safe), and for a path that is not UTF-8 the text with U+FFFD
/// plus its bytes in hex for the `…_RAW` field.
pub fn path(p: &Path) -> (String, Option<String>) {
    crate::ledger::path_fields(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_are_the_published_ones_and_valid_128_bit_ids() {
        // The values operators were given (docs/operations.md): a change
        // here breaks their filters and alerting rules.
        let published = [
            ("archived", "f31fd86b424d4093947edea39e34f61e"),
            ("quarantined", "35c6e31167db49dbbc2bfd2dcd53146c"),
            ("retrying", "bcaf54f1eddb48b39a808229f4637964"),
            ("taken_over", "359cadbada83422fab911b79058c657a"),
            ("reloaded", "de8e60addef9429989e2bd8b5c18df40"),
            ("reload_refused", "0d830c9b3c124c86a16e04e3067b92a6"),
            ("removed", "d362c8de83bc4614831adfde1c8d18b9"),
            ("ignored", "2274e75081c94cf5b7b18aef6b02cc41"),
        ];
        assert_eq!(ALL, published);
        let mut seen = std::collections::HashSet::new();
        for (name, id) in ALL {
            // sd-id128 as journalctl matches it: 32 lowercase hex digits.
            assert_eq!(id.len(), 32, "{name}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{name}: {id}"
            );
            assert!(seen.insert(id), "{name}: {id} used twice");
        }
    }

    #[test]
    fn only_the_id_and_rlewatch_fields_are_journal_fields() {
        for name in [
            "message_id",
            "rlewatch_source",
            "rlewatch_source_raw",
            "rlewatch_archive",
            "rlewatch_host",
        ] {
            assert!(is_journal_field(name), "{name}");
        }
        for name in ["message", "path", "log.target", "id", "rlewatch"] {
            assert!(!is_journal_field(name), "{name}");
        }
    }

    #[test]
    fn a_path_keeps_its_exact_bytes() {
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(path(Path::new("sub/a.bmp")), ("sub/a.bmp".into(), None));
        assert_eq!(
            path(Path::new("two\nlines.bmp")),
            ("two\nlines.bmp".into(), None)
        );
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.bmp");
        assert_eq!(
            path(Path::new(odd)),
            ("caf\u{fffd}.bmp".into(), Some("636166e92e626d70".into()))
        );
    }
}
