//! Shared helpers for the benchmarks: how figures are printed.
//!
//! Every figure is printed as `name = median` (the value tools read), followed by
//! `name_min = …` and `name_max = …` across the repetitions, so the spread sits
//! beside the figure. Lines starting with `#` explain what was measured and label
//! anything computed rather than measured.

pub mod timed;

/// Prints `# text` (an explanation, not a figure).
pub fn note(text: &str) {
    println!("# {text}");
}

/// A plain setting or count (`name = value`), no spread.
pub fn setting(name: &str, value: impl std::fmt::Display) {
    println!("{name} = {value}");
}

/// Prints `name = median`, then `name_min` and `name_max`, with `decimals` digits.
///
/// With an even number of samples the median is the upper of the two middle values
/// (a value that was observed, not an average of two).
pub fn figure(name: &str, samples: &[f64], decimals: usize) {
    let Some(s) = Spread::of(samples) else {
        println!("{name} = nan");
        return;
    };
    println!("{name} = {:.*}", decimals, s.median);
    println!("{name}_min = {:.*}", decimals, s.min);
    println!("{name}_max = {:.*}", decimals, s.max);
}

/// Minimum, median and maximum of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Smallest sample.
    pub min: f64,
    /// Middle sample (the upper middle for an even count).
    pub median: f64,
    /// Largest sample.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples`, `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        Some(Spread { min: *v.first()?, median: v[v.len() / 2], max: *v.last()? })
    }
}

/// Whether side A runs first in repetition `rep` (alternates: A first on even repetitions).
pub fn a_first(rep: usize) -> bool {
    rep.is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_observed_value() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap_or_else(|| unreachable!());
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap_or_else(|| unreachable!());
        assert_eq!((s.min, s.median, s.max), (1.0, 3.0, 4.0));
        assert_eq!(Spread::of(&[]), None);
        assert!(a_first(0) && !a_first(1) && a_first(2));
    }
}
