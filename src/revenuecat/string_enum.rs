//! A macro for the string enums RevenueCat sends.
//!
//! RevenueCat documents that new values "might be added in the future" (subscription status,
//! stores, event types...). A closed Rust enum would turn such a value into a parse failure and
//! make us reject a webhook or a whole customer. Every enum built by this macro therefore keeps
//! unknown values as `Other(String)`, matches known ones case-insensitively (the webhook payload
//! uses `APP_STORE` where API v2 uses `app_store`), and reads `null` as `Other("")`.

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of rcsync does not know (kept verbatim), or `""` for null.
            Other(String),
        }

        impl $name {
            /// The canonical wire value (the spelling of the RevenueCat API v2 / webhook docs).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(value) => value.as_str(),
                }
            }

            /// The wire value of a known variant, `None` for [`Self::Other`].
            pub fn known_str(&self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($wire), )*
                    Self::Other(_) => None,
                }
            }

            /// Parses a wire value; never fails.
            pub fn parse(value: &str) -> Self {
                $( if value.eq_ignore_ascii_case($wire) { return Self::$variant; } )*
                Self::Other(value.to_owned())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <Option<String> as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(value.as_deref().unwrap_or("")))
            }
        }
    };
}
