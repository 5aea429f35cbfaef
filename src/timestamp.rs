//! Time representation: milliseconds since the Unix epoch in storage, ISO 8601 UTC with
//! milliseconds (`2024-01-15T10:30:00.000Z`) in JSON.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serde helpers so response structs can keep `i64` and still print ISO strings.
pub mod serde_iso {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::iso_ms(*ms))
    }

    pub mod option {
        use serde::Serializer;

        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&super::super::iso_ms(*ms)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_with_milliseconds() {
        assert_eq!(super::iso_ms(1_705_314_600_000), "2024-01-15T10:30:00.000Z");
    }
}
