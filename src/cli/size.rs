//! Sizes on the command line: a number of bytes with or without a unit (`65536`, `64k`,
//! `128MiB`, `2G`). Units are binary, as for buffers everywhere (tcpdump `-B`, dd): k and KiB
//! are 1024, M and MiB 1024², G and GiB 1024³.

use parse_size::Config;

/// A clap value parser for a size in bytes from `min` to `max`.
pub(crate) fn bytes(
    min: u32,
    max: u32,
) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let n = Config::new()
            .with_binary()
            .parse_size(s.trim())
            .map_err(|e| format!("{e}: expected a size such as 65536, 64k or 128MiB"))?;
        u32::try_from(n)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("{n} bytes: must be from {min} to {max} bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_binary_units() {
        let p = bytes(96, 1 << 31);
        assert_eq!(p("65536"), Ok(65_536));
        assert_eq!(p("64k"), Ok(65_536));
        assert_eq!(p("64KiB"), Ok(65_536));
        assert_eq!(p("128MiB"), Ok(128 << 20));
        assert_eq!(p("32M"), Ok(32 << 20));
        assert_eq!(p("2GiB"), Ok(1 << 31));
        assert!(p("3GiB").unwrap_err().contains("must be from 96 to"));
        assert!(p("50").unwrap_err().contains("50 bytes"));
        assert!(p("lots").unwrap_err().contains("expected a size"));
    }
}
