//! PostgreSQL log sequence numbers.

use std::fmt;
use std::str::FromStr;

/// A PostgreSQL WAL position, written `16/B374D848` (two hex halves of a u64).
///
/// ```
/// use qovery_dr_core::Lsn;
/// let a: Lsn = "16/B374D848".parse().unwrap();
/// let b: Lsn = "16/B374D948".parse().unwrap();
/// assert!(a < b);
/// assert_eq!(b.bytes_since(a), 256);
/// assert_eq!(a.to_string(), "16/B374D848");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Lsn(pub u64);

/// Why an LSN could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid LSN {input:?}: expected two hexadecimal numbers of at most 8 digits separated by '/', like 16/B374D848"
)]
pub struct LsnParseError {
    input: String,
}

impl Lsn {
    /// The zero position (`0/0`), PostgreSQL's `InvalidXLogRecPtr`.
    pub const ZERO: Lsn = Lsn(0);

    /// Bytes of WAL from `earlier` to `self`; zero if `earlier` is ahead.
    pub fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The position `bytes` further on (saturating).
    pub fn advance(self, bytes: u64) -> Lsn {
        Lsn(self.0.saturating_add(bytes))
    }
}

impl FromStr for Lsn {
    type Err = LsnParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LsnParseError { input: s.to_owned() };
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            u32::from_str_radix(h, 16).map_err(|_| err())
        };
        Ok(Lsn((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }
}

impl TryFrom<String> for Lsn {
    type Error = LsnParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Lsn> for String {
    fn from(value: Lsn) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_postgres_forms() {
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn::ZERO);
        assert_eq!("16/B374D848".parse::<Lsn>().unwrap(), Lsn(0x16_B374_D848));
        assert_eq!("16/b374d848".parse::<Lsn>().unwrap(), Lsn(0x16_B374_D848));
        assert_eq!("FFFFFFFF/FFFFFFFF".parse::<Lsn>().unwrap(), Lsn(u64::MAX));
    }

    #[test]
    fn rejects_garbage_with_a_clear_message() {
        for bad in ["", "16", "/1", "1/", "1/2/3", "G/0", "123456789/0", " 1/2", "+1/2"] {
            let e = bad.parse::<Lsn>().unwrap_err();
            assert!(e.to_string().contains("16/B374D848"), "{bad}: {e}");
        }
    }

    #[test]
    fn distance_saturates() {
        assert_eq!(Lsn(10).bytes_since(Lsn(20)), 0);
        assert_eq!(Lsn(u64::MAX).advance(5), Lsn(u64::MAX));
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(v in any::<u64>()) {
            let lsn = Lsn(v);
            prop_assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
        }

        #[test]
        fn ordering_matches_the_numbers(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(Lsn(a).cmp(&Lsn(b)), a.cmp(&b));
            let (pa, pb): (Lsn, Lsn) = (Lsn(a).to_string().parse().unwrap(), Lsn(b).to_string().parse().unwrap());
            prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            prop_assert_eq!(Lsn(a.max(b)).bytes_since(Lsn(a.min(b))), a.max(b) - a.min(b));
        }
    }
}
