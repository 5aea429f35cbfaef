//! `rc_billing_period`: a product duration bucketed into a handful of names.

/// Billing periods users can segment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingPeriod {
    Weekly,
    TwoWeeks,
    Monthly,
    TwoMonths,
    ThreeMonths,
    SixMonths,
    Yearly,
    Lifetime,
}

const MS_PER_DAY: f64 = 86_400_000.0;

impl BillingPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::TwoWeeks => "two_weeks",
            Self::Monthly => "monthly",
            Self::TwoMonths => "two_months",
            Self::ThreeMonths => "three_months",
            Self::SixMonths => "six_months",
            Self::Yearly => "yearly",
            Self::Lifetime => "lifetime",
        }
    }

    /// Buckets a period length in days. The ranges are wide on purpose: stores bill "monthly"
    /// over 28 to 31 days, add grace days, and shift periods across DST and leap years.
    pub fn from_days(days: f64) -> Option<Self> {
        let bucket = match days {
            d if (5.0..=10.0).contains(&d) => Self::Weekly,
            d if (11.0..=20.0).contains(&d) => Self::TwoWeeks,
            d if (25.0..=35.0).contains(&d) => Self::Monthly,
            d if (55.0..=66.0).contains(&d) => Self::TwoMonths,
            d if (84.0..=97.0).contains(&d) => Self::ThreeMonths,
            d if (175.0..=190.0).contains(&d) => Self::SixMonths,
            d if (355.0..=375.0).contains(&d) => Self::Yearly,
            _ => return None,
        };
        Some(bucket)
    }

    /// Buckets the span between two ms timestamps (a billing period or a transaction).
    pub fn from_span_ms(start_ms: i64, end_ms: i64) -> Option<Self> {
        if end_ms <= start_ms {
            return None;
        }
        Self::from_days(end_ms.saturating_sub(start_ms) as f64 / MS_PER_DAY)
    }

    /// Parses an ISO-8601 date duration (`P1W`, `P1M`, `P1Y`, `P30D`, `P1Y6M`...). Time parts
    /// (`T...`) are ignored: no store sells sub-day subscriptions we could name.
    pub fn from_iso8601(duration: &str) -> Option<Self> {
        let date_part = duration.trim().strip_prefix('P')?;
        let date_part = date_part.split('T').next().unwrap_or_default();
        let mut days = 0.0;
        let mut number = String::new();
        for character in date_part.chars() {
            if character.is_ascii_digit() {
                number.push(character);
                continue;
            }
            let amount: f64 = number.parse().ok()?;
            number.clear();
            days += amount
                * match character {
                    'Y' => 365.0,
                    'M' => 30.4,
                    'W' => 7.0,
                    'D' => 1.0,
                    _ => return None,
                };
        }
        if !number.is_empty() {
            return None;
        }
        Self::from_days(days)
    }
}

impl std::fmt::Display for BillingPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::BillingPeriod::{self, *};

    #[test]
    fn iso_durations() {
        for (duration, expected) in [
            ("P1W", Some(Weekly)),
            ("P7D", Some(Weekly)),
            ("P2W", Some(TwoWeeks)),
            ("P1M", Some(Monthly)),
            ("P4W", Some(Monthly)),
            ("P2M", Some(TwoMonths)),
            ("P3M", Some(ThreeMonths)),
            ("P6M", Some(SixMonths)),
            ("P1Y", Some(Yearly)),
            ("P12M", Some(Yearly)),
            ("P3D", None),
            ("garbage", None),
            ("P1X", None),
            ("", None),
        ] {
            assert_eq!(
                BillingPeriod::from_iso8601(duration),
                expected,
                "{duration}"
            );
        }
    }

    #[test]
    fn spans_tolerate_store_variations() {
        let day = 86_400_000;
        for (days, expected) in [
            (7, Some(Weekly)),
            (14, Some(TwoWeeks)),
            (28, Some(Monthly)),
            (31, Some(Monthly)),
            (59, Some(TwoMonths)),
            (62, Some(TwoMonths)),
            (92, Some(ThreeMonths)),
            (181, Some(SixMonths)),
            (184, Some(SixMonths)),
            (365, Some(Yearly)),
            (366, Some(Yearly)),
            (3, None),
            (0, None),
        ] {
            assert_eq!(
                BillingPeriod::from_span_ms(0, days * day),
                expected,
                "{days} days"
            );
        }
    }
}
