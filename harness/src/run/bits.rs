//! Which examples of a split an evaluation got right, one bit each, for the paired
//! statistics (`science::paired`), stored compactly in records.

use serde::{Deserialize, Serialize};

/// One bit per test example (in split order), stored as hex digits (4 examples each, the
/// first example in the high bit) so that a record of a 400k-example split stays ~100 kB.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExampleBits(pub Vec<bool>);

impl Serialize for ExampleBits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let digits: String = self
            .0
            .chunks(4)
            .map(|c| {
                let v = c
                    .iter()
                    .enumerate()
                    .fold(0u32, |v, (i, &b)| v | ((b as u32) << (3 - i)));
                char::from_digit(v, 16).unwrap_or('0')
            })
            .collect();
        s.serialize_str(&format!("{}:{digits}", self.0.len()))
    }
}

impl<'de> Deserialize<'de> for ExampleBits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let (len, digits) = text
            .split_once(':')
            .ok_or_else(|| D::Error::custom("example bits are `count:hexdigits`"))?;
        let len: usize = len
            .parse()
            .map_err(|_| D::Error::custom(format!("example count {len:?} is not a number")))?;
        if digits.len() != len.div_ceil(4) {
            return Err(D::Error::custom(format!(
                "{} hex digits cannot hold {len} examples",
                digits.len()
            )));
        }
        let mut bits = Vec::with_capacity(len);
        for c in digits.chars() {
            let v = c
                .to_digit(16)
                .ok_or_else(|| D::Error::custom(format!("{c:?} is not a hex digit")))?;
            bits.extend((0..4).map(|i| v & (1 << (3 - i)) != 0));
        }
        bits.truncate(len);
        Ok(ExampleBits(bits))
    }
}

/// Which examples each metric counts as right, for the example-level bootstrap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerExample {
    pub exact: ExampleBits,
    pub exact_at_halt: ExampleBits,
    pub maze_valid_path: Option<ExampleBits>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_bits_round_trip_through_json() {
        for len in [0, 1, 3, 4, 5, 17] {
            let bits = ExampleBits((0..len).map(|i| i % 3 == 0).collect());
            let text = serde_json::to_string(&bits).unwrap();
            assert_eq!(serde_json::from_str::<ExampleBits>(&text).unwrap(), bits);
        }
        assert_eq!(
            serde_json::to_string(&ExampleBits(vec![true; 5])).unwrap(),
            "\"5:f8\""
        );
        for bad in ["\"5:f\"", "\"x:f8\"", "\"5:g8\"", "\"f8\""] {
            assert!(serde_json::from_str::<ExampleBits>(bad).is_err(), "{bad}");
        }
    }
}
