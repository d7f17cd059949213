//! The hugepage size an operator asks for: `auto`, `2M` or `1G`.

use drivers::memory::HugepageSize;

/// A size that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hugepage size {0:?}: expected auto, 2M or 1G")]
pub struct UnknownHugepageSize(pub String);

/// Parses `auto`, `2M`/`2m`/`2MB`, `1G`/`1g`/`1GB`.
pub fn parse_hugepage_size(s: &str) -> Result<HugepageSize, UnknownHugepageSize> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(HugepageSize::Auto),
        "2m" | "2mb" => Ok(HugepageSize::Size2M),
        "1g" | "1gb" => Ok(HugepageSize::Size1G),
        _ => Err(UnknownHugepageSize(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_hugepage_size("auto"), Ok(HugepageSize::Auto));
        assert_eq!(parse_hugepage_size("2M"), Ok(HugepageSize::Size2M));
        assert_eq!(parse_hugepage_size("1g"), Ok(HugepageSize::Size1G));
        let e = parse_hugepage_size("4K").unwrap_err().to_string();
        assert_eq!(e, "unknown hugepage size \"4K\": expected auto, 2M or 1G");
    }
}
