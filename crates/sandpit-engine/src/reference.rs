//! Image references.

/// Splits `name[:tag]` into name and tag (default `latest`), minding registry ports.
pub fn split_reference(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn splits_references() {
        assert_eq!(
            split_reference("debian:bookworm-slim"),
            ("debian", "bookworm-slim")
        );
        assert_eq!(
            split_reference("sandpit/python"),
            ("sandpit/python", "latest")
        );
        assert_eq!(split_reference("reg:5000/a/b"), ("reg:5000/a/b", "latest"));
        assert_eq!(split_reference("reg:5000/a/b:v1"), ("reg:5000/a/b", "v1"));
    }
}
