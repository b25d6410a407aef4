//! Exact money: an integer count of ten-thousandths of the tenant's currency unit.
//!
//! The contract allows up to four decimals, so one unit here is 0.0001. JSON numbers are read and
//! written through `rust_decimal` with serde_json's arbitrary precision, so no value ever passes
//! through binary floating point.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Decimal places the product keeps.
pub const SCALE: u32 = 4;
const UNITS_PER_WHOLE: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("has more than 4 decimals")]
    TooPrecise,
    #[error("is too large")]
    TooLarge,
    #[error("is not a number")]
    NotANumber,
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_units(units: i64) -> Self {
        Money(units)
    }

    /// Whole currency units, e.g. `Money::whole(5)` is 5.0000.
    pub const fn whole(amount: i64) -> Self {
        Money(amount * UNITS_PER_WHOLE)
    }

    pub const fn units(self) -> i64 {
        self.0
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        let normalized = value.normalize();
        if normalized.scale() > SCALE {
            return Err(MoneyError::TooPrecise);
        }
        let scaled =
            normalized.checked_mul(Decimal::from(UNITS_PER_WHOLE)).ok_or(MoneyError::TooLarge)?;
        i64::try_from(scaled).map(Money).map_err(|_| MoneyError::TooLarge)
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, SCALE).normalize()
    }

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let decimal: Decimal = text.trim().parse().map_err(|_| MoneyError::NotANumber)?;
        Self::from_decimal(decimal)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// `self × percent / 100`, rounded half away from zero to the product's 4 decimals.
    pub fn percent(self, percent: Money) -> Money {
        let product = i128::from(self.0) * i128::from(percent.0);
        let divisor = i128::from(UNITS_PER_WHOLE) * 100;
        let rounded = (product + product.signum() * divisor / 2) / divisor;
        Money(i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN }))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision::serialize(&self.to_decimal(), serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let decimal = rust_decimal::serde::arbitrary_precision::deserialize(deserializer)?;
        Money::from_decimal(decimal).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_is_exact() {
        for text in ["0", "0.1", "0.3", "1.2345", "5000", "123456789.0001"] {
            let money: Money = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&money).unwrap(), text);
        }
        let sum = Money::parse("0.1").unwrap().checked_add(Money::parse("0.2").unwrap()).unwrap();
        assert_eq!(sum, Money::parse("0.3").unwrap());
    }

    #[test]
    fn refuses_more_than_four_decimals() {
        assert!(serde_json::from_str::<Money>("0.00001").is_err());
        assert_eq!(Money::parse("1.50000").unwrap(), Money::from_units(15_000));
    }

    #[test]
    fn percent_rounds_half_away_from_zero() {
        assert_eq!(Money::whole(10).percent(Money::whole(30)), Money::whole(3));
        assert_eq!(Money::parse("0.0001").unwrap().percent(Money::whole(50)), Money::from_units(1));
        assert_eq!(
            Money::parse("9.99").unwrap().percent(Money::parse("33.3333").unwrap()).to_string(),
            "3.33"
        );
    }
}
