//! What a file is, from its first bytes: the magic numbers of the image
//! formats a user may drop where a BMP (or an `.rle`) is expected, so that
//! a refusal can say what the file looks like instead (design §3).

/// A format recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// `BM`.
    Bmp,
    Png,
    Jpeg,
    Gif,
    /// Either byte order (`II*\0`, `MM\0*`).
    Tiff,
    /// No bytes at all.
    Empty,
    /// None of the above.
    Unknown,
}

impl Magic {
    /// The format `head` (a file's first bytes, any number) starts as.
    pub fn of(head: &[u8]) -> Magic {
        if head.starts_with(b"BM") {
            Magic::Bmp
        } else if head.starts_with(b"\x89PNG") {
            Magic::Png
        } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
            Magic::Jpeg
        } else if head.starts_with(b"GIF8") {
            Magic::Gif
        } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            Magic::Tiff
        } else if head.is_empty() {
            Magic::Empty
        } else {
            Magic::Unknown
        }
    }

    /// The format's name with its article ("a PNG"), for a format other
    /// than BMP that has a name.
    pub fn other_format(self) -> Option<&'static str> {
        match self {
            Magic::Png => Some("a PNG"),
            Magic::Jpeg => Some("a JPEG"),
            Magic::Gif => Some("a GIF"),
            Magic::Tiff => Some("a TIFF"),
            Magic::Bmp | Magic::Empty | Magic::Unknown => None,
        }
    }
}

/// The hint after "not a BMP file": what the file looks like instead.
impl std::fmt::Display for Magic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self, self.other_format()) {
            (_, Some(name)) => write!(f, " (it looks like {name})"),
            (Magic::Empty, None) => f.write_str(" (it is empty)"),
            _ => f.write_str(" (no \"BM\" signature)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Magic;

    #[test]
    fn each_format_is_known_by_its_first_bytes_and_named_in_the_hint() {
        let cases: [(&[u8], Magic, &str); 8] = [
            (b"BM\x36\0", Magic::Bmp, " (no \"BM\" signature)"),
            (b"\x89PNG\r\n\x1a\n", Magic::Png, " (it looks like a PNG)"),
            (
                &[0xff, 0xd8, 0xff, 0xe0],
                Magic::Jpeg,
                " (it looks like a JPEG)",
            ),
            (b"GIF89a", Magic::Gif, " (it looks like a GIF)"),
            (b"II*\0\x08\0", Magic::Tiff, " (it looks like a TIFF)"),
            (b"MM\0*\0\0", Magic::Tiff, " (it looks like a TIFF)"),
            (b"", Magic::Empty, " (it is empty)"),
            (b"P4\n1 1\n", Magic::Unknown, " (no \"BM\" signature)"),
        ];
        for (head, magic, hint) in cases {
            assert_eq!(Magic::of(head), magic, "{head:?}");
            assert_eq!(magic.to_string(), hint, "{head:?}");
        }
        // A prefix too short to decide is not taken for the format.
        assert_eq!(Magic::of(b"\x89PN"), Magic::Unknown);
        assert_eq!(Magic::of(b"II*"), Magic::Unknown);
    }
}
